"""SAM (segment-anything, SlimSAM, ...) on onnxruntime: encode an image once, prompt it many times.

Pack layout (made by ``build_scripts/exporters/sam.py``, ADR 0004): ``encoder`` graph
``pixel_values (1, 3, S, S) -> image_embeddings (1, C, E, E)``; ``decoder`` graph
``image_embeddings, point_coords (1, N, 2), point_labels (1, N), mask_input (1, 1, M, M),
has_mask_input (1,) -> iou_scores (1, T), low_res_masks (1, T, M, M)`` with T = 4 mask tokens:
index 0 is SAM's single-mask output, 1..3 its multimask outputs.

Prompts follow segment-anything's predictor: points are (x, y) original pixels, passed through
unchanged (the decoder shifts them to pixel centres); a box becomes two corner points labelled
2 and 3; without a box a padding point (0, 0) labelled -1 is appended, exactly like
``SamPromptEncoder``. With ``multimask`` the candidate with the highest predicted IoU among
1..3 is returned (what ``SamModel(multimask_output=True)`` + argmax gives); the default is
multimask for a lone click only (:func:`~backend.models.segmenter.default_multimask`).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from backend.errors import InvalidArgument, PackError
from backend.models.mask_post import MaskUpscaler, ResizeTransform, mask_bbox, region_polygons
from backend.models.pack import Pack
from backend.models.runtime import Session, create_session
from backend.models.segmenter import (
    Point,
    Polygon,
    SegEncoding,
    SegResult,
    check_image,
    check_prompt,
    default_multimask,
)

_DECODER_INPUTS = ("image_embeddings", "point_coords", "point_labels", "mask_input",
                   "has_mask_input")


def _spec(pack: Pack) -> dict[str, Any]:
    """Constants the runtime needs, checked once; a PackError names what is missing."""
    pre, cfg = pack.preprocessing, pack.config

    def need(section: dict[str, Any], name: str, key: str) -> Any:
        if key not in section:
            raise PackError(f"Model pack '{pack.id}' lacks {name}.{key}; it was not made by this "
                            "version's SAM exporter. Re-export it with build_scripts/export_models.py.",
                            detail={"pack": str(pack.root), "field": f"{name}.{key}"})
        return section[key]

    if pack.family != "sam":
        raise PackError(f"Model pack '{pack.id}' is a {pack.family} pack, not SAM.",
                        detail={"pack": str(pack.root)})
    if need(pre, "preprocessing", "resize") != "longest_side":
        raise PackError(f"Model pack '{pack.id}' asks for resize mode {pre['resize']!r}; SAM packs "
                        "resize the longest side.", detail={"pack": str(pack.root)})
    mean = np.asarray(need(pre, "preprocessing", "mean"), dtype=np.float32)
    std = np.asarray(need(pre, "preprocessing", "std"), dtype=np.float32)
    if mean.shape != (3,) or std.shape != (3,) or not bool((std > 0).all()):
        raise PackError(f"Model pack '{pack.id}' has invalid mean/std in its manifest.",
                        detail={"pack": str(pack.root)})
    spec: dict[str, Any] = {
        "size": int(need(pre, "preprocessing", "longest_side")),
        "rescale": float(need(pre, "preprocessing", "rescale")),
        "mean": mean,
        "std": std,
        "embedding": int(need(cfg, "config", "embedding_size")),
        "mask_size": int(need(cfg, "config", "mask_size")),
        "single": int(need(cfg, "config", "single_mask_index")),
        "multi": [int(i) for i in need(cfg, "config", "multimask_indices")],
        "threshold": float(need(cfg, "config", "mask_threshold")),
    }
    pack.graph("encoder")  # raises PackError if a graph is missing
    pack.graph("decoder")
    return spec


def preprocess(image: np.ndarray, transform: ResizeTransform, rescale: float, mean: np.ndarray,
               std: np.ndarray) -> np.ndarray:
    """uint8 (h, w, 3) RGB -> float32 (1, 3, S, S), as ``SamImageProcessor`` (PIL backend):
    PIL bilinear resize of the uint8 image, x * rescale (in float64), (x - mean) / std in float32,
    zero padding bottom/right after normalization."""
    from PIL import Image

    rh, rw = transform.resized_size
    if (rh, rw) != image.shape[:2]:
        image = np.asarray(Image.fromarray(image).resize((rw, rh), Image.Resampling.BILINEAR))
    x = (image.astype(np.float64) * rescale).astype(np.float32)
    x = (x - mean) / std
    s = transform.target
    out = np.zeros((1, 3, s, s), dtype=np.float32)
    out[0, :, :rh, :rw] = x.transpose(2, 0, 1)
    return out


class SamSegmenter:
    """:class:`~backend.models.segmenter.Segmenter` for ``family == "sam"`` packs."""

    def __init__(self, pack: Pack, *, cache: Any = None, threads: int | None = None) -> None:
        self.pack = pack
        self._spec = _spec(pack)
        self.cache = cache
        self.threads = threads
        self.provider = "not loaded"
        self.encoder_runs = 0
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._up_lock = threading.Lock()
        self._upscalers: OrderedDict[tuple[int, int], MaskUpscaler] = OrderedDict()

    # -- sessions ----------------------------------------------------------------------------
    def _session(self, name: str) -> Session:
        sess = self._sessions.get(name)
        if sess is not None:
            return sess
        with self._lock:
            if name not in self._sessions:
                sess = create_session(self.pack.graph(name), threads=self.threads)
                want = _DECODER_INPUTS if name == "decoder" else ("pixel_values",)
                if sorted(sess.input_names) != sorted(want):
                    raise PackError(f"The {name} graph of model pack '{self.pack.id}' takes "
                                    f"{sess.input_names}, expected {list(want)}. Re-export the pack.",
                                    detail={"pack": str(self.pack.root)})
                self._sessions[name] = sess
                if name == "encoder" or self.provider == "not loaded":
                    self.provider = sess.provider
            return self._sessions[name]

    def unload(self) -> None:
        with self._lock:
            self._sessions.clear()
            self.provider = "not loaded"

    # -- encoding ----------------------------------------------------------------------------
    def transform(self, original_size: tuple[int, int]) -> ResizeTransform:
        return ResizeTransform(original_size, self._spec["size"], "longest")

    def _cache_key(self, cache_key: str) -> str:
        # Namespaced by pack so one cache can serve several models without mix-ups.
        text = f"fieldmark-seg|{self.pack.source_tag}|{cache_key}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def encode_image(self, image: np.ndarray, cache_key: str | None = None) -> SegEncoding:
        """(h, w, 3) uint8 RGB -> :class:`SegEncoding` with ``image_embeddings`` (1, C, E, E)."""
        image = check_image(image)
        size = (int(image.shape[0]), int(image.shape[1]))
        e = self._spec["embedding"]
        if cache_key is not None and self.cache is not None:
            hit = self.cache.get(self._cache_key(cache_key))
            emb = hit.get("image_embeddings") if hit else None
            if emb is not None and emb.ndim == 4 and emb.shape[2:] == (e, e) and \
                    tuple(int(v) for v in hit.get("original_size", ())) == size:
                return SegEncoding(cache_key, size, {"image_embeddings": emb})
        s = self._spec
        pixels = preprocess(image, self.transform(size), s["rescale"], s["mean"], s["std"])
        (emb,) = self._session("encoder").run({"pixel_values": pixels}, ["image_embeddings"])
        self.encoder_runs += 1
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        if cache_key is not None and self.cache is not None:
            self.cache.put(self._cache_key(cache_key),
                           {"image_embeddings": emb, "original_size": np.asarray(size, np.int64)})
        return SegEncoding(cache_key, size, {"image_embeddings": emb})

    # -- prompting ---------------------------------------------------------------------------
    def upscaler(self, original_size: tuple[int, int]) -> MaskUpscaler:
        """The (cached) low-res -> original-size upscaler for one image size."""
        with self._up_lock:  # clicks may come from several threads (pre-encode + GUI)
            up = self._upscalers.get(original_size)
            if up is None:
                up = self.transform(original_size).upscaler(self._spec["mask_size"])
                self._upscalers[original_size] = up
                while len(self._upscalers) > 4:
                    self._upscalers.popitem(last=False)
            else:
                self._upscalers.move_to_end(original_size)
            return up

    def _decode(self, enc: SegEncoding, points: Sequence[Sequence[float]],
                box: Sequence[float] | None, mask_input: np.ndarray | None,
                multimask: bool | None) -> tuple[float, np.ndarray]:
        """Run the decoder; return (score, low-res logits (1, M, M)) of the chosen mask."""
        pts, bx = check_prompt(enc.original_size, points, box)
        emb = enc.arrays.get("image_embeddings") if isinstance(enc, SegEncoding) else None
        e, m = self._spec["embedding"], self._spec["mask_size"]
        if emb is None or emb.ndim != 4 or emb.shape[2:] != (e, e):
            raise InvalidArgument("This image encoding was not made by a SAM pack of this size; "
                                  "encode the image with this model first.",
                                  detail={"field": "enc"})
        tr = self.transform(enc.original_size)
        coords = [tr.apply_coords([[x, y] for x, y, _ in pts])] if pts else []
        labels = [float(lab) for _, _, lab in pts]
        if bx is not None:
            coords.append(tr.apply_box(bx))
            labels += [2.0, 3.0]
        else:
            coords.append(np.zeros((1, 2), np.float32))  # padding point, as SamPromptEncoder
            labels.append(-1.0)
        if mask_input is not None:
            mask = np.asarray(mask_input, dtype=np.float32)
            if mask.size != m * m:
                raise InvalidArgument(f"mask_input must be the ({m}, {m}) low-res logits of a "
                                      f"previous result, got shape {mask.shape}.",
                                      detail={"field": "mask_input"})
            mask, has = mask.reshape(1, 1, m, m), np.ones(1, np.float32)
        else:
            mask, has = np.zeros((1, 1, m, m), np.float32), np.zeros(1, np.float32)
        feeds = {"image_embeddings": emb,
                 "point_coords": np.concatenate(coords, axis=0)[None].astype(np.float32),
                 "point_labels": np.asarray([labels], dtype=np.float32),
                 "mask_input": mask, "has_mask_input": has}
        scores, masks = self._session("decoder").run(feeds, ["iou_scores", "low_res_masks"])
        if default_multimask(pts, bx, mask_input, multimask):
            multi = self._spec["multi"]
            idx = multi[int(np.argmax(scores[0, multi]))]
        else:
            idx = self._spec["single"]
        return float(scores[0, idx]), np.ascontiguousarray(masks[0, idx:idx + 1])

    def predict(self, enc: SegEncoding, points: Sequence[Point] = (),
                box: Sequence[float] | None = None, mask_input: np.ndarray | None = None,
                multimask: bool | None = None) -> SegResult:
        """Full result: bool (h, w) mask at the original size (see the module doc)."""
        score, low = self._decode(enc, points, box, mask_input, multimask)
        up = self.upscaler(enc.original_size)
        mask = np.zeros(enc.original_size, dtype=bool)
        reg = up.region(low, self._spec["threshold"])
        if reg is None:
            return SegResult(score, low, mask)
        crop, x0, y0 = reg
        mask[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop
        return SegResult(score, low, mask, mask_bbox(crop, x0, y0), int(crop.sum()))

    def predict_polygons(self, enc: SegEncoding, points: Sequence[Point] = (),
                         box: Sequence[float] | None = None,
                         mask_input: np.ndarray | None = None, multimask: bool | None = None,
                         tolerance: float = 1.0) -> tuple[SegResult, list[Polygon]]:
        """Per-click fast path: polygons traced in the mask's window only; ``mask`` is None."""
        score, low = self._decode(enc, points, box, mask_input, multimask)
        reg = self.upscaler(enc.original_size).region(low, self._spec["threshold"])
        if reg is None:
            return SegResult(score, low, None), []
        crop, x0, y0 = reg
        polys = region_polygons(crop, x0, y0, tolerance)
        return SegResult(score, low, None, mask_bbox(crop, x0, y0), int(crop.sum())), polys
