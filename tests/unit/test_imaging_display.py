"""to_display: photos untouched, 16-bit / N-channel stretched per channel, channel picker, encoders."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from backend.errors import InvalidArgument
from backend.imaging import encode_jpeg, encode_png, to_display
from backend.imaging.display import percentiles

RNG = np.random.default_rng(3)


def _reference_stretch(channel: np.ndarray, lo: float, hi: float) -> np.ndarray:
    p_lo, p_hi = np.percentile(channel.astype(np.float64), [lo, hi])
    return np.clip(np.rint((channel - p_lo) * 255.0 / (p_hi - p_lo)), 0, 255).astype(np.uint8)


def test_uint8_rgb_passes_through_unchanged() -> None:
    arr = RNG.integers(0, 40, (20, 30, 3), dtype=np.uint8)  # dark photo: must NOT be brightened
    np.testing.assert_array_equal(to_display(arr), arr)


def test_uint8_rgba_drops_alpha_and_gray_is_replicated() -> None:
    rgba = RNG.integers(0, 255, (5, 6, 4), dtype=np.uint8)
    np.testing.assert_array_equal(to_display(rgba), rgba[:, :, :3])
    gray = RNG.integers(0, 255, (5, 6), dtype=np.uint8)
    np.testing.assert_array_equal(to_display(gray), np.repeat(gray[:, :, None], 3, axis=2))


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.float32, np.int32])
def test_single_channel_stretch_matches_numpy_percentiles(dtype: type) -> None:
    data = RNG.normal(2000, 300, (60, 70)).astype(dtype)
    out = to_display(data, lo=2, hi=98)
    np.testing.assert_array_equal(out[:, :, 0], _reference_stretch(data, 2, 98))
    assert out.shape == (60, 70, 3) and out.dtype == np.uint8


def test_stretch_is_per_channel() -> None:
    data = np.stack([RNG.integers(0, 100, (40, 40)), RNG.integers(30000, 60000, (40, 40))], axis=2).astype(np.uint16)
    out = to_display(data)
    assert out.shape == (40, 40, 3)
    np.testing.assert_array_equal(out[:, :, 0], _reference_stretch(data[:, :, 0], 0.5, 99.5))
    np.testing.assert_array_equal(out[:, :, 1], _reference_stretch(data[:, :, 1], 0.5, 99.5))
    assert not out[:, :, 2].any()  # two channels: blue stays empty


def test_default_for_many_channels_is_first_three_and_picker_reorders() -> None:
    data = RNG.integers(0, 60000, (10, 12, 5)).astype(np.uint16)
    default = to_display(data)
    picked = to_display(data, channels=[0, 1, 2])
    np.testing.assert_array_equal(default, picked)
    swapped = to_display(data, channels=[4, 3, 0])
    np.testing.assert_array_equal(swapped[:, :, 0], to_display(data, channels=[4])[:, :, 0])
    np.testing.assert_array_equal(swapped[:, :, 2], picked[:, :, 0])


def test_many_uint8_channels_are_stretched() -> None:
    data = RNG.integers(10, 60, (20, 20, 6), dtype=np.uint8)
    out = to_display(data)
    assert out.max() == 255 and out.min() == 0


def test_sparse_signal_falls_back_to_full_range() -> None:
    data = np.zeros((100, 100), np.uint16)
    data[50, 50] = 900  # one bright spot: both percentiles are 0
    out = to_display(data)
    assert out[50, 50].tolist() == [255, 255, 255] and out.sum() == 255 * 3


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 65535), min_size=1, max_size=300),
    st.floats(0, 50, allow_nan=False),
    st.floats(50.5, 100, allow_nan=False),
)
def test_histogram_percentiles_equal_numpy(values: list[int], lo: float, hi: float) -> None:
    channel = np.array(values, np.uint16).reshape(1, -1)
    got = percentiles(channel, lo, hi)
    assert got == pytest.approx(tuple(np.percentile(channel, [lo, hi])), abs=1e-6)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"channels": [3]}, "channels"),
        ({"channels": []}, "channels"),
        ({"channels": [0, 1, 2, 0]}, "channels"),
        ({"channels": "0"}, "channels"),
        ({"lo": 60, "hi": 40}, "lo"),
        ({"hi": 101}, "hi"),
        ({"lo": float("nan")}, "lo"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        to_display(np.zeros((4, 4, 3), np.uint16), **kwargs)


def test_encoders_roundtrip() -> None:
    arr = RNG.integers(0, 255, (16, 24, 3), dtype=np.uint8)
    png = encode_png(arr)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), arr)
    smooth = np.full((16, 24, 3), 120, np.uint8)
    jpg = encode_jpeg(smooth, quality=90)
    decoded = np.asarray(Image.open(io.BytesIO(jpg)))
    assert decoded.shape == (16, 24, 3) and np.abs(decoded.astype(int) - 120).max() <= 2
    with pytest.raises(InvalidArgument, match="quality"):
        encode_jpeg(smooth, quality=0)
    with pytest.raises(InvalidArgument, match="arr"):
        encode_png(np.zeros((4, 4), np.uint16))
