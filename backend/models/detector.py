"""Open-vocabulary detector (OWL-ViT and OWLv2, one code path): encode an image once, then
prompt it many times.

The pack holds two ONNX graphs (build_scripts/exporters/owl.py, ADR 0003): the text encoder and
the image encoder. The class head runs here in numpy on the cached image encoding::

    logits[p, q] = (class_embeds[p] . query[q] + logit_shift[p]) * logit_scale[p]
    score        = sigmoid(logits)

so a changed phrase or threshold never runs the image encoder (``encoder_runs`` counts its runs).
Boxes are ``[x0, y0, x1, y1]`` in pixels of the ORIGINAL image (EXIF applied), clipped to it
(a box that lies wholly outside it, in OWLv2's padding, is never proposed); scores are the model's
sigmoid probabilities, as transformers' post-processing reports them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import InvalidArgument, PackError
from backend.geometry.boxes import box_iou, center_to_corners, clip_boxes, nms
from backend.models import owl_preprocess
from backend.models.inputs import full_size
from backend.models.pack import Pack, load_pack
from backend.models.runtime import Session, create_session
from backend.models.tokenizer import ClipTokenizer

FAMILIES = ("owlvit", "owlv2")
_METHOD = {"owlvit": "squash", "owlv2": "pad_square_gaussian_linear"}
_IMAGE_OUTPUTS = ("class_embeds", "class_embeds_norm", "logit_shift", "logit_scale", "pred_boxes")
_TEXT_CACHE_SIZE = 4096


@dataclass
class Detection:
    """One proposal. ``box`` is [x0, y0, x1, y1] in original-image pixels; ``phrase`` is the
    prompt phrase that scored best (None for find-similar)."""

    label: str
    score: float
    box: list[float]
    phrase: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DetectorEncoding:
    """The image encoder's outputs for one image; rescored for any prompt without the encoder.

    ``arrays`` holds the graph outputs by name (batch dim kept) plus ``original_size`` (2,)
    int64 — exactly what an EmbeddingCache stores. The derived fields are views/copies:
    class_embeds (P, D), class_norm (P,), shift (P,), scale (P,), pred_boxes (P, 4) cxcywh
    relative, objectness (P,) or None, boxes (P, 4) xyxy original pixels, NOT clipped,
    visible (P,) bool: the box overlaps the picture (OWLv2 also predicts boxes in its padding;
    those are never proposed and never suppress a visible box).
    """

    key: str | None
    original_size: tuple[int, int]  # (h, w)
    arrays: dict[str, np.ndarray]
    class_embeds: np.ndarray
    class_norm: np.ndarray
    shift: np.ndarray
    scale: np.ndarray
    pred_boxes: np.ndarray
    objectness: np.ndarray | None
    boxes: np.ndarray
    visible: np.ndarray


class Detector:
    """OWL-ViT / OWLv2 runtime over a verified detector pack (sessions created lazily)."""

    def __init__(self, pack: Pack, *, cache: Any = None, threads: int | None = None) -> None:
        _check_pack(pack)
        self.pack = pack
        self.family = pack.family
        self.cache = cache
        self.threads = threads
        self.encoder_runs = 0  # image encoder passes actually run (cache hits excluded)
        self.text_encoder_runs = 0
        self._pre = pack.preprocessing
        cfg = pack.config
        self._num_patches = int(cfg["num_patches"])
        self._dim = int(cfg["embed_dim"])
        self._tok_cfg = dict(cfg["tokenizer"])
        self._lock = threading.RLock()
        self._image: Session | None = None
        self._text: Session | None = None
        self._tokenizer: ClipTokenizer | None = None
        self._phrases: OrderedDict[str, np.ndarray] = OrderedDict()

    # --- sessions ----------------------------------------------------------------------------

    @property
    def provider(self) -> str:
        s = self._image or self._text
        return s.provider if s else ""

    def _session(self, name: str) -> Session:
        with self._lock:
            current = self._image if name == "image_encoder" else self._text
            if current is not None:
                return current
            sess = create_session(self.pack.graph(name), threads=self.threads)
            spec = self.pack.manifest["io"]["graphs"][name]
            missing = [o for o in spec["outputs"] if o not in sess.output_names]
            missing += [i for i in spec["inputs"] if i not in sess.input_names]
            if missing:
                raise PackError(f"Model pack '{self.pack.id}': the graph '{name}' lacks "
                                f"{', '.join(missing)} named in its manifest. Re-export the pack.",
                                detail={"pack": str(self.pack.root), "graph": name})
            if name == "image_encoder":
                self._image = sess
            else:
                self._text = sess
            return sess

    def _tok(self) -> ClipTokenizer:
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = ClipTokenizer(self.pack.file(self._tok_cfg["file"]),
                                                max_length=int(self._tok_cfg["max_length"]),
                                                pad_id=int(self._tok_cfg["pad_id"]))
            return self._tokenizer

    def unload(self) -> None:
        """Drop the sessions (re-created on next use); phrase embeddings are kept (small)."""
        with self._lock:
            self._image = self._text = None

    # --- encoders ----------------------------------------------------------------------------

    def encode_image(self, image: np.ndarray, cache_key: str | None = None,
                     size: tuple[int, int] | None = None) -> DetectorEncoding:
        """Encode an (h, w, 3) uint8 RGB image; with ``cache_key`` and a cache, reuse/keep it.
        ``size``: the full (h, w) when ``image`` was decoded reduced; boxes are in its pixels."""
        image = owl_preprocess.check_image(image)
        h, w = full_size(image, size)
        key = f"{self.pack.source_tag}#{cache_key}" if cache_key is not None else None
        if key is not None and self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None and self._valid(cached, (h, w)):
                return self._wrap(cache_key, dict(cached))
        pixels = owl_preprocess.pixel_values(image, self._pre)
        sess = self._session("image_encoder")
        outs = sess.run({"pixel_values": pixels})
        self.encoder_runs += 1
        arrays = dict(zip(sess.output_names, outs, strict=True))
        arrays["original_size"] = np.array([h, w], dtype=np.int64)
        if key is not None and self.cache is not None:
            self.cache.put(key, arrays)
        return self._wrap(cache_key, arrays)

    def encoding_from_arrays(self, arrays: Mapping[str, np.ndarray],
                             cache_key: str | None = None) -> DetectorEncoding | None:
        """Rebuild an encoding from stored arrays (``DetectorEncoding.arrays``, e.g. read back
        from an EmbeddingCache) without the image or the encoder; its ``key`` is ``cache_key``.

        None when the arrays do not fit this pack: no (2,) ``original_size``, a graph output
        missing, or class embeddings of another shape (another pack or version wrote them).
        """
        size_arr = arrays.get("original_size")
        if size_arr is None or np.shape(size_arr) != (2,):
            return None
        size = (int(size_arr[0]), int(size_arr[1]))
        if not self._valid(arrays, size):
            return None
        return self._wrap(cache_key, dict(arrays))

    def _valid(self, arrays: Mapping[str, np.ndarray], size: tuple[int, int]) -> bool:
        """A cached entry must come from this pack's graph and this image size."""
        names = _IMAGE_OUTPUTS + (("objectness",) if self.family == "owlv2" else ())
        if any(n not in arrays for n in names + ("original_size",)):
            return False
        return (tuple(int(v) for v in arrays["original_size"]) == size
                and arrays["class_embeds"].shape == (1, self._num_patches, self._dim))

    def _wrap(self, key: str | None, arrays: dict[str, np.ndarray]) -> DetectorEncoding:
        h, w = (int(v) for v in arrays["original_size"])
        pred = np.asarray(arrays["pred_boxes"][0], dtype=np.float32)
        scale = owl_preprocess.box_scale(self._pre, h, w)
        obj = arrays.get("objectness")
        boxes = center_to_corners(pred.astype(np.float64)) * scale
        inside = clip_boxes(boxes, w, h)
        return DetectorEncoding(
            key=key, original_size=(h, w), arrays=arrays,
            class_embeds=np.asarray(arrays["class_embeds"][0], dtype=np.float32),
            class_norm=np.asarray(arrays["class_embeds_norm"][0, :, 0], dtype=np.float32),
            shift=np.asarray(arrays["logit_shift"][0, :, 0], dtype=np.float32),
            scale=np.asarray(arrays["logit_scale"][0, :, 0], dtype=np.float32),
            pred_boxes=pred, objectness=None if obj is None else np.asarray(obj[0]),
            boxes=boxes, visible=(inside[:, 2] > inside[:, 0]) & (inside[:, 3] > inside[:, 1]))

    def encode_text(self, phrases: Sequence[str]) -> np.ndarray:
        """(N, D) float32 query vectors as the class head uses them (``q / (|q| + 1e-6)``).

        Cached per phrase in memory (least recently used dropped past 4096); only phrases not
        seen before go through the text encoder, in one batch.
        """
        phrases = list(phrases)
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for p in phrases:
                if p in self._phrases:
                    found[p] = self._phrases[p]
                    self._phrases.move_to_end(p)
        new = [p for p in dict.fromkeys(phrases) if p not in found]
        if new:
            ids, mask = self._tok()(new)
            emb = self._session("text_encoder").run({"input_ids": ids, "attention_mask": mask})[0]
            self.text_encoder_runs += 1
            emb = (emb / (np.linalg.norm(emb, axis=-1, keepdims=True) + 1e-6)).astype(np.float32)
            with self._lock:
                for p, e in zip(new, emb, strict=True):
                    found[p] = self._phrases[p] = e
                while len(self._phrases) > _TEXT_CACHE_SIZE:
                    self._phrases.popitem(last=False)
        if not phrases:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.stack([found[p] for p in phrases])

    # --- heads (numpy) -----------------------------------------------------------------------

    def detect(self, enc: DetectorEncoding, prompts: Mapping[str, Sequence[str]],
               thresholds: Mapping[str, float] | float = 0.1,
               nms_iou: float | None = 0.5) -> list[Detection]:
        """Text-prompted detection on an encoded image, sorted by score (descending).

        ``prompts`` maps a label to its phrases; a label's score on a patch is the max over its
        phrases. Each patch proposes at most its best label (as transformers'
        post-processing), kept when its score is > that label's threshold. ``nms_iou`` runs
        per-label NMS (None: off, as the reference post-processing).
        """
        labels, phrases, owner = _flatten(prompts)
        thr = _thresholds(thresholds, labels)
        if not phrases:
            return []
        q = self.encode_text(phrases)
        logits = (enc.class_embeds @ q.T + enc.shift[:, None]) * enc.scale[:, None]  # (P, Q)
        best = np.argmax(logits, axis=1)
        score = _sigmoid(logits[np.arange(logits.shape[0]), best])
        cls = owner[best]
        keep = np.flatnonzero((score > thr[cls]) & enc.visible)
        if nms_iou is not None and keep.size:
            parts = []
            for c in np.unique(cls[keep]):
                idx = keep[cls[keep] == c]
                parts.append(idx[nms(enc.boxes[idx], score[idx], float(nms_iou))])
            keep = np.concatenate(parts)
        return self._detections(enc, keep, score, [labels[c] for c in cls],
                                [phrases[b] for b in best])

    def find_similar(self, enc: DetectorEncoding, example_box: Sequence[float],
                     threshold: float = 0.5, nms_iou: float | None = 0.3,
                     label: str = "") -> list[Detection]:
        """"Find more like this": image-guided detection with an example box on the same image.

        The query is one patch embedding, chosen as transformers' ``embed_image_query`` does
        with the example box in place of the whole query image: the patches whose predicted box
        has IoU >= 0.8 * the best IoU with the example box (GIoU when none overlaps); among them
        OWL-ViT takes the least similar to the mean embedding, OWLv2 the most object-like
        (highest objectness). Every patch is then scored against it; NMS as
        ``post_process_image_guided_detection`` (on unclipped boxes), kept when score >=
        ``threshold``. No encoder pass.
        """
        q = self.query_embedding(enc, example_box)
        return self.score_query(enc, q, threshold, nms_iou, label)

    def query_embedding(self, enc: DetectorEncoding, example_box: Sequence[float]) -> np.ndarray:
        """The (D,) float32 unit-norm query :meth:`find_similar` scores with: the embedding of
        the patch chosen for ``example_box`` ([x0, y0, x1, y1] pixels of ``enc``'s image).

        Computed once, it scores any other image's encoding (:meth:`score_query`), so a batch
        "find more like this" needs the example's image encoded only once.
        """
        query = _check_box(example_box, enc.original_size)
        h, w = enc.original_size
        rel = query / owl_preprocess.box_scale(self._pre, h, w)
        corners = center_to_corners(enc.pred_boxes.astype(np.float64))
        ious = np.nan_to_num(box_iou(rel[None], corners)[0])
        if not np.any(ious > 0):
            ious = _giou(rel, corners)
        cand = np.flatnonzero(ious >= ious.max() * 0.8)
        if self.family == "owlv2" and enc.objectness is not None:
            pick = cand[np.argmax(enc.objectness[cand])]
        else:
            raw = enc.class_embeds * (enc.class_norm + 1e-6)[:, None]
            pick = cand[np.argmin(raw[cand] @ raw.mean(axis=0))]
        q = enc.class_embeds[pick]
        return (q / (np.linalg.norm(q) + 1e-6)).astype(np.float32)

    def score_query(self, enc: DetectorEncoding, query: Sequence[float] | np.ndarray,
                    threshold: float = 0.5, nms_iou: float | None = 0.3,
                    label: str = "") -> list[Detection]:
        """Score every patch of ``enc`` against a (D,) query from :meth:`query_embedding` (of
        this or another image); kept when score >= ``threshold``, NMS over unclipped boxes as
        ``post_process_image_guided_detection``. No encoder pass."""
        q = np.asarray(query, dtype=np.float32)
        if q.shape != (self._dim,) or not np.all(np.isfinite(q)):
            raise InvalidArgument(f"The query embedding must be {self._dim} finite numbers, got "
                                  f"shape {q.shape}; it belongs to another detector pack.",
                                  detail={"field": "query"})
        score = _sigmoid((enc.class_embeds @ q + enc.shift) * enc.scale)
        keep = np.flatnonzero((score >= float(threshold)) & enc.visible)
        if nms_iou is not None and keep.size:
            keep = keep[nms(enc.boxes[keep], score[keep], float(nms_iou))]
        return self._detections(enc, keep, score, [label] * score.shape[0], None)

    def _detections(self, enc: DetectorEncoding, keep: np.ndarray, score: np.ndarray,
                    labels: Sequence[str], phrases: Sequence[str] | None) -> list[Detection]:
        h, w = enc.original_size
        boxes = clip_boxes(enc.boxes[keep], w, h)
        out = [Detection(label=labels[i], score=float(score[i]),
                         box=[float(v) for v in b], phrase=None if phrases is None else phrases[i])
               for i, b in zip(keep.tolist(), boxes, strict=True)]
        out.sort(key=lambda d: -d.score)
        return out


def load_detector(pack: Pack | str | Path, *, cache: Any = None,
                  threads: int | None = None) -> Detector:
    """A :class:`Detector` for a pack (a verified :class:`Pack`, or a folder / .zip to verify)."""
    if not isinstance(pack, Pack):
        pack = load_pack(Path(pack))
    return Detector(pack, cache=cache, threads=threads)


# --- helpers -----------------------------------------------------------------------------------

def _check_pack(pack: Pack) -> None:
    def bad(msg: str) -> PackError:
        return PackError(f"Model pack '{pack.id}' cannot be used as a detector: {msg}.",
                         detail={"pack": str(pack.root)})

    if pack.task != "detector" or pack.family not in FAMILIES:
        raise bad(f"it is a {pack.family} {pack.task}; choose an OWL-ViT or OWLv2 pack")
    pre, cfg, graphs = pack.preprocessing, pack.config, pack.manifest["io"]["graphs"]
    for name in ("text_encoder", "image_encoder"):
        if name not in graphs:
            raise bad(f"it has no '{name}' graph")
    if pre.get("method") != _METHOD[pack.family]:
        raise bad(f"preprocessing.method is {pre.get('method')!r}, expected "
                  f"{_METHOD[pack.family]!r}")
    for field in ("image_size", "mean", "std", "rescale_factor"):
        if field not in pre:
            raise bad(f"preprocessing.{field} is missing")
    if len(pre["mean"]) != 3 or len(pre["std"]) != 3:
        raise bad("preprocessing.mean and .std need 3 values")
    if pre["method"] == "squash" and pre.get("resample", "bicubic") not in owl_preprocess._RESAMPLE:
        raise bad(f"preprocessing.resample {pre.get('resample')!r} is not supported")
    for field in ("num_patches", "embed_dim", "tokenizer"):
        if field not in cfg:
            raise bad(f"config.{field} is missing")
    tok = cfg["tokenizer"]
    if not isinstance(tok, dict) or any(k not in tok for k in ("file", "max_length", "pad_id")):
        raise bad("config.tokenizer needs file, max_length and pad_id")
    outputs = graphs["image_encoder"].get("outputs", {})
    needed = _IMAGE_OUTPUTS + (("objectness",) if pack.family == "owlv2" else ())
    missing = [n for n in needed if n not in outputs]
    if missing:
        raise bad(f"the image encoder lacks output(s) {', '.join(missing)}")
    pack.file(tok["file"])  # raises PackError when the manifest does not list it


def _flatten(prompts: Mapping[str, Sequence[str]]) -> tuple[list[str], list[str], np.ndarray]:
    """label -> phrases into (labels, phrases, owner index per phrase); validated."""
    if not isinstance(prompts, Mapping):
        raise InvalidArgument("prompts must map each label to its phrases.",
                              detail={"field": "prompts"})
    labels: list[str] = []
    phrases: list[str] = []
    owner: list[int] = []
    for label, items in prompts.items():
        if not isinstance(label, str) or not label.strip():
            raise InvalidArgument(f"Each prompt label must be non-empty text, got {label!r}.",
                                  detail={"field": "prompts"})
        if isinstance(items, str):
            items = [items]
        items = list(items)
        if not items:
            raise InvalidArgument(f"Label '{label}' has no phrase to look for.",
                                  detail={"field": "prompts", "label": label})
        for p in items:
            if not isinstance(p, str) or not p.strip():
                raise InvalidArgument(f"Label '{label}' has an empty phrase; type what to look "
                                      "for.", detail={"field": "prompts", "label": label})
            phrases.append(p)
            owner.append(len(labels))
        labels.append(label)
    return labels, phrases, np.asarray(owner, dtype=np.int64)


def _thresholds(thresholds: Mapping[str, float] | float, labels: list[str]) -> np.ndarray:
    """Per-label thresholds; a mapping may omit labels (they get 0.1) but not add unknown ones."""
    default = 0.1
    if isinstance(thresholds, Mapping):
        unknown = [k for k in thresholds if k not in labels]
        if unknown:
            raise InvalidArgument(f"Threshold given for unknown label(s) {', '.join(unknown)}.",
                                  detail={"field": "thresholds"})
        values = [thresholds.get(lb, default) for lb in labels]
    else:
        values = [thresholds] * len(labels)
    out = np.asarray(values, dtype=np.float64)
    if out.size and not (np.all(np.isfinite(out)) and np.all((out >= 0) & (out <= 1))):
        raise InvalidArgument(f"Thresholds must be between 0 and 1, got {values}.",
                              detail={"field": "thresholds"})
    return out


def _check_box(box: Sequence[float], size: tuple[int, int]) -> np.ndarray:
    try:
        arr = np.asarray([float(v) for v in box], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"example_box must be [x0, y0, x1, y1] numbers, got {box!r}.",
                              detail={"field": "example_box"}) from exc
    if arr.shape != (4,) or not np.all(np.isfinite(arr)) or arr[2] <= arr[0] or arr[3] <= arr[1]:
        raise InvalidArgument(f"example_box must be [x0, y0, x1, y1] with x1 > x0 and y1 > y0, "
                              f"got {list(box)!r}.", detail={"field": "example_box"})
    h, w = size
    if arr[2] <= 0 or arr[3] <= 0 or arr[0] >= w or arr[1] >= h:
        raise InvalidArgument(f"example_box {list(box)!r} lies outside the {w} x {h} image.",
                              detail={"field": "example_box"})
    return arr


def _giou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Generalized IoU of one xyxy box with (N, 4) boxes (transformers' fallback)."""
    iou = np.nan_to_num(box_iou(box[None], boxes)[0])
    area_a = (box[2] - box[0]) * (box[3] - box[1])
    area_b = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    union = area_a + area_b - inter
    hull = np.prod(np.maximum(box[2:], boxes[:, 2:]) - np.minimum(box[:2], boxes[:, :2]), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num(iou - (hull - union) / hull)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))
