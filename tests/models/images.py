"""Test images shared by the model tests (no file I/O: deterministic arrays)."""

from __future__ import annotations

import numpy as np


def make_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A structured uint8 RGB test image: gradients, texture, a few solid discs, mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([xx / w * 255, yy / h * 255,
                    128 + 100 * np.sin(xx / 9) * np.cos(yy / 7)], axis=-1)
    for _ in range(4):
        cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
        r = rng.uniform(0.08, 0.2) * min(h, w)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
