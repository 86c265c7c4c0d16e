"""mask_post against torch's bilinear interpolation and SamProcessor.post_process_masks."""

from __future__ import annotations

import numpy as np
import pytest

from backend.models.mask_post import MaskUpscaler, ResizeTransform, bilinear_matrix, mask_bbox

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
