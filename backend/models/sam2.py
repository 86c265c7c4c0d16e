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

FEATURES = ("image_embeddings", "high_res_feats_0", "high_res_feats_1")
_DECODER_INPUTS = (*FEATURES, "point_coords", "point_labels", "mask_input", "has_mask_input")


def _spec(pack: Pack) -> dict[str, Any]:
    """Constants the runtime needs, checked once; a PackError names what is missing."""
    pre, cfg = pack.preprocessing, pack.config

    def need(section: dict[str, Any], name: str, key: str) -> Any:
        if key not in section:
            raise PackError(f"Model pack '{pack.id}' lacks {name}.{key}; it was not made by this "
                            "version's SAM 2 exporter. Re-export it with "
                            "build_scripts/export_models.py.",
                            detail={"pack": str(pack.root), "field": f"{name}.{key}"})
        return section[key]

    if pack.family != "sam2":
        raise PackError(f"Model pack '{pack.id}' is a {pack.family} pack, not SAM 2.",
                        detail={"pack": str(pack.root)})
    size = [int(v) for v in need(pre, "preprocessing", "size")]
    if need(pre, "preprocessing", "resize") != "squash" or len(size) != 2 or size[0] != size[1]:
        raise PackError(f"Model pack '{pack.id}' asks for a {pre['resize']!r} resize to {size}; "
                        "SAM 2 packs stretch images to a square.", detail={"pack": str(pack.root)})
    spec: dict[str, Any] = {
        "size": size[0],
        "rescale": float(need(pre, "preprocessing", "rescale")),
        "mean": np.asarray(need(pre, "preprocessing", "mean"), dtype=np.float32),
        "std": np.asarray(need(pre, "preprocessing", "std"), dtype=np.float32),
        "embedding": int(need(cfg, "config", "embedding_size")),
        "mask_size": int(need(cfg, "config", "mask_size")),
        "single": int(need(cfg, "config", "single_mask_index")),
        "multi": [int(i) for i in need(cfg, "config", "multimask_indices")],
        "threshold": float(need(cfg, "config", "mask_threshold")),
        "dynamic": bool(need(cfg, "config", "dynamic_multimask_via_stability")),
        "delta": float(need(cfg, "config", "stability_delta")),
        "stable": float(need(cfg, "config", "stability_thresh")),
    }
    if spec["mean"].shape != (3,) or spec["std"].shape != (3,) or not (spec["std"] > 0).all():
        raise PackError(f"Model pack '{pack.id}' has invalid mean/std in its manifest.",
                        detail={"pack": str(pack.root)})
    pack.graph("encoder")  # raises PackError if a graph is missing
    pack.graph("decoder")
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


class Sam2Segmenter:
    """:class:`~backend.models.segmenter.Segmenter` for ``family == "sam2"`` packs."""

    def __init__(self, pack: Pack, *, cache: Any = None, threads: int | None = None) -> None:
        self.pack = pack
        self._spec = _spec(pack)
        self.cache = cache
        self.threads = threads
        self.provider = "not loaded"
        self.encoder_runs = 0
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._upscalers: OrderedDict[tuple[int, int], MaskUpscaler] = OrderedDict()
        e = self._spec["embedding"]
        self._shapes = {"image_embeddings": (e, e), "high_res_feats_0": (4 * e, 4 * e),
                        "high_res_feats_1": (2 * e, 2 * e)}

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
        """The one object that maps original pixels to model-input pixels and back."""
        return ResizeTransform(original_size, self._spec["size"], "stretch")

    def _cache_key(self, cache_key: str) -> str:
        # Namespaced by pack so one cache can serve several models without mix-ups.
        text = f"fieldmark-seg|{self.pack.source_tag}|{cache_key}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _valid(self, arrays: Any) -> bool:
        return isinstance(arrays, dict) and all(
            isinstance(arrays.get(n), np.ndarray) and arrays[n].ndim == 4
            and arrays[n].shape[0] == 1 and arrays[n].shape[2:] == hw
            for n, hw in self._shapes.items())

    def encode_image(self, image: np.ndarray, cache_key: str | None = None) -> SegEncoding:
        """(h, w, 3) uint8 RGB -> :class:`SegEncoding` holding the three encoder outputs."""
        image = check_image(image)
        size = (int(image.shape[0]), int(image.shape[1]))
        if cache_key is not None and self.cache is not None:
            hit = self.cache.get(self._cache_key(cache_key))
            if hit is not None and self._valid(hit) and \
                    tuple(int(v) for v in hit.get("original_size", ())) == size:
                return SegEncoding(cache_key, size, {n: hit[n] for n in FEATURES})
        s = self._spec
        pixels = preprocess(image, s["size"], s["rescale"], s["mean"], s["std"])
        outs = self._session("encoder").run({"pixel_values": pixels}, list(FEATURES))
        self.encoder_runs += 1
        arrays = {n: np.ascontiguousarray(o, dtype=np.float32) for n, o in zip(FEATURES, outs, strict=True)}
        if cache_key is not None and self.cache is not None:
            self.cache.put(self._cache_key(cache_key),
                           dict(arrays, original_size=np.asarray(size, np.int64)))
        return SegEncoding(cache_key, size, arrays)

    # -- prompting ---------------------------------------------------------------------------
    def upscaler(self, original_size: tuple[int, int]) -> MaskUpscaler:
        up = self._upscalers.get(original_size)
        if up is None:
            up = self.transform(original_size).upscaler(self._spec["mask_size"])
            self._upscalers[original_size] = up
            while len(self._upscalers) > 4:
                self._upscalers.popitem(last=False)
        else:
            self._upscalers.move_to_end(original_size)
        return up

    def decode(self, enc: SegEncoding, points: Sequence[Sequence[float]] = (),
               box: Sequence[float] | None = None, mask_input: np.ndarray | None = None
               ) -> dict[str, np.ndarray]:
        """Raw decoder outputs for a prompt: ``iou_scores`` (T,), ``low_res_masks`` (T, M, M),
        ``object_score_logits`` (1,) — every mask token, before selection."""
        pts, bx = check_prompt(enc.original_size, points, box)
        if not isinstance(enc, SegEncoding) or not self._valid(enc.arrays):
            raise InvalidArgument("This image encoding was not made by this SAM 2 pack; encode "
                                  "the image with this model first.", detail={"field": "enc"})
        m = self._spec["mask_size"]
        tr = self.transform(enc.original_size)
        coords = [tr.apply_coords([[x, y] for x, y, _ in pts])] if pts else []
        labels = [float(lab) for _, _, lab in pts]
        if bx is not None:
            coords.append(tr.apply_box(bx))
            labels += [2.0, 3.0]
        coords.append(np.zeros((1, 2), np.float32))  # the padding point Sam2PromptEncoder adds
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
        feeds = dict(enc.arrays)
        feeds.update({"point_coords": np.concatenate(coords, axis=0)[None].astype(np.float32),
                      "point_labels": np.asarray([labels], dtype=np.float32),
                      "mask_input": mask, "has_mask_input": has})
        scores, masks, obj = self._session("decoder").run(
            {n: feeds[n] for n in _DECODER_INPUTS},
            ["iou_scores", "low_res_masks", "object_score_logits"])
        return {"iou_scores": scores[0], "low_res_masks": masks[0], "object_score_logits": obj[0]}

    def _decode(self, enc: SegEncoding, points: Sequence[Sequence[float]],
                box: Sequence[float] | None, mask_input: np.ndarray | None,
                multimask: bool | None) -> tuple[float, np.ndarray]:
        """(score, low-res logits (1, M, M)) of the chosen mask token."""
        raw = self.decode(enc, points, box, mask_input)
        pts, bx = check_prompt(enc.original_size, points, box)
        scores, masks = raw["iou_scores"], raw["low_res_masks"]
        idx = select_mask(scores, masks, default_multimask(pts, bx, mask_input, multimask),
                          self._spec)
        return float(scores[idx]), np.ascontiguousarray(masks[idx:idx + 1])

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
        """Per-click fast path: the mask is computed and traced only in its window (the
        smallest one that can hold a positive pixel); ``SegResult.mask`` is None."""
        score, low = self._decode(enc, points, box, mask_input, multimask)
        reg = self.upscaler(enc.original_size).region(low, self._spec["threshold"])
        if reg is None:
            return SegResult(score, low, None), []
        crop, x0, y0 = reg
        polys = region_polygons(crop, x0, y0, tolerance)
        return SegResult(score, low, None, mask_bbox(crop, x0, y0), int(crop.sum())), polys
