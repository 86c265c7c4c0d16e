"""Downscaling that keeps memory bounded and coordinates exact.

Every downscale in the imaging core maps the whole source onto the output: output pixel ``i``
covers source pixels ``[i / s, (i + 1) / s)`` with ``s = out / in`` per axis, so a point at
display-pixel ``p`` in the reduced image is at ``p / s`` in the full image. The long side is
reduced to exactly ``max_side``, so ``s`` is exact along it; along the short side it differs by
less than half an output pixel over the whole image (rounding of the short side).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image


def target_size(width: int, height: int, max_side: int | None,
                max_pixels: int | None = None) -> tuple[int, int] | None:
    """Reduced ``(width, height)``: the long side at most ``max_side`` and the area at most
    ``max_pixels`` (either may be None); None if no reduction is needed."""
    for name, value in (("max_side", max_side), ("max_pixels", max_pixels)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name}: expected a positive integer or None, got {value!r}")
    long_side = max(width, height)
    limit = long_side if max_side is None else min(long_side, max_side)
    if max_pixels is not None and width * height > max_pixels:
        # The long side that brings the area under the limit (rounded down, so it stays under).
        limit = min(limit, max(1, math.floor(long_side * math.sqrt(max_pixels / (width * height)))))
    if limit >= long_side:
        return None
    s = limit / long_side
    return max(1, round(width * s)), max(1, round(height * s))


class BoxAccumulator:
    """Area-average (box filter) downscaling fed piece by piece (TIFF strips or tiles).

    Only the output-sized sum grid lives in memory, never the full-resolution image. Each source
    pixel goes to output cell ``(y * out_h // src_h, x * out_w // src_w)``.
    """

    def __init__(self, src_h: int, src_w: int, out_h: int, out_w: int, channels: int) -> None:
        self.src_h, self.src_w, self.out_h, self.out_w = src_h, src_w, out_h, out_w
        self._row_of = (np.arange(src_h, dtype=np.int64) * out_h) // src_h
        self._col_of = (np.arange(src_w, dtype=np.int64) * out_w) // src_w
        # Source pixels per output cell = (rows in its band) x (columns in its band): two vectors,
        # not a per-cell array (which would add 4 bytes per output pixel).
        self._rows = np.bincount(self._row_of, minlength=out_h).astype(np.float32)
        self._cols = np.bincount(self._col_of, minlength=out_w).astype(np.float32)
        # float32 sums: exact for 16-bit data up to 256 source pixels per cell, and far below
        # display precision beyond that; half the memory of float64.
        self._sum = np.zeros((out_h, out_w, channels), dtype=np.float32)

    def add(self, piece: np.ndarray, y0: int, x0: int, c0: int = 0) -> None:
        """Add ``piece`` (h x w x c, or h x w) whose top-left source pixel is ``(y0, x0)``.

        Parts of the piece beyond the image (padded edge tiles) are ignored. ``c0`` is the first
        output channel the piece's channels go to (planar TIFFs deliver one channel at a time).
        """
        if piece.ndim == 2:
            piece = piece[:, :, None]
        h = min(piece.shape[0], self.src_h - y0)
        w = min(piece.shape[1], self.src_w - x0)
        if h <= 0 or w <= 0:
            return
        rows = self._row_of[y0 : y0 + h]
        cols = self._col_of[x0 : x0 + w]
        r_starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        c_starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
        # Columns first, along the contiguous last axis (h, c, w), where reduceat is fast; then
        # rows as slice sums (reduceat along a leading axis is ~10x slower in numpy).
        values = np.ascontiguousarray(piece[:h, :w].transpose(0, 2, 1), dtype=np.float32)
        # Columns already at output width (reduced by the caller): nothing to add up.
        cols_done = values if len(c_starts) == w else np.add.reduceat(values, c_starts, axis=2)
        bounds = np.r_[r_starts, h]
        part = np.stack([cols_done[a:b].sum(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
        c = part.shape[1]
        self._sum[np.ix_(rows[r_starts], cols[c_starts], np.arange(c0, c0 + c))] += part.transpose(0, 2, 1)

    def result(self, dtype: np.dtype) -> np.ndarray:
        """The averaged image (out_h x out_w x channels) in ``dtype`` (rounded and clipped).

        Call once: the sums are turned into the result in place, so that no second float array
        of the output's size is ever allocated.
        """
        mean = self._sum
        mean /= self._rows[:, None, None]
        mean /= self._cols[None, :, None]
        dtype = np.dtype(dtype)
        if dtype.kind in "ui":
            info = np.iinfo(dtype)
            np.rint(mean, out=mean)
            np.clip(mean, info.min, info.max, out=mean)
            return mean.astype(dtype)
        return cast_like(mean, dtype)


def box_downscale(arr: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """Area-average ``arr`` (H x W or H x W x C, in memory) to ``out_h x out_w``.

    Keeps dtype and ndim. Pillow's box filter (exact fractional pixel areas, same coordinate
    mapping as :class:`BoxAccumulator`) is ~10x faster than numpy here, one channel at a time.
    """
    planes = [arr] if arr.ndim == 2 else [arr[:, :, c] for c in range(arr.shape[2])]
    out = [_box_plane(p, out_w, out_h) for p in planes]
    return out[0] if arr.ndim == 2 else np.stack(out, axis=2)


def _box_plane(plane: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    dtype = plane.dtype
    if dtype in (np.uint8, np.uint16, np.int32, np.float32):
        src = np.ascontiguousarray(plane)  # L, I;16, I, F: Pillow resizes these natively
    else:
        src = plane.astype(np.float32)
    resized = np.asarray(Image.fromarray(src).resize((out_w, out_h), Image.Resampling.BOX))
    return resized if resized.dtype == dtype else cast_like(resized, dtype)


def cast_like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round and clip float ``values`` into integer ``dtype`` (floats are just cast)."""
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    if dtype.kind == "b":
        return values >= 0.5
    return values.astype(dtype)
