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

from typing import Any, ClassVar

import numpy as np

from backend.errors import PackError
from backend.models.mask_post import ResizeTransform
from backend.models.pack import Pack
from backend.models.seg_runtime import OnnxSegmenter, check_family, common_spec, need


def _spec(pack: Pack) -> dict[str, Any]:
    """Constants the runtime needs, checked once; a PackError names what is missing."""
    check_family(pack, "sam", "SAM")
    resize = need(pack, "SAM", "preprocessing", "resize")
    if resize != "longest_side":
        raise PackError(f"Model pack '{pack.id}' asks for resize mode {resize!r}; SAM packs "
                        "resize the longest side.", detail={"pack": str(pack.root)})
    spec = common_spec(pack, "SAM")
    spec["size"] = int(need(pack, "SAM", "preprocessing", "longest_side"))
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


class SamSegmenter(OnnxSegmenter):
    """:class:`~backend.models.segmenter.Segmenter` for ``family == "sam"`` packs; the shared
    session / cache / prediction flow lives in :class:`~backend.models.seg_runtime.OnnxSegmenter`."""

    features: ClassVar[dict[str, int]] = {"image_embeddings": 1}
    resize_mode: ClassVar[str] = "longest"
    pad_after_box: ClassVar[bool] = False  # SamPromptEncoder pads only a box-less prompt
    foreign_encoding: ClassVar[str] = ("This image encoding was not made by a SAM pack of this "
                                       "size; encode the image with this model first.")

    def __init__(self, pack: Pack, *, cache: Any = None, threads: int | None = None) -> None:
        super().__init__(pack, _spec(pack), cache=cache, threads=threads)

    def _preprocess(self, image: np.ndarray, transform: ResizeTransform) -> np.ndarray:
        s = self._spec
        return preprocess(image, transform, s["rescale"], s["mean"], s["std"])

    def _select(self, scores: np.ndarray, masks: np.ndarray, multimask: bool) -> int:
        if multimask:
            multi = self._spec["multi"]
            return int(multi[int(np.argmax(scores[multi]))])
        return int(self._spec["single"])
