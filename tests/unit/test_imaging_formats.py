"""Pixel modes and containers decode to what read_array promises, and probe agrees with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.imaging import SUPPORTED_EXTENSIONS, load_display, load_display_scaled, load_rgb, probe, read_array

RNG = np.random.default_rng(7)


def _agrees(path: Path) -> np.ndarray:
    """read_array's result matches probe's promise (size, channels, dtype)."""
    info = probe(path)
    arr = read_array(path)
    assert arr.shape[:2] == (info.height, info.width)
    assert (arr.shape[2] if arr.ndim == 3 else 1) == info.channels
    assert arr.dtype.name == info.dtype
    return arr


def test_extensions_are_lowercase_with_dot() -> None:
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"} <= SUPPORTED_EXTENSIONS
    assert all(e.startswith(".") and e == e.lower() for e in SUPPORTED_EXTENSIONS)


def test_png_16bit_gray_stays_16bit(tmp_path: Path) -> None:
    data = RNG.integers(0, 65535, (30, 40), dtype=np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(data).save(path)
    arr = _agrees(path)
    assert arr.dtype == np.uint16
    np.testing.assert_array_equal(arr, data)


@pytest.mark.parametrize("fmt,ext", [("PNG", ".png"), ("BMP", ".bmp"), ("WEBP", ".webp"), ("TIFF", ".tif")])
def test_rgb_roundtrip_lossless(tmp_path: Path, fmt: str, ext: str) -> None:
    data = RNG.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    path = tmp_path / f"rgb{ext}"
    Image.fromarray(data).save(path, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    np.testing.assert_array_equal(_agrees(path), data)
    # 8-bit RGB is displayed unchanged: no stretch on photos.
    np.testing.assert_array_equal(load_display(path), data)
    np.testing.assert_array_equal(load_rgb(path), data)


def test_palette_png_becomes_rgb(tmp_path: Path) -> None:
    rgb = RNG.integers(0, 255, (20, 24, 3), dtype=np.uint8)
    pal = Image.fromarray(rgb).quantize(colors=16)
    path = tmp_path / "pal.png"
    pal.save(path)
    arr = _agrees(path)
    np.testing.assert_array_equal(arr, np.asarray(pal.convert("RGB")))


def test_palette_with_transparency_becomes_rgba(tmp_path: Path) -> None:
    pal = Image.fromarray(RNG.integers(0, 255, (20, 24, 3), dtype=np.uint8)).quantize(colors=8)
    path = tmp_path / "palt.png"
    pal.save(path, transparency=0)
    arr = _agrees(path)
    assert arr.shape == (20, 24, 4)
    assert load_display(path).shape == (20, 24, 3)


def test_la_png_keeps_two_channels_and_displays_gray(tmp_path: Path) -> None:
    gray = RNG.integers(0, 255, (20, 24), dtype=np.uint8)
    la = np.stack([gray, np.full_like(gray, 200)], axis=2)
    path = tmp_path / "la.png"
    Image.merge("LA", [Image.fromarray(gray), Image.fromarray(la[:, :, 1])]).save(path)
    arr = _agrees(path)
    np.testing.assert_array_equal(arr, la)
    np.testing.assert_array_equal(load_display(path), np.repeat(gray[:, :, None], 3, axis=2))


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (32, 16), (0, 255, 255, 0)).save(path, quality=95)  # pure red in CMYK
    arr = _agrees(path)
    assert arr.shape == (16, 32, 3)
    r, g, b = arr[8, 16].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_one_bit_png_is_0_or_255(tmp_path: Path) -> None:
    bits = RNG.integers(0, 2, (16, 16)).astype(bool)
    path = tmp_path / "bits.png"
    Image.fromarray(bits).save(path)
    arr = _agrees(path)
    np.testing.assert_array_equal(arr, bits.astype(np.uint8) * 255)


@pytest.mark.parametrize("fmt,ext", [("GIF", ".gif"), ("WEBP", ".webp")])
def test_animation_uses_first_frame(tmp_path: Path, fmt: str, ext: str) -> None:
    frames = [Image.new("RGB", (20, 10), c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    path = tmp_path / f"anim{ext}"
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=100, **kwargs)
    info = probe(path)
    assert info.pages == 1
    arr = read_array(path)
    assert tuple(arr[5, 10, :3]) == (255, 0, 0)


def test_large_jpeg_reduced_while_decoding(tmp_path: Path) -> None:
    # Smooth content so that JPEG's reduced-scale decode and a full decode agree closely.
    yy, xx = np.mgrid[0:1200, 0:1600]
    data = np.stack([xx * 255 // 1600, yy * 255 // 1200, (xx + yy) * 255 // 2800], axis=2).astype(np.uint8)
    path = tmp_path / "trap.jpg"
    Image.fromarray(data).save(path, quality=95)
    rgb, scale = load_display_scaled(path, max_side=400)
    assert rgb.shape == (300, 400, 3)
    assert scale == pytest.approx(0.25)
    reference = np.asarray(Image.fromarray(read_array(path)).resize((400, 300), Image.Resampling.BOX))
    assert np.abs(rgb.astype(int) - reference).mean() < 2.0
    # A point's position maps back by dividing by scale: the colour ramp encodes x.
    x_disp = 200
    assert rgb[150, x_disp, 0] == pytest.approx(int(x_disp / scale) * 255 // 1600, abs=4)


def test_small_image_is_not_enlarged(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    Image.fromarray(RNG.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(path)
    rgb, scale = load_display_scaled(path, max_side=1000)
    assert rgb.shape == (30, 40, 3) and scale == 1.0
