"""Detector behaviour a user notices: re-scoring without re-encoding, per-label thresholds,
NMS, caching, validation, and refusing broken packs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from backend.errors import InvalidArgument, PackError
from backend.geometry.boxes import box_iou
from backend.models.detector import Detector, load_detector
from backend.models.pack import load_pack, write_pack
from tests.models.owl_fixtures import export_tiny, make_image, owl_root  # noqa: F401

pytest.importorskip("torch")
pytestmark = pytest.mark.models

PROMPTS = {"moth": ["a photo of a moth", "moth"], "leaf": ["green leaf"],
           "seedling": ["a seedling", "young plant"]}


class DictCache:
    """A minimal in-memory EmbeddingCache (``get``/``put`` of dicts of arrays)."""

    def __init__(self) -> None:
        self.store: dict[str, dict[str, np.ndarray]] = {}

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        hit = self.store.get(key)
        return None if hit is None else {k: v.copy() for k, v in hit.items()}

    def put(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        self.store[key] = {k: np.array(v) for k, v in arrays.items()}


@pytest.fixture(scope="module")
def pack(owl_root: Path):  # noqa: F811
    return export_tiny("owlv2", owl_root)[1]


@pytest.fixture(scope="module")
def encoded(pack):
    det = Detector(pack, threads=1)
    return det, det.encode_image(make_image(150, 110, seed=4))


def _visible(enc) -> int:
    """How many patches have a box that overlaps the picture (the others are not reported)."""
    h, w = enc.original_size
    b = np.clip(enc.boxes, 0, [w, h, w, h])
    return int(((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])).sum())


def _key(d) -> tuple[float, ...]:
    return tuple(round(v, 3) for v in d.box)


def test_rescoring_never_runs_the_image_encoder(pack) -> None:
    det = Detector(pack, threads=1)
    enc = det.encode_image(make_image(150, 110, seed=4))
    low = det.detect(enc, PROMPTS, 0.2, nms_iou=None)
    high = det.detect(enc, PROMPTS, 0.4, nms_iou=None)
    text_runs = det.text_encoder_runs
    det.detect(enc, PROMPTS, 0.3)  # same phrases again: cached embeddings
    assert det.text_encoder_runs == text_runs
    changed = det.detect(enc, {"moth": ["a moth on a leaf"]}, 0.2)
    assert det.text_encoder_runs == text_runs + 1
    assert det.encoder_runs == 1
    assert 0 < len(high) < len(low)
    assert {_key(d) for d in high} <= {_key(d) for d in low}
    assert all(d.score > 0.4 for d in high)
    assert changed and {d.label for d in changed} == {"moth"}


def test_per_label_thresholds(encoded) -> None:
    det, enc = encoded
    base = det.detect(enc, PROMPTS, 0.1, nms_iou=None)
    got = det.detect(enc, PROMPTS, {"moth": 1.0, "leaf": 0.3}, nms_iou=None)  # seedling: 0.1
    assert base and not any(d.label == "moth" for d in got)
    expect = [d for d in base if (d.label == "leaf" and d.score > 0.3) or d.label == "seedling"]
    assert [(d.label, _key(d)) for d in got] == [(d.label, _key(d)) for d in expect]
    assert any(d.label == "moth" for d in base), "the test must silence a label that was there"


def test_a_label_scores_its_best_phrase(encoded) -> None:
    det, enc = encoded
    a, b = PROMPTS["seedling"]
    one = {_key(d): d.score for d in det.detect(enc, {"x": [a]}, 0.0, nms_iou=None)}
    two = {_key(d): d.score for d in det.detect(enc, {"x": [b]}, 0.0, nms_iou=None)}
    both = det.detect(enc, {"x": [a, b]}, 0.0, nms_iou=None)
    assert len(both) == _visible(enc) == len(one)  # threshold 0: every patch in the picture
    for d in both:
        assert d.score == pytest.approx(max(one[_key(d)], two[_key(d)]), abs=1e-6)
        assert d.phrase == (a if one[_key(d)] >= two[_key(d)] else b)


def test_nms_is_greedy_per_label(encoded) -> None:
    det, enc = encoded
    every = det.detect(enc, PROMPTS, 0.1, nms_iou=None)
    kept = det.detect(enc, PROMPTS, 0.1, nms_iou=0.3)
    assert 0 < len(kept) < len(every)
    kept_keys = {_key(d) for d in kept}
    assert kept_keys <= {_key(d) for d in every}
    # NMS runs on the model's unclipped boxes: check on those.
    raw = dict(zip([_key(d) for d in every], _raw_boxes(enc, every), strict=True))
    for label in PROMPTS:
        mine = np.array([raw[_key(d)] for d in kept if d.label == label])
        if len(mine) > 1:
            assert (box_iou(mine, mine)[np.triu_indices(len(mine), 1)] <= 0.3).all()
    # ... and every dropped box overlaps a better kept box of its own label.
    for d in every:
        if _key(d) not in kept_keys:
            better = [raw[_key(k)] for k in kept if k.label == d.label and k.score >= d.score]
            assert box_iou(raw[_key(d)][None], np.array(better)).max() > 0.3


def _raw_boxes(enc, dets) -> list[np.ndarray]:
    """Unclipped model boxes of detections, found by their patch."""
    h, w = enc.original_size
    clipped = np.clip(enc.boxes, 0, [w, h, w, h])
    return [enc.boxes[np.argmin(np.abs(clipped - np.array(d.box)).sum(axis=1))] for d in dets]


def test_boxes_are_image_pixels_sorted_by_score(encoded) -> None:
    det, enc = encoded
    h, w = enc.original_size
    dets = det.detect(enc, PROMPTS, 0.1)
    boxes = np.array([d.box for d in dets])
    assert (boxes[:, [0, 2]] >= 0).all() and (boxes[:, [0, 2]] <= w).all()
    assert (boxes[:, [1, 3]] >= 0).all() and (boxes[:, [1, 3]] <= h).all()
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
    scores = [d.score for d in dets]
    assert scores == sorted(scores, reverse=True)
    assert det.detect(enc, {}, 0.1) == []


def test_cache_skips_the_encoder_and_checks_the_entry(pack) -> None:
    cache = DictCache()
    image = make_image(110, 150, seed=5)
    first = Detector(pack, cache=cache, threads=1)
    expected = first.detect(first.encode_image(image, cache_key="img-1"), PROMPTS, 0.2)
    assert first.encoder_runs == 1 and len(cache.store) == 1
    assert all(k.startswith(pack.source_tag) for k in cache.store), "keys name the pack"
    second = Detector(pack, cache=cache, threads=1)
    again = second.detect(second.encode_image(image, cache_key="img-1"), PROMPTS, 0.2)
    assert second.encoder_runs == 0
    assert [(d.label, d.box, d.score) for d in again] == [(d.label, d.box, d.score) for d in expected]
    # An entry for another image size under the same key is stale: re-encode.
    second.encode_image(make_image(90, 90, seed=5), cache_key="img-1")
    assert second.encoder_runs == 1


def test_find_similar_refuses_bad_boxes(encoded) -> None:
    det, enc = encoded
    h, w = enc.original_size
    for bad in ([10, 10, 5, 20], [0, 0, 10], ["a", 0, 1, 1], [w + 1, 0, w + 5, 5], [0, 0, np.nan, 4]):
        with pytest.raises(InvalidArgument, match="example_box"):
            det.find_similar(enc, bad)
    hits = det.find_similar(enc, [5, 5, 40, 40], threshold=0.0, nms_iou=None, label="moth")
    assert len(hits) == _visible(enc) and {d.label for d in hits} == {"moth"}


@pytest.mark.parametrize(("prompts", "thresholds"), [
    ({"": ["moth"]}, 0.1), ({"moth": []}, 0.1), ({"moth": ["  "]}, 0.1),
    ({"moth": ["moth"]}, {"leaf": 0.2}), ({"moth": ["moth"]}, 1.5), (["moth"], 0.1)])
def test_bad_prompts_are_refused(encoded, prompts, thresholds) -> None:
    det, enc = encoded
    with pytest.raises(InvalidArgument):
        det.detect(enc, prompts, thresholds)


def test_unload_frees_sessions_and_reloads_lazily(pack) -> None:
    det = Detector(pack, threads=1)
    assert det.provider == ""
    image = make_image(80, 120, seed=6)
    before = det.detect(det.encode_image(image), PROMPTS, 0.2)
    assert det.provider == "CPUExecutionProvider"
    det.unload()
    assert det.provider == ""
    after = det.detect(det.encode_image(image), PROMPTS, 0.2)
    assert [(d.label, d.box) for d in after] == [(d.label, d.box) for d in before]


def _copy(pack, tmp_path: Path) -> Path:
    dest = tmp_path / "pack"
    shutil.copytree(pack.root, dest)
    return dest


def test_damaged_pack_is_refused(pack, tmp_path: Path) -> None:
    root = _copy(pack, tmp_path)
    data = bytearray((root / "image_encoder.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (root / "image_encoder.onnx").write_bytes(bytes(data))
    with pytest.raises(PackError, match="damaged"):
        load_detector(root)


def test_unloadable_graph_is_refused(pack, tmp_path: Path) -> None:
    root = _copy(pack, tmp_path)
    (root / "image_encoder.onnx").write_bytes(b"not an onnx graph")
    write_pack(root, {k: v for k, v in pack.manifest.items() if k not in ("files", "schema_version")}
               | {"extra_files": ["tokenizer.json"]})  # checksums now match the junk
    det = load_detector(root)
    with pytest.raises(PackError, match="image_encoder.onnx"):
        det.encode_image(make_image(40, 40))


@pytest.mark.parametrize("change", [
    {"task": "segmenter", "family": "sam"},
    {"preprocessing": {"method": "squash", "image_size": 96}},
    {"config": {"num_patches": 144}},
])
def test_pack_of_the_wrong_kind_is_refused(pack, tmp_path: Path, change: dict) -> None:
    root = _copy(pack, tmp_path)
    manifest = {k: v for k, v in pack.manifest.items() if k not in ("files", "schema_version")}
    write_pack(root, manifest | change | {"extra_files": ["tokenizer.json"]})
    with pytest.raises(PackError, match="cannot be used as a detector"):
        Detector(load_pack(root))


def test_find_similar_is_score_query_of_query_embedding(encoded, pack) -> None:
    det, enc = encoded
    other = det.encode_image(make_image(90, 130, seed=9))
    for box in ([5, 5, 40, 40], [60, 20, 109, 149], [0, 0, 110, 150]):
        for thr, iou in ((0.0, None), (0.3, 0.3)):
            direct = det.find_similar(enc, box, threshold=thr, nms_iou=iou, label="moth")
            q = det.query_embedding(enc, box)
            assert q.shape == (int(pack.config["embed_dim"]),)
            assert np.isclose(np.linalg.norm(q), 1.0, atol=1e-4)
            split = det.score_query(enc, q, threshold=thr, nms_iou=iou, label="moth")
            assert [(d.box, d.score, d.label) for d in split] == \
                [(d.box, d.score, d.label) for d in direct]
        # The same query scores another image: every visible patch there at threshold 0.
        assert len(det.score_query(other, q, threshold=0.0, nms_iou=None)) == _visible(other)
    with pytest.raises(InvalidArgument, match="query embedding"):
        det.score_query(enc, q[:-1])
