"""The demo project's images open, are small, are licensed, and show what they are meant to show."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.imaging import SUPPORTED_EXTENSIONS, load_display, probe, read_array

DEMO = Path(__file__).resolve().parents[2] / "demo"
IMAGES = sorted(p for p in (DEMO / "images").iterdir() if p.suffix.lower() in SUPPORTED_EXTENSIONS)


def test_demo_set_is_complete_small_and_licensed() -> None:
    names = {p.name for p in IMAGES}
    assert len(names) == 7 and "cells_16bit.tif" in names
    assert sum(p.stat().st_size for p in IMAGES) < 1.5 * 1024 * 1024
    licence = (DEMO / "LICENSE.md").read_text(encoding="utf-8")
    for name in names:
        assert f"`{name}`" in licence, f"{name} has no licence entry"


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_every_demo_image_decodes(path: Path) -> None:
    info = probe(path)
    rgb = load_display(path, max_side=256)
    assert rgb.dtype == np.uint8 and max(rgb.shape[:2]) <= 256
    assert (rgb.shape[1] >= rgb.shape[0]) == (info.width >= info.height)


def test_cells_image_is_16bit_three_channel_with_distinct_channels() -> None:
    info = probe(DEMO / "images" / "cells_16bit.tif")
    assert (info.channels, info.dtype, info.pages) == (3, "uint16", 1)
    arr = read_array(DEMO / "images" / "cells_16bit.tif")
    assert arr.max() > 4 * 255  # a real 16-bit range, not 8-bit data in a 16-bit file
    maxima = [int(arr[:, :, c].max()) for c in range(3)]
    assert len(set(maxima)) == 3  # channels differ, so the picker visibly changes the view


def test_rotated_demo_photo_is_displayed_upright() -> None:
    skimage_data = pytest.importorskip("skimage.data")
    info = probe(DEMO / "images" / "chelsea.jpg")
    assert info.orientation == 6 and (info.width, info.height) == (451, 300)
    shown = read_array(DEMO / "images" / "chelsea.jpg").astype(int)
    assert np.abs(shown - skimage_data.chelsea()).mean() < 4  # JPEG error only
