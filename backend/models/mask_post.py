"""Coordinate transforms and low-res logits -> original-size masks, shared by segmenter families.

One :class:`ResizeTransform` per image owns every mapping between original pixels and the model
input (like segment-anything's ``ResizeLongestSide``): SAM resizes the longest side to 1024 and
pads bottom/right (``mode="longest"``); SAM2 stretches to 1024 x 1024 (``mode="stretch"``).

:class:`MaskUpscaler` reproduces ``SamProcessor.post_process_masks`` exactly: bilinear
(``align_corners=False``) upscale of the (n, n) logits to the padded input, crop to the resized
size, bilinear to the original size, threshold (``> 0``). Without padding (SAM2) it is a single
bilinear resize to the original size. Both stages are linear and separable, so they collapse into
one (H, n) row matrix and one (W, n) column matrix: ``full = R @ L @ C.T``.

Fast path (:meth:`MaskUpscaler.region`): bilinear weights are non-negative and sum to one, so an
output pixel can only exceed the threshold if some low-res cell in its (2-4 cell) support does.
Only the output rows/columns whose support meets the bounding box of the positive low-res cells
are computed, in row stripes; the result is the same mask as the full path, without a
full-resolution float image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

_STRIPE_PIXELS = 1 << 21  # float32 working set per stripe (~8 MB)


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float64 weights of torch's bilinear resize with ``align_corners=False``.

    Source index ``(i + 0.5) * n_in / n_out - 0.5`` clamped at 0; each row has at most two
    non-zero weights summing to 1.
    """
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = src - i0
    m = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0), 1.0 - frac)
    np.add.at(m, (rows, i1), frac)
    return m


def _composite(n_low: int, n_out: int, padded: int | None, resized: int | None) -> np.ndarray:
    """(n_out, n_low): low-res -> [padded input -> crop to resized] -> original, on one axis."""
    if padded is None:
        return bilinear_matrix(n_low, n_out)
    if resized is None or not (1 <= resized <= padded):
        raise ValueError(f"resized size {resized} must be within 1..{padded}")
    up = bilinear_matrix(n_low, padded)[:resized]
    return bilinear_matrix(resized, n_out) @ up


@dataclass
class MaskUpscaler:
    """Low-res logits (n, n) -> bool (h, w) masks at the original size (see module doc).

    ``padded_size`` / ``resized_size`` are (h, w) of the padded model input and of the image
    inside it (SAM); leave both None for a plain resize (SAM2).
    """

    low_res: int
    original_size: tuple[int, int]
    padded_size: tuple[int, int] | None = None
    resized_size: tuple[int, int] | None = None
    rows: np.ndarray = field(init=False, repr=False)
    cols: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        h, w = self.original_size
        ph, pw = self.padded_size if self.padded_size else (None, None)
        rh, rw = self.resized_size if self.resized_size else (None, None)
        self.rows = _composite(self.low_res, h, ph, rh).astype(np.float32)
        self.cols = _composite(self.low_res, w, pw, rw).astype(np.float32)
        # First / last low-res index each output row / column reads (monotone in the index).
        self._row_lo, self._row_hi = _support(self.rows)
        self._col_lo, self._col_hi = _support(self.cols)
        self._row_idx, self._row_w = _sparse(self.rows, self._row_lo, self._row_hi)
        self._col_idx, self._col_w = _sparse(self.cols, self._col_lo, self._col_hi)

    def _check(self, logits: np.ndarray) -> np.ndarray:
        arr = np.asarray(logits, dtype=np.float32)
        while arr.ndim > 2 and arr.shape[0] == 1:  # accept (1, n, n) and (1, 1, n, n)
            arr = arr[0]
        if arr.shape != (self.low_res, self.low_res):
            raise ValueError(f"logits must be ({self.low_res}, {self.low_res}), got {arr.shape}")
        return arr

    def full(self, logits: np.ndarray) -> np.ndarray:
        """Float32 (h, w) upscaled logits: the reference path (materializes the whole image)."""
        arr = self._check(logits)
        return (self.rows @ arr) @ self.cols.T

    def region(self, logits: np.ndarray, threshold: float = 0.0,
               margin: int = 1) -> tuple[np.ndarray, int, int] | None:
        """``(crop, x0, y0)``: the bool mask inside the smallest window that can hold a positive
        pixel, grown by ``margin`` pixels (clipped to the image); None if the mask is empty.
        ``crop`` equals ``full(logits)[y0:y0+ch, x0:x0+cw] > threshold``."""
        arr = self._check(logits)
        pos = arr > threshold
        if not pos.any():
            return None
        rows_any = np.flatnonzero(pos.any(axis=1))
        cols_any = np.flatnonzero(pos.any(axis=0))
        y0, y1 = _window(self._row_lo, self._row_hi, rows_any[0], rows_any[-1], margin)
        x0, x1 = _window(self._col_lo, self._col_hi, cols_any[0], cols_any[-1], margin)
        # Sparse separable passes: each output row / column reads at most J low-res cells.
        ri, rw = self._row_idx[y0:y1], self._row_w[y0:y1]
        ci, cw = self._col_idx[x0:x1], self._col_w[x0:x1]
        tmp = rw[:, 0, None] * arr[ri[:, 0]]
        for j in range(1, ri.shape[1]):
            tmp += rw[:, j, None] * arr[ri[:, j]]  # (Y, n): rows done, columns still low-res
        crop = np.empty((y1 - y0, x1 - x0), dtype=bool)
        step = max(1, _STRIPE_PIXELS // max(1, x1 - x0))
        for s in range(0, y1 - y0, step):
            part = tmp[s:s + step]
            vals = part[:, ci[:, 0]] * cw[:, 0]
            for j in range(1, ci.shape[1]):
                vals += part[:, ci[:, j]] * cw[:, j]
            np.greater(vals, threshold, out=crop[s:s + step])
        return crop, x0, y0

    def mask(self, logits: np.ndarray, threshold: float = 0.0) -> np.ndarray:
        """Bool (h, w) mask via :meth:`region`, pasted into an empty image."""
        out = np.zeros(self.original_size, dtype=bool)
        reg = self.region(logits, threshold)
        if reg is not None:
            crop, x0, y0 = reg
            out[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop
        return out


def _support(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nz = m != 0
    lo = nz.argmax(axis=1)
    hi = m.shape[1] - 1 - nz[:, ::-1].argmax(axis=1)
    return lo, hi


def _sparse(m: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n_out, J) indices and weights of the non-zero band of ``m`` (J = widest band)."""
    span = int((hi - lo).max()) + 1
    idx = np.minimum(lo[:, None] + np.arange(span)[None, :], m.shape[1] - 1)
    w = np.take_along_axis(m, idx, axis=1)
    w[lo[:, None] + np.arange(span)[None, :] > hi[:, None]] = 0.0  # past the band (clipped idx)
    return idx.astype(np.intp), w.astype(np.float32)


def _window(lo: np.ndarray, hi: np.ndarray, first: int, last: int, margin: int) -> tuple[int, int]:
    """Output index range [a, b) whose support [lo, hi] meets low-res cells [first, last]."""
    a = int(np.searchsorted(hi, first, side="left"))
    b = int(np.searchsorted(lo, last, side="right"))
    n = lo.shape[0]
    return max(0, a - margin), min(n, max(b, a + 1) + margin)


@dataclass(frozen=True)
class ResizeTransform:
    """Original image pixels <-> model input pixels for one image size.

    ``mode="longest"``: longest side scaled to ``target`` (sides rounded half up, as
    ``SamImageProcessor``), padded bottom/right to ``target`` x ``target``.
    ``mode="stretch"``: both sides scaled to ``target`` independently, no padding.
    """

    original_size: tuple[int, int]  # (h, w)
    target: int = 1024
    mode: str = "longest"

    def __post_init__(self) -> None:
        h, w = self.original_size
        if h < 1 or w < 1:
            raise ValueError(f"image size must be positive, got {h}x{w}")
        if self.mode not in ("longest", "stretch"):
            raise ValueError(f"mode must be 'longest' or 'stretch', got {self.mode!r}")

    @property
    def resized_size(self) -> tuple[int, int]:
        """(h, w) of the image inside the model input."""
        if self.mode == "stretch":
            return self.target, self.target
        h, w = self.original_size
        scale = self.target * 1.0 / max(h, w)
        return max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))

    @property
    def input_size(self) -> tuple[int, int]:
        return self.target, self.target

    def apply_coords(self, xy: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """(N, 2) [x, y] original pixels -> float32 (N, 2) model-input pixels."""
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        h, w = self.original_size
        rh, rw = self.resized_size
        return (pts * np.array([rw / w, rh / h])).astype(np.float32)

    def apply_box(self, box: Sequence[float]) -> np.ndarray:
        """[x0, y0, x1, y1] original pixels -> float32 (2, 2) corners in model-input pixels."""
        return self.apply_coords(np.asarray(box, dtype=np.float64).reshape(2, 2))

    def upscaler(self, low_res: int) -> MaskUpscaler:
        if self.mode == "stretch":
            return MaskUpscaler(low_res, self.original_size)
        return MaskUpscaler(low_res, self.original_size, self.input_size, self.resized_size)


def mask_bbox(mask: np.ndarray, x0: int = 0, y0: int = 0) -> list[float]:
    """[x0, y0, x1, y1] pixel edges of the True pixels (offset by x0, y0); zeros if empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    xs = np.flatnonzero(mask.any(axis=0))
    return [float(x0 + xs[0]), float(y0 + ys[0]), float(x0 + xs[-1] + 1), float(y0 + ys[-1] + 1)]


def region_polygons(crop: np.ndarray, x0: int, y0: int, tolerance: float = 1.0,
                    min_area: float = 4.0, max_parts: int | None = None
                    ) -> list[list[list[list[float]]]]:
    """Polygons of a :meth:`MaskUpscaler.region` crop in original-image pixels.

    Tracing is translation-invariant and the crop keeps a background margin inside the image,
    so this equals ``mask_to_polygons(full_mask)`` without building the full mask.
    ``max_parts``: keep only that many polygons, the largest.
    """
    from backend.geometry.masks import mask_to_polygon_arrays

    offset = np.array([x0, y0], dtype=np.float64)
    parts = mask_to_polygon_arrays(crop, tolerance, min_area)  # largest first
    return [[(ring + offset).tolist() for ring in rings] for rings in parts[:max_parts]]
