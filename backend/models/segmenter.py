"""The promptable-segmenter interface every family implements (SAM, SAM2, ...), and its registry.

Like segment-anything's ``SamPredictor``: one expensive ``encode_image`` per image, then many
cheap ``predict`` calls (one per click) on the cached :class:`SegEncoding`. Coordinates are pixels
of the ORIGINAL image as displayed (EXIF applied): x right, y down, origin top-left; a pixel
``(row i, col j)`` covers ``[j, j+1) x [i, i+1)``. Each family owns its own transform from these
pixels to its model input space.

Adding a family = one module with a class implementing :class:`Segmenter`, plus one line in
:data:`REGISTRY`. Nothing here imports onnxruntime or the family modules until a pack is loaded.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from backend.errors import InvalidArgument, PackError
from backend.models.inputs import check_image  # noqa: F401  (re-exported for the family runtimes)
from backend.models.pack import Pack

# A click: (x, y, label) in original-image pixels; label 1 = positive (object), 0 = negative.
Point = tuple[float, float, int]
# A polygon: rings of [x, y] vertices, outer ring first, holes after (ARCHITECTURE.md).
Polygon = list[list[list[float]]]

REGISTRY: dict[str, str] = {
    "sam": "backend.models.sam:SamSegmenter",
    "sam2": "backend.models.sam2:Sam2Segmenter",
}


@dataclass
class SegEncoding:
    """What the image encoder produced for one image; reusable for any number of prompts.

    ``arrays`` holds the encoder outputs by graph output name (e.g. ``image_embeddings``
    float32 (1, 256, 64, 64) for SAM); it is what an ``EmbeddingCache`` stores.
    """

    key: str | None
    original_size: tuple[int, int]  # (h, w) of the original image
    arrays: dict[str, np.ndarray]


@dataclass
class SegResult:
    """One predicted mask.

    score           the decoder's predicted IoU of the chosen mask
    low_res_logits  float32 (1, 256, 256): pass back as ``mask_input`` to refine with more clicks
    mask            bool (h, w) at the original size; ``None`` on the polygon fast path
    bbox            [x0, y0, x1, y1] pixel edges of the mask (x1 = last column + 1); all zeros
                    when the mask is empty
    area            number of mask pixels
    """

    score: float
    low_res_logits: np.ndarray
    mask: np.ndarray | None
    bbox: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    area: int = 0


@runtime_checkable
class Segmenter(Protocol):
    pack: Pack
    provider: str  # onnxruntime provider the encoder runs on (after fallback)
    encoder_runs: int  # how many times the image encoder actually ran (cache hits excluded)

    def encode_image(self, image: np.ndarray, cache_key: str | None = None,
                     size: tuple[int, int] | None = None) -> SegEncoding:
        """Encode an (h, w, 3) uint8 RGB image; with ``cache_key`` and a cache, reuse/keep it.
        ``size``: the full (h, w) when ``image`` was decoded reduced (coordinates use it)."""
        ...

    def predict(self, enc: SegEncoding, points: Sequence[Point] = (),
                box: Sequence[float] | None = None, mask_input: np.ndarray | None = None,
                multimask: bool | None = None, clean: bool = False) -> SegResult:
        """Mask for the prompt; ``multimask=None`` means "multimask for a lone click" (SAM's rule).
        ``clean``: specks removed and pinholes filled (``backend.models.mask_clean``); off by
        default, so the mask is the model's own.

        points      (x, y, label) original pixels, label 1 positive / 0 negative
        box         [x0, y0, x1, y1] original pixels
        mask_input  a previous ``SegResult.low_res_logits`` (1, 256, 256) to refine
        """
        ...

    def predict_polygons(self, enc: SegEncoding, points: Sequence[Point] = (),
                         box: Sequence[float] | None = None,
                         mask_input: np.ndarray | None = None, multimask: bool | None = None,
                         tolerance: float = 1.0, clean: bool = True) -> tuple[SegResult, list[Polygon]]:
        """The per-click fast path: same mask as ``predict(clean=clean)`` but returned as polygons
        (original pixels) without materializing full-size arrays; ``SegResult.mask`` is None."""
        ...

    def unload(self) -> None:
        """Drop the onnxruntime sessions (they are re-created lazily on the next call)."""
        ...


def load_segmenter(pack: Pack, *, cache: Any = None, threads: int | None = None) -> Segmenter:
    """Instantiate the segmenter class registered for ``pack.family``.

    ``cache`` is an optional EmbeddingCache (``get(key) -> dict | None``, ``put(key, arrays)``);
    ``threads`` caps onnxruntime intra-op threads (default: ``runtime.default_threads()``).
    """
    if pack.task != "segmenter":
        raise PackError(f"Model pack '{pack.id}' is a {pack.task}, not a segmenter; choose a "
                        "SAM or SAM2 pack.", detail={"pack": str(pack.root), "task": pack.task})
    target = REGISTRY.get(pack.family)
    if target is None:
        raise PackError(f"Model pack '{pack.id}' has segmenter family '{pack.family}', which this "
                        f"version of Fieldmark cannot run (known: {', '.join(sorted(REGISTRY))}).",
                        detail={"pack": str(pack.root), "family": pack.family})
    module_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    seg: Segmenter = cls(pack, cache=cache, threads=threads)
    return seg


def check_prompt(original_size: tuple[int, int], points: Sequence[Sequence[float]],
                 box: Sequence[float] | None) -> tuple[list[Point], list[float] | None]:
    """Validate clicks and box against the image size (h, w); return them normalized.

    A point must lie inside the image (``0 <= x <= w``, ``0 <= y <= h``); a box must have
    ``x0 < x1``, ``y0 < y1`` and overlap the image. At least one of them is required.
    """
    h, w = original_size
    out_pts: list[Point] = []
    for i, p in enumerate(points):
        if len(p) not in (2, 3):
            raise InvalidArgument(f"points[{i}] must be (x, y) or (x, y, label), got {p!r}.",
                                  detail={"field": f"points[{i}]"})
        x, y = float(p[0]), float(p[1])
        label = int(p[2]) if len(p) == 3 else 1
        if not (math.isfinite(x) and math.isfinite(y)) or not (0 <= x <= w and 0 <= y <= h):
            raise InvalidArgument(f"points[{i}] = ({x:g}, {y:g}) lies outside the {w}x{h} image.",
                                  detail={"field": f"points[{i}]", "value": [x, y]})
        if label not in (0, 1):
            raise InvalidArgument(f"points[{i}] label must be 1 (object) or 0 (background), "
                                  f"got {label}.", detail={"field": f"points[{i}]"})
        out_pts.append((x, y, label))
    out_box: list[float] | None = None
    if box is not None:
        if len(box) != 4 or not all(math.isfinite(float(v)) for v in box):
            raise InvalidArgument(f"box must be four numbers [x0, y0, x1, y1], got {box!r}.",
                                  detail={"field": "box"})
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (x0 < x1 and y0 < y1):
            raise InvalidArgument(f"box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] must have x0 < x1 and "
                                  "y0 < y1.", detail={"field": "box"})
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            raise InvalidArgument(f"box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] lies outside the {w}x{h} "
                                  "image.", detail={"field": "box"})
        out_box = [x0, y0, x1, y1]
    if not out_pts and out_box is None:
        raise InvalidArgument("A prompt needs at least one point or a box.",
                              detail={"field": "points"})
    return out_pts, out_box


def default_multimask(points: Sequence[Point], box: Sequence[float] | None,
                      mask_input: np.ndarray | None, multimask: bool | None) -> bool:
    """SAM's predictor convention: three candidate masks for an ambiguous prompt (one click,
    nothing else), a single mask once the prompt disambiguates (more clicks, a box, a mask)."""
    if multimask is not None:
        return bool(multimask)
    return len(points) == 1 and box is None and mask_input is None
