"""EXIF orientation (tag 0x0112) applied to numpy arrays, so every decoder shares one definition.

Value -> how the stored pixels must be transformed to be displayed upright:
1 as stored, 2 mirror left-right, 3 rotate 180, 4 mirror top-bottom, 5 transpose (mirror along
the main diagonal), 6 rotate 90 clockwise, 7 transverse (mirror along the anti-diagonal),
8 rotate 90 counter-clockwise. This matches ``PIL.ImageOps.exif_transpose``.
"""

from __future__ import annotations

import numpy as np


def normalize(value: object) -> int:
    """A usable orientation: values outside 1-8 (corrupt tags) mean 'as stored'."""
    try:
        v = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 1
    return v if 1 <= v <= 8 else 1


def apply(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Return ``arr`` (H x W or H x W x C) as displayed; a contiguous copy unless orientation is 1."""
    if orientation == 1:
        return arr
    if orientation == 2:
        out = arr[:, ::-1]
    elif orientation == 3:
        out = arr[::-1, ::-1]
    elif orientation == 4:
        out = arr[::-1]
    elif orientation == 5:
        out = arr.swapaxes(0, 1)
    elif orientation == 6:
        out = np.rot90(arr, k=-1, axes=(0, 1))
    elif orientation == 7:
        out = np.rot90(arr, k=2, axes=(0, 1)).swapaxes(0, 1)
    elif orientation == 8:
        out = np.rot90(arr, k=1, axes=(0, 1))
    else:
        raise ValueError(f"orientation: expected 1-8, got {orientation!r}")
    return np.ascontiguousarray(out)
