"""SAM runtime behaviour: the test weights are not degenerate, the per-click fast path equals the
full path, the encoder runs once per image, broken packs and bad prompts are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from backend.errors import InvalidArgument, PackError
from backend.geometry.masks import mask_to_polygons, polygons_to_mask
from backend.models.pack import load_pack
from backend.models.sam import SamSegmenter
from backend.models.segmenter import Segmenter, load_segmenter
from tests.models.sam_fixtures import SIZES, Tiny, iou, make_image, sam_tiny  # noqa: F401

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def seg(sam_tiny: Tiny) -> SamSegmenter:  # noqa: F811
    s = load_segmenter(sam_tiny.pack)
    assert isinstance(s, SamSegmenter) and isinstance(s, Segmenter)
    return s


@pytest.mark.parametrize("size", SIZES)
def test_masks_are_blobs_that_follow_the_prompt(seg: SamSegmenter, size: tuple[int, int]) -> None:
    h, w = size
    enc = seg.encode_image(make_image(h, w, seed=7))
    clicks = [(0.25 * w, 0.3 * h), (0.75 * w, 0.7 * h)]
    masks = []
    for x, y in clicks:
        res = seg.predict(enc, [(x, y, 1)])
        m = res.mask
        assert 0.05 <= m.mean() <= 0.6, f"mask covers {m.mean():.1%} of the image"
        labels, n = ndimage.label(m)
        assert np.bincount(labels.ravel())[1:].max() >= 0.95 * m.sum()  # one main part
        assert m[int(y), int(x)]  # the clicked pixel is in its own mask
        masks.append(m)
    assert iou(*masks) < 0.5  # the mask moves with the click
    box_a = seg.predict(enc, box=[0.1 * w, 0.1 * h, 0.5 * w, 0.5 * h]).mask
    box_b = seg.predict(enc, box=[0.4 * w, 0.3 * h, 0.9 * w, 0.9 * h]).mask
    assert 0.01 <= box_a.mean() <= 0.6 and 0.01 <= box_b.mean() <= 0.6
    assert iou(box_a, box_b) < 0.8  # and with the box
    negative = seg.predict(enc, [(*clicks[0], 1), (0.35 * w, 0.4 * h, 0)]).mask
    assert iou(negative, masks[0]) < 0.95  # a background click changes the mask


def test_candidate_masks_and_scores_differ(seg: SamSegmenter) -> None:
    enc = seg.encode_image(make_image(*SIZES[0], seed=8))
    h, w = SIZES[0]
    feeds_click = ((0.5 * w, 0.5 * h, 1),)
    single = seg.predict(enc, feeds_click, multimask=False)
    multi = seg.predict(enc, feeds_click, multimask=True)
    assert abs(single.score - multi.score) > 0.01
    assert single.area != multi.area
    assert multi.score == seg.predict(enc, feeds_click).score  # lone click: multimask by default


@pytest.mark.parametrize("tolerance", [0.0, 1.0, 2.5])
def test_polygon_fast_path_equals_full_path(seg: SamSegmenter, tolerance: float) -> None:
    for i, (h, w) in enumerate([*SIZES, (1200, 1900)]):
        enc = seg.encode_image(make_image(h, w, seed=i))
        for prompt in (dict(points=[(0.6 * w, 0.45 * h, 1)]),
                       dict(box=[0.3 * w, 0.2 * h, 0.9 * w, 0.95 * h])):
            full = seg.predict(enc, **prompt)
            fast, polys = seg.predict_polygons(enc, **prompt, tolerance=tolerance)
            assert fast.mask is None
            assert fast.area == full.area == int(full.mask.sum())
            assert fast.bbox == full.bbox
            assert fast.score == full.score
            # The shipped mask equals the reference upscale of the whole image (no window bug).
            ref = seg.upscaler((h, w)).full(full.low_res_logits) > 0
            assert iou(ref, full.mask) >= 0.999
            # Polygons traced in the window equal polygons traced on the full mask.
            ours = polygons_to_mask(polys, h, w)
            theirs = polygons_to_mask(mask_to_polygons(full.mask, tolerance), h, w)
            assert iou(ours, theirs) >= 0.999
            if tolerance == 0.0:
                assert iou(ours, full.mask) >= 0.999


def test_encoder_runs_once_for_many_clicks(sam_tiny: Tiny) -> None:  # noqa: F811
    from backend.models.cache import EmbeddingCache

    cache = EmbeddingCache(None)
    seg = load_segmenter(sam_tiny.pack, cache=cache)
    image = make_image(*SIZES[1], seed=2)
    enc = seg.encode_image(image, cache_key="image-2")
    h, w = SIZES[1]
    res = None
    for i in range(12):
        pts = [(w * (0.1 + 0.07 * i), h * 0.5, 1)]
        res = seg.predict(enc, pts, mask_input=None if res is None else res.low_res_logits)
        seg.predict_polygons(enc, pts)
    assert seg.encoder_runs == 1
    # A second segmenter sharing the cache gets the embedding without encoding.
    other = load_segmenter(sam_tiny.pack, cache=cache)
    enc2 = other.encode_image(image, cache_key="image-2")
    assert other.encoder_runs == 0
    np.testing.assert_array_equal(enc2.arrays["image_embeddings"], enc.arrays["image_embeddings"])
    other.encode_image(image, cache_key="another image")
    assert other.encoder_runs == 1
    other.unload()  # sessions come back on demand
    assert other.predict(enc2, [(10.0, 10.0, 1)]).low_res_logits.shape == (1, 256, 256)


def test_bad_prompts_are_refused(seg: SamSegmenter) -> None:
    h, w = SIZES[0]
    enc = seg.encode_image(make_image(h, w))
    for kwargs, field in [(dict(points=[(w + 5.0, 10.0, 1)]), "points[0]"),
                          (dict(points=[(10.0, -1.0, 1)]), "points[0]"),
                          (dict(points=[(10.0, 10.0, 2)]), "points[0]"),
                          (dict(), "points"),
                          (dict(box=[50.0, 50.0, 10.0, 80.0]), "box"),
                          (dict(points=[(1.0, 1.0, 1)], mask_input=np.zeros((64, 64))),
                           "mask_input")]:
        with pytest.raises(InvalidArgument) as info:
            seg.predict(enc, **kwargs)
        assert info.value.detail["field"] == field
    with pytest.raises(InvalidArgument):
        seg.encode_image(np.zeros((10, 10), np.uint8))


def _copy(pack_root: Path, dest: Path) -> Path:
    shutil.copytree(pack_root, dest)
    return dest


def test_broken_packs_are_refused(sam_tiny: Tiny, tmp_path: Path) -> None:  # noqa: F811
    root = sam_tiny.pack.root
    damaged = _copy(root, tmp_path / "damaged")
    with open(damaged / "prompt_decoder.onnx", "r+b") as fh:
        fh.seek(200)
        byte = fh.read(1)
        fh.seek(200)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(PackError, match="damaged"):
        load_pack(damaged)

    missing = _copy(root, tmp_path / "missing")
    (missing / "image_encoder.onnx").unlink()
    with pytest.raises(PackError, match="incomplete"):
        load_pack(missing)

    old = _copy(root, tmp_path / "old")
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["config"]["mask_size"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackError, match="mask_size"):
        load_segmenter(load_pack(old))

    garbage = _copy(root, tmp_path / "garbage")
    (garbage / "prompt_decoder.onnx").write_bytes(b"not an onnx graph")
    manifest = json.loads((garbage / "manifest.json").read_text())
    manifest["files"]["prompt_decoder.onnx"] = __import__("hashlib").sha256(
        b"not an onnx graph").hexdigest()
    (garbage / "manifest.json").write_text(json.dumps(manifest))
    seg = load_segmenter(load_pack(garbage))
    enc = seg.encode_image(make_image(40, 60))
    with pytest.raises(PackError, match="prompt_decoder.onnx"):
        seg.predict(enc, [(5.0, 5.0, 1)])


def test_only_segmenter_packs_load(sam_tiny: Tiny) -> None:  # noqa: F811
    from dataclasses import replace

    detector = replace(sam_tiny.pack, manifest={**sam_tiny.pack.manifest, "task": "detector",
                                                 "family": "owlv2"})
    with pytest.raises(PackError, match="not a segmenter"):
        load_segmenter(detector)
    unknown = replace(sam_tiny.pack, manifest={**sam_tiny.pack.manifest, "family": "sam9"})
    with pytest.raises(PackError, match="sam9"):
        load_segmenter(unknown)


def test_int8_pack_is_smaller_and_agrees(sam_tiny: Tiny, tmp_path: Path) -> None:  # noqa: F811
    import onnx

    from build_scripts.exporters import sam as exporter

    pack = exporter.export(family="sam", checkpoint=str(sam_tiny.ckpt), random=None,
                           out=tmp_path / "int8", quantize=True, seed=0, pack_id=None,
                           version="0.0.1")
    assert pack.id.endswith("-int8") and pack.manifest["source"]["quantized"] is True
    ops = {n.op_type for n in onnx.load(str(pack.graph("decoder"))).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    assert pack.graph("decoder").stat().st_size < sam_tiny.pack.graph("decoder").stat().st_size
    fp32, int8 = load_segmenter(sam_tiny.pack), load_segmenter(load_pack(pack.root))
    image = make_image(*SIZES[0], seed=4)
    e32, e8 = fp32.encode_image(image), int8.encode_image(image)
    h, w = SIZES[0]
    for point in [(0.2 * w, 0.3 * h, 1), (0.7 * w, 0.6 * h, 1)]:
        a, b = fp32.predict(e32, [point]), int8.predict(e8, [point])
        assert iou(a.mask, b.mask) >= 0.9
        assert abs(a.score - b.score) < 0.05
