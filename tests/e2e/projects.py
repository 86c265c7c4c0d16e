"""Test projects on disk: small real images in the formats the app reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# name -> (width, height); natural order of the names is the list order in the page.
DEFAULT_IMAGES = {"a_first.png": (320, 240), "b_second.png": (400, 300), "c_third.png": (240, 320)}


def write_image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A real, decodable image with structure (gradients + a seeded tint) in the format of its suffix."""
    yy, xx = np.mgrid[0:height, 0:width]
    tint = np.random.default_rng(seed).integers(0, 255, 3)
    rgb = np.stack([(xx * 255 // max(1, width - 1) + tint[0]) % 256,
                    (yy * 255 // max(1, height - 1) + tint[1]) % 256,
                    ((xx + yy) + tint[2]) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def make_project(folder: Path, images: dict[str, tuple[int, int]] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for seed, (name, (w, h)) in enumerate((images or DEFAULT_IMAGES).items()):
        write_image(folder / name, w, h, seed)
    return folder
