"""SAM 2 / SAM 2.1 on onnxruntime: encode an image once, prompt it many times.

Pack layout (made by ``build_scripts/exporters/sam2.py``): ``encoder`` graph
``pixel_values (1, 3, S, S) -> image_embeddings (1, C, E, E), high_res_feats_0 (1, C/8, 4E, 4E),
high_res_feats_1 (1, C/4, 2E, 2E)``; ``decoder`` graph ``those three, point_coords (1, N, 2),
point_labels (1, N), mask_input (1, 1, M, M), has_mask_input (1,) -> iou_scores (1, T),
low_res_masks (1, T, M, M), object_score_logits (1, 1)`` with T = 4 mask tokens (0 = single-mask
token, 1..3 = multimask tokens), before any selection.

Differences from SAM (v1), all as in transformers' ``Sam2Model`` / ``Sam2Processor``:

* The image is stretched to S x S (no aspect-preserving pad); points and boxes scale by
  S / w and S / h independently (:class:`~backend.models.mask_post.ResizeTransform`
  ``mode="stretch"``), and masks come back with one bilinear resize of the M x M logits.
* The prompt always ends with a padding point (label -1): after the clicks, or after the two
  box corners (labels 2, 3), as ``Sam2PromptEncoder`` embeds them.
* Mask choice: with ``multimask`` (default: a lone click, :func:`default_multimask`), the token
  among 1..3 with the highest predicted IoU. Without it, token 0 unless its stability score
  ``|logits > d| / |logits > -d|`` (d = ``stability_delta``) is below ``stability_thresh``, in
  which case the best multimask token is used instead (SAM 2's "dynamic multimask via
  stability", applied by ``Sam2MaskDecoder`` at inference). Object-score logits do not blank
  masks, as in transformers' image path and SAM2ImagePredictor.

Points are (x, y) original pixels passed through unchanged (the decoder adds 0.5 to reach the
pixel centre, like ``Sam2PromptEncoder``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from backend.errors import PackError
from backend.models.mask_post import ResizeTransform
from backend.models.pack import Pack
from backend.models.seg_runtime import OnnxSegmenter, check_family, common_spec, need
from backend.models.segmenter import SegEncoding

FEATURES = ("image_embeddings", "high_res_feats_0", "high_res_feats_1")


def _spec(pack: Pack) -> dict[str, Any]:
    """Constants the runtime needs, checked once; a PackError names what is missing."""
    check_family(pack, "sam2", "SAM 2")
    size = [int(v) for v in need(pack, "SAM 2", "preprocessing", "size")]
    resize = need(pack, "SAM 2", "preprocessing", "resize")
    if resize != "squash" or len(size) != 2 or size[0] != size[1]:
        raise PackError(f"Model pack '{pack.id}' asks for a {resize!r} resize to {size}; "
                        "SAM 2 packs stretch images to a square.", detail={"pack": str(pack.root)})
    spec = common_spec(pack, "SAM 2")
    spec.update({
        "size": size[0],
        "dynamic": bool(need(pack, "SAM 2", "config", "dynamic_multimask_via_stability")),
        "delta": float(need(pack, "SAM 2", "config", "stability_delta")),
        "stable": float(need(pack, "SAM 2", "config", "stability_thresh")),
    })
    return spec


def preprocess(image: np.ndarray, size: int, rescale: float, mean: np.ndarray,
               std: np.ndarray) -> np.ndarray:
    """uint8 (h, w, 3) RGB -> float32 (1, 3, size, size), as ``Sam2ImageProcessor``.

    The reference resizes the uint8 image with torchvision's antialiased bilinear, a port of
    PIL's filter that runs the horizontal pass first. PIL run in that order gives the same
    uint8 image when enlarging and differs by 1 in ~0.3 % of values when shrinking (fixed-point
    rounding); PIL's own pass order would differ in up to ~25 %. Then x * rescale and
    (x - mean) / std in float32.
    """
    from PIL import Image

    pil = Image.fromarray(image)
    if pil.width != size:
        pil = pil.resize((size, pil.height), Image.Resampling.BILINEAR)
    if pil.height != size:
        pil = pil.resize((size, size), Image.Resampling.BILINEAR)
    image = np.asarray(pil)
    x = image.astype(np.float32) * np.float32(rescale)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def select_mask(scores: np.ndarray, masks: np.ndarray, multimask: bool, spec: dict[str, Any]) -> int:
    """Index of the mask token to return, from (T,) scores and (T, M, M) logits (module doc)."""
    multi = spec["multi"]
    best = multi[int(np.argmax(scores[multi]))]
    if multimask:
        return best
    single = spec["single"]
    if spec["dynamic"]:
        logits = masks[single]
        area_i = np.count_nonzero(logits > spec["delta"])
        area_u = np.count_nonzero(logits > -spec["delta"])
        stability = area_i / area_u if area_u > 0 else 1.0
        if stability < spec["stable"]:
            return best
    return single


class Sam2Segmenter(OnnxSegmenter):
    """:class:`~backend.models.segmenter.Segmenter` for ``family == "sam2"`` packs; the shared
    session / cache / prediction flow lives in :class:`~backend.models.seg_runtime.OnnxSegmenter`."""

    # image_embeddings (E, E), high_res_feats_0 (4E, 4E), high_res_feats_1 (2E, 2E)
    features: ClassVar[dict[str, int]] = dict(zip(FEATURES, (1, 4, 2), strict=True))
    decoder_outputs: ClassVar[tuple[str, ...]] = ("iou_scores", "low_res_masks",
                                                  "object_score_logits")
    resize_mode: ClassVar[str] = "stretch"
    pad_after_box: ClassVar[bool] = True  # Sam2PromptEncoder always appends the padding point
    foreign_encoding: ClassVar[str] = ("This image encoding was not made by this SAM 2 pack; "
                                       "encode the image with this model first.")

    def __init__(self, pack: Pack, *, cache: Any = None, threads: int | None = None) -> None:
        super().__init__(pack, _spec(pack), cache=cache, threads=threads)

    def _preprocess(self, image: np.ndarray, transform: ResizeTransform) -> np.ndarray:
        s = self._spec
        return preprocess(image, s["size"], s["rescale"], s["mean"], s["std"])

    def _select(self, scores: np.ndarray, masks: np.ndarray, multimask: bool) -> int:
        return select_mask(scores, masks, multimask, self._spec)

    def decode(self, enc: SegEncoding, points: Sequence[Sequence[float]] = (),
               box: Sequence[float] | None = None, mask_input: np.ndarray | None = None
               ) -> dict[str, np.ndarray]:
        """Raw decoder outputs for a prompt: ``iou_scores`` (T,), ``low_res_masks`` (T, M, M),
        ``object_score_logits`` (1,) — every mask token, before selection."""
        _, _, outs = self._run_decoder(enc, points, box, mask_input)
        return {n: o[0] for n, o in zip(self.decoder_outputs, outs, strict=True)}
