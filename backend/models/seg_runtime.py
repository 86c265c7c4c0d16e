"""What the SAM-style onnxruntime segmenters (``sam``, ``sam2``) share: one ``encoder`` graph
``pixel_values -> features``, one ``decoder`` graph ``features + prompt -> iou_scores (1, T),
low_res_masks (1, T, M, M), ...``, and everything around them that does not depend on the family.

:class:`OnnxSegmenter` holds the lazily created sessions (input names checked against the
contract), the namespaced embedding-cache round trip with shape validation, the prompt feeds
(points + box corners labelled 2 / 3 + padding point, ``mask_input`` / ``has_mask_input``), the
small LRU of mask upscalers and the ``predict`` / ``predict_polygons`` flow (with the speck
clean-up of :mod:`backend.models.mask_clean` on the polygon path). A family subclass
states its encoder outputs, resize mode and padding rule as class attributes and supplies the
preprocessing and the mask-token choice; its manifest reader uses :func:`need` and
:func:`common_spec` so a missing field is reported the same way for every family.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from backend.errors import InvalidArgument, PackError
from backend.models.inputs import full_size
from backend.models.mask_clean import MAX_PARTS, clean_logits
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

PROMPT_INPUTS = ("point_coords", "point_labels", "mask_input", "has_mask_input")


def need(pack: Pack, label: str, section: str, key: str) -> Any:
    """``pack.<section>[key]`` (section ``preprocessing`` or ``config``); a PackError naming the
    field and the exporter (``label``, e.g. "SAM 2") when the manifest lacks it."""
    values = pack.preprocessing if section == "preprocessing" else pack.config
    if key not in values:
        raise PackError(f"Model pack '{pack.id}' lacks {section}.{key}; it was not made by this "
                        f"version's {label} exporter. Re-export it with "
                        "build_scripts/export_models.py.",
                        detail={"pack": str(pack.root), "field": f"{section}.{key}"})
    return values[key]


def check_family(pack: Pack, family: str, label: str) -> None:
    if pack.family != family:
        raise PackError(f"Model pack '{pack.id}' is a {pack.family} pack, not {label}.",
                        detail={"pack": str(pack.root)})


def common_spec(pack: Pack, label: str) -> dict[str, Any]:
    """The manifest constants every SAM-style family has: normalization (``rescale``, ``mean``,
    ``std`` (3,) float32, checked) and decoder geometry (``embedding`` E, ``mask_size`` M, the
    ``single`` / ``multi`` mask-token indices, the logit ``threshold``)."""
    mean = np.asarray(need(pack, label, "preprocessing", "mean"), dtype=np.float32)
    std = np.asarray(need(pack, label, "preprocessing", "std"), dtype=np.float32)
    if mean.shape != (3,) or std.shape != (3,) or not bool((std > 0).all()):
        raise PackError(f"Model pack '{pack.id}' has invalid mean/std in its manifest.",
                        detail={"pack": str(pack.root)})
    return {
        "rescale": float(need(pack, label, "preprocessing", "rescale")),
        "mean": mean,
        "std": std,
        "embedding": int(need(pack, label, "config", "embedding_size")),
        "mask_size": int(need(pack, label, "config", "mask_size")),
        "single": int(need(pack, label, "config", "single_mask_index")),
        "multi": [int(i) for i in need(pack, label, "config", "multimask_indices")],
        "threshold": float(need(pack, label, "config", "mask_threshold")),
    }


class OnnxSegmenter:
    """Base of the SAM-style :class:`~backend.models.segmenter.Segmenter` implementations.

    Subclasses set the class attributes below and implement :meth:`_preprocess` and
    :meth:`_select`; ``spec`` is the family's checked manifest constants (at least the keys of
    :func:`common_spec` plus ``size``, the model input side S).
    """

    # Encoder output name -> its spatial side as a multiple of the embedding side E.
    features: ClassVar[dict[str, int]]
    # Decoder outputs fetched per prompt; the first two are iou_scores and low_res_masks.
    decoder_outputs: ClassVar[tuple[str, ...]] = ("iou_scores", "low_res_masks")
    resize_mode: ClassVar[str]  # ResizeTransform mode: "longest" or "stretch"
    pad_after_box: ClassVar[bool]  # whether a box prompt is followed by the padding point too
    foreign_encoding: ClassVar[str]  # InvalidArgument message for an encoding of another model

    def __init__(self, pack: Pack, spec: dict[str, Any], *, cache: Any = None,
                 threads: int | None = None) -> None:
        pack.graph("encoder")  # raises PackError if a graph is missing
        pack.graph("decoder")
        self.pack = pack
        self._spec = spec
        self.cache = cache
        self.threads = threads
        self.provider = "not loaded"
        self.encoder_runs = 0
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._up_lock = threading.Lock()
        self._upscalers: OrderedDict[tuple[int, int], MaskUpscaler] = OrderedDict()
        e = spec["embedding"]
        self._shapes = {n: (k * e, k * e) for n, k in self.features.items()}
        self._decoder_inputs = (*self.features, *PROMPT_INPUTS)

    # -- family hooks ------------------------------------------------------------------------
    def _preprocess(self, image: np.ndarray, transform: ResizeTransform) -> np.ndarray:
        """uint8 (h, w, 3) RGB -> float32 ``pixel_values`` (1, 3, S, S)."""
        raise NotImplementedError

    def _select(self, scores: np.ndarray, masks: np.ndarray, multimask: bool) -> int:
        """Index of the mask token to return, from (T,) scores and (T, M, M) logits."""
        raise NotImplementedError

    # -- sessions ----------------------------------------------------------------------------
    def _session(self, name: str) -> Session:
        sess = self._sessions.get(name)
        if sess is not None:
            return sess
        with self._lock:
            if name not in self._sessions:
                sess = create_session(self.pack.graph(name), threads=self.threads)
                want = self._decoder_inputs if name == "decoder" else ("pixel_values",)
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
        return ResizeTransform(original_size, self._spec["size"], self.resize_mode)

    def _cache_key(self, cache_key: str) -> str:
        # Namespaced by pack so one cache can serve several models without mix-ups.
        text = f"fieldmark-seg|{self.pack.source_tag}|{cache_key}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _valid(self, arrays: Any) -> bool:
        """Whether ``arrays`` holds every encoder output with this pack's (1, C, side, side)."""
        return isinstance(arrays, dict) and all(
            isinstance(arrays.get(n), np.ndarray) and arrays[n].ndim == 4
            and arrays[n].shape[0] == 1 and arrays[n].shape[2:] == hw
            for n, hw in self._shapes.items())

    def encode_image(self, image: np.ndarray, cache_key: str | None = None,
                     size: tuple[int, int] | None = None) -> SegEncoding:
        """(h, w, 3) uint8 RGB -> :class:`SegEncoding` holding the encoder outputs by name.

        ``size``: the (h, w) the image stands for when it was decoded reduced (a huge scan;
        see ``backend.models.inputs.load_image``); prompts and masks are then in those pixels.
        """
        image = check_image(image)
        size = full_size(image, size)
        if cache_key is not None and self.cache is not None:
            hit = self.cache.get(self._cache_key(cache_key))
            if hit is not None and self._valid(hit) and \
                    tuple(int(v) for v in hit.get("original_size", ())) == size:
                return SegEncoding(cache_key, size, {n: hit[n] for n in self.features})
        pixels = self._preprocess(image, self.transform(size))
        names = list(self.features)
        outs = self._session("encoder").run({"pixel_values": pixels}, names)
        self.encoder_runs += 1
        arrays = {n: np.ascontiguousarray(o, dtype=np.float32)
                  for n, o in zip(names, outs, strict=True)}
        if cache_key is not None and self.cache is not None:
            self.cache.put(self._cache_key(cache_key),
                           dict(arrays, original_size=np.asarray(size, np.int64)))
        return SegEncoding(cache_key, size, arrays)

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

    def _run_decoder(self, enc: SegEncoding, points: Sequence[Sequence[float]],
                     box: Sequence[float] | None, mask_input: np.ndarray | None
                     ) -> tuple[list[Point], list[float] | None, list[np.ndarray]]:
        """Check the prompt, run the decoder; return (points, box) as checked and the
        ``decoder_outputs`` arrays, each with its batch axis of 1."""
        pts, bx = check_prompt(enc.original_size, points, box)
        if not isinstance(enc, SegEncoding) or not self._valid(enc.arrays):
            raise InvalidArgument(self.foreign_encoding, detail={"field": "enc"})
        m = self._spec["mask_size"]
        tr = self.transform(enc.original_size)
        coords = [tr.apply_coords([[x, y] for x, y, _ in pts])] if pts else []
        labels = [float(lab) for _, _, lab in pts]
        if bx is not None:
            coords.append(tr.apply_box(bx))
            labels += [2.0, 3.0]
        if bx is None or self.pad_after_box:
            coords.append(np.zeros((1, 2), np.float32))  # the padding point the encoders add
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
        feeds = {n: enc.arrays[n] for n in self.features}
        feeds.update({"point_coords": np.concatenate(coords, axis=0)[None].astype(np.float32),
                      "point_labels": np.asarray([labels], dtype=np.float32),
                      "mask_input": mask, "has_mask_input": has})
        outs = self._session("decoder").run(feeds, list(self.decoder_outputs))
        return pts, bx, outs

    def _decode(self, enc: SegEncoding, points: Sequence[Sequence[float]],
                box: Sequence[float] | None, mask_input: np.ndarray | None,
                multimask: bool | None) -> tuple[float, np.ndarray]:
        """(score, low-res logits (1, M, M)) of the chosen mask token."""
        pts, bx, outs = self._run_decoder(enc, points, box, mask_input)
        scores, masks = outs[0][0], outs[1][0]
        idx = self._select(scores, masks, default_multimask(pts, bx, mask_input, multimask))
        return float(scores[idx]), np.ascontiguousarray(masks[idx:idx + 1])

    def _logits(self, low: np.ndarray, clean: bool) -> np.ndarray:
        return clean_logits(low[0], self._spec["threshold"]) if clean else low

    def predict(self, enc: SegEncoding, points: Sequence[Point] = (),
                box: Sequence[float] | None = None, mask_input: np.ndarray | None = None,
                multimask: bool | None = None, clean: bool = False) -> SegResult:
        """Full result: bool (h, w) mask at the original size (see the family module's doc).
        ``clean``: specks removed and pinholes filled (:func:`clean_logits`); off by default,
        so the mask is the model's own (what the parity tests compare)."""
        score, low = self._decode(enc, points, box, mask_input, multimask)
        up = self.upscaler(enc.original_size)
        mask = np.zeros(enc.original_size, dtype=bool)
        reg = up.region(self._logits(low, clean), self._spec["threshold"])
        if reg is None:
            return SegResult(score, low, mask)
        crop, x0, y0 = reg
        mask[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop
        return SegResult(score, low, mask, mask_bbox(crop, x0, y0), int(crop.sum()))

    def predict_polygons(self, enc: SegEncoding, points: Sequence[Point] = (),
                         box: Sequence[float] | None = None,
                         mask_input: np.ndarray | None = None, multimask: bool | None = None,
                         tolerance: float = 1.0, clean: bool = True
                         ) -> tuple[SegResult, list[Polygon]]:
        """Per-click fast path: the mask is computed and traced only in its window (the
        smallest one that can hold a positive pixel); ``SegResult.mask`` is None.

        ``clean`` (default on: what a person sees and accepts): specks removed, pinholes filled
        and at most :data:`~backend.models.mask_clean.MAX_PARTS` parts, on the low-res logits
        before upscaling, so a speckled mask neither floods the canvas with polygons nor costs
        the tracer hundreds of ms. ``low_res_logits`` stay the model's own (refinement feeds
        them back, as segment-anything's predictor does)."""
        score, low = self._decode(enc, points, box, mask_input, multimask)
        reg = self.upscaler(enc.original_size).region(self._logits(low, clean),
                                                      self._spec["threshold"])
        if reg is None:
            return SegResult(score, low, None), []
        crop, x0, y0 = reg
        polys = region_polygons(crop, x0, y0, tolerance, max_parts=MAX_PARTS if clean else None)
        return SegResult(score, low, None, mask_bbox(crop, x0, y0), int(crop.sum())), polys
