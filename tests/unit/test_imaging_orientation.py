"""EXIF orientation: sizes from probe and pixels from the decoders are as displayed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from backend.imaging import load_display_scaled, probe, read_array

W, H = 64, 40  # stored size; orientations 5-8 display it as 40 x 64

# Stored corners carry flat colours that survive JPEG: TL red, TR green, BL blue, BR white.
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)

# Where each stored corner is displayed, from the EXIF definition (not from our code):
# 2 mirror LR, 3 rotate 180, 4 mirror TB, 5 transpose, 6 rotate 90 CW, 7 transverse, 8 rotate 90 CCW.
EXPECTED = {  # orientation -> displayed (TL, TR, BL, BR)
    1: (RED, GREEN, BLUE, WHITE),
    2: (GREEN, RED, WHITE, BLUE),
    3: (WHITE, BLUE, GREEN, RED),
    4: (BLUE, WHITE, RED, GREEN),
    5: (RED, BLUE, GREEN, WHITE),
    6: (BLUE, RED, WHITE, GREEN),
    7: (WHITE, GREEN, BLUE, RED),
    8: (GREEN, WHITE, RED, BLUE),
}


def _stored() -> np.ndarray:
    arr = np.full((H, W, 3), 128, np.uint8)
    arr[: H // 2, : W // 2] = RED
    arr[: H // 2, W // 2 :] = GREEN
    arr[H // 2 :, : W // 2] = BLUE
    arr[H // 2 :, W // 2 :] = WHITE
    return arr


def _save(path: Path, orientation: int, fmt: str) -> Path:
    im = Image.fromarray(_stored())
    exif = Image.Exif()
    exif[0x0112] = orientation
    if fmt == "JPEG":
        im.save(path, format="JPEG", quality=95, exif=exif.tobytes())
    else:
        im.save(path, format=fmt, exif=exif.tobytes())
    return path


def _corners(arr: np.ndarray) -> tuple[tuple[int, ...], ...]:
    h, w = arr.shape[:2]
    pts = [(4, 4), (4, w - 5), (h - 5, 4), (h - 5, w - 5)]
    return tuple(tuple(int(round(v / 255) * 255) for v in arr[y, x, :3]) for y, x in pts)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt,ext", [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp")])
def test_orientation_sizes_and_pixels(tmp_path: Path, orientation: int, fmt: str, ext: str) -> None:
    path = _save(tmp_path / f"o{orientation}{ext}", orientation, fmt)
    info = probe(path)
    assert info.orientation == orientation
    assert (info.width, info.height) == ((H, W) if orientation >= 5 else (W, H))
    arr = read_array(path)
    assert arr.shape == (info.height, info.width, 3)
    assert _corners(arr) == EXPECTED[orientation]
    # Same pixels as Pillow's own reference transpose of the same decode.
    with Image.open(path) as im:
        reference = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    np.testing.assert_array_equal(arr, reference)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_applies_to_reduced_display(tmp_path: Path, orientation: int) -> None:
    path = _save(tmp_path / "big.jpg", orientation, "JPEG")
    rgb, scale = load_display_scaled(path, max_side=32)
    assert scale == pytest.approx(32 / W)
    assert max(rgb.shape[:2]) == 32
    assert (rgb.shape[0] > rgb.shape[1]) == (orientation >= 5)
    assert _corners(rgb) == EXPECTED[orientation]


def test_tiff_orientation_tag(tmp_path: Path) -> None:
    path = tmp_path / "rot.tif"
    stored = _stored()
    tifffile.imwrite(path, stored, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    info = probe(path)
    assert (info.width, info.height, info.orientation) == (H, W, 6)
    arr = read_array(path)
    np.testing.assert_array_equal(arr, np.rot90(stored, k=-1))


def test_garbage_orientation_value_means_as_stored(tmp_path: Path) -> None:
    path = _save(tmp_path / "bad.jpg", 1, "JPEG")
    im = Image.open(path)
    exif = Image.Exif()
    exif[0x0112] = 42
    im.save(tmp_path / "bad42.jpg", exif=exif.tobytes(), quality=95)
    info = probe(tmp_path / "bad42.jpg")
    assert (info.width, info.height, info.orientation) == (W, H, 1)
