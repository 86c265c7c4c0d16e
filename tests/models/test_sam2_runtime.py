"""SAM 2 runtime behaviour: the test weights are not degenerate, the per-click fast path equals
the full path, the encoder runs once per image, broken packs and bad prompts are refused, the
int8 export agrees."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from backend.errors import InvalidArgument, PackError
from backend.geometry.masks import mask_to_polygons, polygons_to_mask
from backend.models.mask_clean import MIN_CELLS, clean_logits
from backend.models.pack import load_pack
from backend.models.sam2 import Sam2Segmenter
from backend.models.segmenter import SegEncoding, Segmenter, SegResult, load_segmenter
from tests.models.sam2_fixtures import SIZES, Tiny, iou, make_image, sam2_tiny  # noqa: F401

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def seg(sam2_tiny: Tiny) -> Sam2Segmenter:  # noqa: F811
    s = load_segmenter(sam2_tiny.pack)
    assert isinstance(s, Sam2Segmenter) and isinstance(s, Segmenter)
    return s


def _mask(res: SegResult) -> np.ndarray:
    assert res.mask is not None  # predict() always returns the full-size mask
    return res.mask


def _parts(mask: np.ndarray) -> np.ndarray:
    """Sizes of the 4-connected parts, largest first."""
    labels, _ = ndimage.label(mask)
    return np.sort(np.bincount(labels.ravel())[1:])[::-1]


@pytest.mark.parametrize("size", SIZES)
def test_masks_are_blobs_that_follow_the_prompt(seg: Sam2Segmenter, size: tuple[int, int]) -> None:
    h, w = size
    enc = seg.encode_image(make_image(h, w, seed=7))
    clicks = [(0.25 * w, 0.3 * h), (0.75 * w, 0.7 * h)]
    masks = []
    for x, y in clicks:
        m = _mask(seg.predict(enc, [(x, y, 1)]))
        assert 0.05 <= m.mean() <= 0.6, f"mask covers {m.mean():.1%} of the image"
        assert _parts(m)[0] >= 0.95 * m.sum()  # one main part
        assert m[int(y), int(x)]  # the clicked pixel is in its own mask
        masks.append(m)
    assert iou(*masks) < 0.5  # the mask moves with the click
    box_a = _mask(seg.predict(enc, box=[0.1 * w, 0.1 * h, 0.5 * w, 0.5 * h]))
    box_b = _mask(seg.predict(enc, box=[0.4 * w, 0.3 * h, 0.9 * w, 0.9 * h]))
    for m in (box_a, box_b):
        assert 0.05 <= m.mean() <= 0.6
        assert _parts(m)[:3].sum() >= 0.9 * m.sum()  # a few parts, not speckle
    assert iou(box_a, box_b) < 0.8  # and with the box
    negative = _mask(seg.predict(enc, [(*clicks[0], 1), (0.45 * w, 0.5 * h, 0)]))
    assert negative.sum() < masks[0].sum() and iou(negative, masks[0]) < 0.95  # it carves
    both = _mask(seg.predict(enc, [(*clicks[0], 1), (*clicks[1], 1)]))
    assert both.sum() > max(m.sum() for m in masks)  # two positives grow the mask


def test_mask_tokens_and_scores_differ(seg: Sam2Segmenter) -> None:
    h, w = SIZES[0]
    enc = seg.encode_image(make_image(h, w, seed=8))
    winners = set()
    for x, y in [(0.5, 0.5), (0.2, 0.3), (0.8, 0.7)]:
        raw = seg.decode(enc, [(x * w, y * h, 1)])
        areas = (raw["low_res_masks"] > 0).mean(axis=(1, 2))
        assert np.all((areas > 0.01) & (areas < 0.7)), areas
        assert len(np.unique(np.round(areas, 3))) >= 3  # candidates of different sizes
        scores = raw["iou_scores"]
        assert np.ptp(scores[1:]) > 0.02  # the arg-max is not a tie
        winners.add(int(np.argmax(scores[1:])))
    box = seg.decode(enc, box=[0.2 * w, 0.2 * h, 0.55 * w, 0.6 * h])["iou_scores"]
    winners.add(int(np.argmax(box[1:])))
    assert len(winners) >= 2  # which candidate wins depends on the prompt


@pytest.mark.parametrize("tolerance", [0.0, 1.0, 2.5])
def test_polygon_fast_path_equals_full_path(seg: Sam2Segmenter, tolerance: float) -> None:
    for i, (h, w) in enumerate([*SIZES, (1200, 1900)]):
        enc = seg.encode_image(make_image(h, w, seed=i))
        for prompt in (dict(points=[(0.6 * w, 0.45 * h, 1)]),
                       dict(box=[0.3 * w, 0.2 * h, 0.9 * w, 0.95 * h])):
            # The polygon path cleans specks by default; the full path does on request.
            full = seg.predict(enc, **prompt, clean=True)
            full_mask = _mask(full)
            fast, polys = seg.predict_polygons(enc, **prompt, tolerance=tolerance)
            assert fast.mask is None
            assert fast.area == full.area == int(full_mask.sum()) > 0
            assert fast.bbox == full.bbox
            assert fast.score == full.score
            np.testing.assert_array_equal(fast.low_res_logits, full.low_res_logits)
            # The shipped mask equals the plain upscale of the whole image (no window bug).
            ref = seg.upscaler((h, w)).full(clean_logits(full.low_res_logits[0])) > 0
            assert iou(ref, full_mask) >= 0.999
            ours = polygons_to_mask(polys, h, w)
            theirs = polygons_to_mask(mask_to_polygons(full_mask, tolerance), h, w)
            assert iou(ours, theirs) >= 0.999
            if tolerance == 0.0:
                assert iou(ours, full_mask) >= 0.999


def test_clicked_masks_lose_specks_and_pinholes_only(seg: Sam2Segmenter) -> None:
    """The masks a click previews are the model's, minus what no one would draw: parts and holes
    of a few low-res cells. The random test model leaves such specks around its blobs."""
    h, w = 1200, 1900
    enc = seg.encode_image(make_image(h, w, seed=2))
    cell = (h / 256) * (w / 256)  # image pixels per low-res cell
    changed = 0
    for prompt in (dict(points=[(0.6 * w, 0.45 * h, 1)]),
                   dict(box=[0.3 * w, 0.2 * h, 0.9 * w, 0.95 * h])):
        raw = _mask(seg.predict(enc, **prompt))
        clean = _mask(seg.predict(enc, **prompt, clean=True))
        _, polys = seg.predict_polygons(enc, **prompt)
        assert iou(raw, clean) >= 0.99  # the object itself is untouched
        assert _parts(clean)[0] >= _parts(raw)[0]  # the main part kept (holes may fill)
        gone = raw & ~clean
        assert _parts(gone).max(initial=0) <= MIN_CELLS * cell  # only specks removed
        added = clean & ~raw
        assert _parts(added).max(initial=0) <= 4 * MIN_CELLS * cell  # only pinholes filled
        assert len(polys) == len(_parts(clean)) <= len(_parts(raw))
        changed += int(gone.any() or added.any())
    assert changed  # the model does leave specks, so this test checks something


def test_encoder_runs_once_for_many_clicks(sam2_tiny: Tiny) -> None:  # noqa: F811
    from backend.models.cache import EmbeddingCache

    cache = EmbeddingCache(None)
    seg = load_segmenter(sam2_tiny.pack, cache=cache)
    image = make_image(*SIZES[1], seed=2)
    enc = seg.encode_image(image, cache_key="image-2")
    h, w = SIZES[1]
    res = None
    for i in range(12):
        pts = [(w * (0.1 + 0.07 * i), h * 0.5, 1)]
        res = seg.predict(enc, pts, mask_input=None if res is None else res.low_res_logits)
        seg.predict_polygons(enc, pts)
    assert seg.encoder_runs == 1
    other = load_segmenter(sam2_tiny.pack, cache=cache)  # shares the cache: no encoding
    enc2 = other.encode_image(image, cache_key="image-2")
    assert other.encoder_runs == 0
    for name in ("image_embeddings", "high_res_feats_0", "high_res_feats_1"):
        np.testing.assert_array_equal(enc2.arrays[name], enc.arrays[name])
    assert other.predict(enc2, [(10.0, 10.0, 1)]).score == seg.predict(enc, [(10.0, 10.0, 1)]).score
    other.encode_image(image[:, ::-1].copy(), cache_key="another image")
    assert other.encoder_runs == 1
    other.unload()  # sessions come back on demand
    assert other.predict(enc2, [(10.0, 10.0, 1)]).low_res_logits.shape == (1, 256, 256)


def test_bad_prompts_and_foreign_encodings_are_refused(seg: Sam2Segmenter) -> None:
    h, w = SIZES[0]
    enc = seg.encode_image(make_image(h, w))
    cases: list[tuple[dict[str, Any], str]] = [
        (dict(points=[(w + 5.0, 10.0, 1)]), "points[0]"),
        (dict(points=[(10.0, -1.0, 1)]), "points[0]"),
        (dict(points=[(10.0, 10.0, 2)]), "points[0]"),
        (dict(), "points"),
        (dict(box=[50.0, 50.0, 10.0, 80.0]), "box"),
        (dict(points=[(1.0, 1.0, 1)], mask_input=np.zeros((64, 64))), "mask_input")]
    for kwargs, field in cases:
        with pytest.raises(InvalidArgument) as info:
            seg.predict(enc, **kwargs)
        assert info.value.detail["field"] == field
    with pytest.raises(InvalidArgument):
        seg.encode_image(np.zeros((10, 10), np.uint8))
    sam_like = SegEncoding(None, (h, w), {"image_embeddings": enc.arrays["image_embeddings"]})
    with pytest.raises(InvalidArgument, match="SAM 2") as info:
        seg.predict(sam_like, [(5.0, 5.0, 1)])
    assert info.value.detail["field"] == "enc"


def _copy(root: Path, dest: Path) -> Path:
    shutil.copytree(root, dest)
    return dest


def test_broken_and_foreign_packs_are_refused(sam2_tiny: Tiny, tmp_path: Path) -> None:  # noqa: F811
    root = sam2_tiny.pack.root
    old = _copy(root, tmp_path / "old")
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["config"]["stability_thresh"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackError, match="stability_thresh"):
        load_segmenter(load_pack(old))

    swapped = _copy(root, tmp_path / "swapped")  # graphs swapped: inputs do not match
    manifest = json.loads((swapped / "manifest.json").read_text())
    graphs = manifest["io"]["graphs"]
    graphs["encoder"]["file"], graphs["decoder"]["file"] = graphs["decoder"]["file"], graphs["encoder"]["file"]
    (swapped / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackError, match="Re-export"):
        load_segmenter(load_pack(swapped)).encode_image(make_image(40, 60))

    with pytest.raises(PackError, match="not SAM 2"):
        Sam2Segmenter(replace(sam2_tiny.pack, manifest={**sam2_tiny.pack.manifest, "family": "sam"}))
    squash = {**sam2_tiny.pack.manifest,
              "preprocessing": {**sam2_tiny.pack.preprocessing, "resize": "longest_side"}}
    with pytest.raises(PackError, match="stretch"):
        Sam2Segmenter(replace(sam2_tiny.pack, manifest=squash))


def test_int8_pack_is_smaller_and_agrees(sam2_tiny: Tiny, tmp_path: Path) -> None:  # noqa: F811
    import onnx

    from build_scripts.exporters import sam2 as exporter

    pack = exporter.export(family="sam2", checkpoint=str(sam2_tiny.ckpt), random=None,
                           out=tmp_path / "int8", quantize=True, seed=0, pack_id=None,
                           version="0.0.1")
    assert pack.id.endswith("-int8") and pack.manifest["source"]["quantized"] is True
    ops = {n.op_type for n in onnx.load(str(pack.graph("decoder"))).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    assert pack.graph("decoder").stat().st_size < sam2_tiny.pack.graph("decoder").stat().st_size
    fp32, int8 = load_segmenter(sam2_tiny.pack), load_segmenter(load_pack(pack.root))
    image = make_image(*SIZES[0], seed=4)
    e32, e8 = fp32.encode_image(image), int8.encode_image(image)
    h, w = SIZES[0]
    for point in [(0.2 * w, 0.3 * h, 1), (0.7 * w, 0.6 * h, 1)]:
        a, b = fp32.predict(e32, [point]), int8.predict(e8, [point])
        assert iou(_mask(a), _mask(b)) >= 0.9
        assert abs(a.score - b.score) < 0.05
