"""mask_post against torch's bilinear interpolation and SamProcessor.post_process_masks."""

from __future__ import annotations

import numpy as np
import pytest

from backend.models.mask_clean import MAX_PARTS, MIN_CELLS, clean_logits, label
from backend.models.mask_post import (
    MaskUpscaler,
    ResizeTransform,
    bilinear_matrix,
    mask_bbox,
    region_polygons,
)

torch = pytest.importorskip("torch")
F = torch.nn.functional
pytestmark = pytest.mark.models


def _blobby_logits(seed: int, n: int = 256) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(1, 1, n, n)).astype(np.float32))
    return (F.avg_pool2d(x, 15, 1, 7)[0, 0].numpy() * 12 - 0.4).astype(np.float32)


@pytest.mark.parametrize("n_in,n_out", [(256, 1024), (683, 300), (64, 7), (5, 5), (256, 3001)])
def test_bilinear_matrix_is_torch_bilinear(n_in: int, n_out: int) -> None:
    x = np.random.default_rng(0).normal(size=(n_in,)).astype(np.float32)
    ref = F.interpolate(torch.from_numpy(x)[None, None, :, None].expand(1, 1, n_in, 2).contiguous(),
                        (n_out, 2), mode="bilinear", align_corners=False)[0, 0, :, 0].numpy()
    # torch computes source positions in float32; ours in float64 (differences ~1e-4 at most).
    np.testing.assert_allclose(bilinear_matrix(n_in, n_out) @ x, ref, atol=3e-4)


@pytest.mark.parametrize("size", [(300, 451), (437, 256), (1, 900), (1500, 64), (1024, 1024)])
def test_longest_side_upscale_equals_post_process_masks(size: tuple[int, int]) -> None:
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    logits = _blobby_logits(sum(size))
    tr = ResizeTransform(size, 1024, "longest")
    ref = SamImageProcessorPil().post_process_masks(
        [torch.from_numpy(logits)[None, None]], [list(size)], [list(tr.resized_size)])[0][0, 0]
    up = tr.upscaler(256)
    full = up.full(logits)
    assert full.shape == size
    mismatch = (up.mask(logits) != ref.numpy()).sum()
    assert mismatch <= max(2, size[0] * size[1] // 100_000)  # float rounding right at 0 only
    assert (up.mask(logits) == (full > 0)).all()
    assert 0 < ref.numpy().mean() < 1


@pytest.mark.parametrize("size", [(300, 451), (437, 256)])
def test_stretch_mode_is_a_plain_resize(size: tuple[int, int]) -> None:
    """The SAM2 convention: no padding crop, one bilinear resize to the original size."""
    logits = _blobby_logits(1)
    ref = F.interpolate(torch.from_numpy(logits)[None, None], size, mode="bilinear",
                        align_corners=False)[0, 0].numpy() > 0
    up = ResizeTransform(size, 1024, "stretch").upscaler(256)
    assert (up.mask(logits) != ref).sum() <= 2
    tr = ResizeTransform(size, 1024, "stretch")
    np.testing.assert_allclose(tr.apply_coords([[size[1], size[0]]]), [[1024, 1024]], rtol=1e-6)


def test_region_window_is_tight_and_exact() -> None:
    logits = np.full((256, 256), -5.0, np.float32)
    logits[100:110, 40:60] = 5.0
    up = MaskUpscaler(256, (768, 1024), (1024, 1024), (768, 1024))
    crop, x0, y0 = up.region(logits)
    full = up.full(logits) > 0
    ys, xs = np.nonzero(full)
    assert crop.shape[0] * crop.shape[1] < full.size / 50  # only around the blob
    assert y0 <= ys.min() and y0 + crop.shape[0] > ys.max()
    assert x0 <= xs.min() and x0 + crop.shape[1] > xs.max()
    assert (crop == full[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]]).all()
    assert mask_bbox(crop, x0, y0) == [float(xs.min()), float(ys.min()),
                                       float(xs.max() + 1), float(ys.max() + 1)]
    assert up.region(np.full((256, 256), -1.0, np.float32)) is None


def test_transform_rounds_like_the_processor() -> None:
    tr = ResizeTransform((480, 720))
    assert tr.resized_size == (683, 1024)  # 480 * 1024 / 720 = 682.67 -> 683
    np.testing.assert_allclose(tr.apply_coords([[720, 480], [0, 0]]), [[1024, 683], [0, 0]])
    np.testing.assert_allclose(tr.apply_box([72, 48, 360, 240]),
                               [[102.4, 68.3], [512.0, 341.5]], rtol=1e-6)
    with pytest.raises(ValueError):
        ResizeTransform((0, 10))


@pytest.mark.parametrize("seed", range(6))
def test_components_match_scikit_image(seed: int) -> None:
    from skimage.measure import label as reference

    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 60, 2)
    mask = rng.random((h, w)) < (0.2, 0.45, 0.6, 0.8, 0.5, 0.3)[seed]
    if seed == 5:  # a spiral: one part whose cells are far apart along it
        mask = np.zeros((64, 64), bool)
        for k in range(0, 30, 4):
            mask[k, k:64 - k] = mask[k:64 - k, 63 - k] = mask[63 - k, k + 2:64 - k] = True
            mask[k + 4:64 - k, k + 2] = True
    for eight in (True, False):
        ours, n = label(mask, eight)
        ref = reference(mask, connectivity=2 if eight else 1)
        assert n == ref.max()
        np.testing.assert_array_equal(ours, ref)  # same numbering: raster order of first cell


def _scene() -> np.ndarray:
    """Low-res logits: a big blob with a pinhole and a large hole, specks, a small object."""
    logits = np.full((256, 256), -4.0, np.float32)
    logits[60:160, 50:170] = 6.0
    logits[100, 80] = -2.0                    # pinhole (1 cell)
    logits[120:140, 120:150] = -3.0           # a real hole (600 cells)
    logits[[10, 200, 240], [10, 30, 250]] = 2.0  # single-cell specks
    logits[200:202, 200:202] = 1.0            # a 4-cell speck
    logits[20:26, 200:206] = 3.0              # a small object of its own (36 cells)
    logits[255, 100:103] = 1.0                # a speck on the border
    return logits


def test_clean_drops_specks_and_fills_pinholes_only() -> None:
    logits = _scene()
    out = clean_logits(logits)
    before, after = logits > 0, out > 0
    _, n = label(after, eight=True)
    assert n == 2  # the blob and the small object
    assert after[100, 80]  # pinhole filled
    assert not after[120:140, 120:150].any()  # the real hole stays
    assert after[20:26, 200:206].all()  # objects above the speck size stay
    assert not after[[10, 200, 240, 200, 255], [10, 30, 250, 200, 101]].any()
    changed = before != after
    assert changed.sum() == 1 + 3 + 4 + 3  # exactly the pinhole and the specks
    np.testing.assert_array_equal(out[~changed], logits[~changed])  # the rest untouched
    assert clean_logits(out) is out  # nothing left to clean: no copy


def test_clean_keeps_the_largest_part_even_when_small() -> None:
    logits = np.full((256, 256), -1.0, np.float32)
    logits[128:130, 128:130] = 0.5  # a click on a tiny object: 4 cells, under MIN_CELLS
    logits[10, 10] = 0.4
    out = clean_logits(logits)
    assert (out[128:130, 128:130] > 0).all() and out[10, 10] <= 0
    ties = np.full((256, 256), -1.0, np.float32)
    ties[[5, 50], [5, 50]] = 1.0  # equal parts: the first in raster order stays
    assert (clean_logits(ties) > 0).sum() == 1 and clean_logits(ties)[5, 5] > 0


def test_speckle_becomes_a_few_polygons() -> None:
    """A noise mask (what a poor or random model gives) must not reach the page as thousands
    of polygons: at most MAX_PARTS parts, each above the speck size."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(256, 256)).astype(np.float32)
    raw_parts = label(logits > 0, eight=False)[1]
    out = clean_logits(logits)
    parts, n = label(out > 0, eight=False)
    sizes = np.bincount(parts.ravel())[1:]
    assert raw_parts > 100 and n <= MAX_PARTS
    assert sizes.min() >= MIN_CELLS
    up = ResizeTransform((1200, 1600), 1024, "stretch").upscaler(256)
    crop, x0, y0 = up.region(out)
    polys = region_polygons(crop, x0, y0)
    assert 0 < len(polys) <= 2 * MAX_PARTS  # 4-connected low-res parts stay whole, mostly
    assert len(region_polygons(crop, x0, y0, max_parts=MAX_PARTS)) == MAX_PARTS
    raw_crop, rx, ry = up.region(logits)
    assert len(region_polygons(raw_crop, rx, ry)) > 10 * MAX_PARTS  # the problem it solves
