"""Remove specks and pinholes from a low-res mask before it is upscaled and traced.

A poor mask (a weak checkpoint, a click on texture, random weights) can come out as speckle:
thousands of tiny parts and holes. Each part becomes a polygon the person has to look at, and
tracing them costs far more than the click budget. SAM 2's predictor has the same clean-up as
options (``max_hole_area`` / ``max_sprinkle_area``, on the low-res logits); segment-anything's
``remove_small_regions`` does it on the full mask with OpenCV. Here it works on the M x M
low-res logits (M = 256: 65 536 cells whatever the image size), in pure numpy:

* foreground parts under ``min_cells`` cells are removed, except the largest part, so a click
  on a small object still gives that object;
* at most ``max_parts`` parts are kept, the largest ones;
* holes (background not open to the border) under ``min_cells`` cells are filled.

Parts are 4-connected, as the polygon tracer's: cells touching only at a corner mostly come
apart in the bilinear upscale (the two other cells of the 2 x 2 mix are background), so
8-connected low-res parts of a noisy mask turn into hundreds of full-size parts, and the
tracer's cost grows with the boundary length (a noise mask: ~1 s; cleaned: ~0.1 s). Holes are
8-connected, the dual. Removed cells are set to ``threshold - 10`` and filled ones to
``threshold + 10``, as SAM 2 does.
"""

from __future__ import annotations

import numpy as np

MIN_CELLS = 8     # as SAM 2's video predictor's fill_hole_area (low-res cells)
MAX_PARTS = 32


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal runs of True cells in raster order: row, start column, end column (exclusive)."""
    m = np.asarray(mask, dtype=bool)
    padded = np.zeros((m.shape[0], m.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = m
    step = np.diff(padded, axis=1)
    rows, starts = np.nonzero(step == 1)
    _, ends = np.nonzero(step == -1)
    return rows, starts, ends


def run_components(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, width: int,
                   eight: bool) -> tuple[np.ndarray, int]:
    """Component id (0..n-1, in order of each component's first run) of every run, and n.

    Runs of neighbouring rows connect when they overlap (``eight``: or touch at a corner).
    Union-find over all such pairs at once: every round hooks each root to the smallest root it
    touches and compresses paths fully, until no pair spans two roots.
    """
    n = rows.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    k = 1 if eight else 0
    span = width + 2  # keys of different rows never interleave
    start_key = rows * span + starts
    end_key = rows * span + ends
    above = (rows - 1) * span
    lo = np.searchsorted(end_key, above + starts - k, side="right")  # end > start - k
    hi = np.searchsorted(start_key, above + ends + k, side="left")   # start < end + k
    count = np.maximum(hi - lo, 0)
    b = np.repeat(np.arange(n), count)
    a = lo[b] + np.arange(b.size) - np.repeat(np.cumsum(count) - count, count)
    parent = np.arange(n)
    while a.size:
        pa, pb = parent[a], parent[b]
        live = pa != pb
        a, b, pa, pb = a[live], b[live], pa[live], pb[live]
        if a.size == 0:
            break
        np.minimum.at(parent, np.maximum(pa, pb), np.minimum(pa, pb))
        while True:
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up
    roots, comp = np.unique(parent, return_inverse=True)
    return comp, int(roots.size)


def label(mask: np.ndarray, eight: bool) -> tuple[np.ndarray, int]:
    """Connected components of a 2-D bool mask: int64 labels (0 = off, 1..n in raster order of
    each part's first cell) and n. ``eight``: diagonal neighbours connect, else only 4."""
    m = np.asarray(mask, dtype=bool)
    rows, starts, ends = runs(m)
    comp, n = run_components(rows, starts, ends, m.shape[1], eight)
    out = np.zeros(m.shape, dtype=np.int64)
    out[_run_cells(rows, starts, ends, m.shape[1])] = np.repeat(comp + 1, ends - starts)
    return out, n


def _run_cells(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, width: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) index arrays of every cell of the given runs."""
    length = ends - starts
    r = np.repeat(rows, length)
    c = np.repeat(starts, length) + np.arange(int(length.sum())) \
        - np.repeat(np.cumsum(length) - length, length)
    return r, c


def clean_logits(logits: np.ndarray, threshold: float = 0.0, min_cells: int = MIN_CELLS,
                 max_parts: int = MAX_PARTS) -> np.ndarray:
    """Low-res logits (M, M) with specks removed and pinholes filled (module doc). Returns the
    input itself when there is nothing to change."""
    arr = np.asarray(logits, dtype=np.float32)
    fg = arr > threshold
    rows, starts, ends = runs(fg)
    if rows.size == 0:
        return arr
    comp, n = run_components(rows, starts, ends, fg.shape[1], eight=False)
    area = np.bincount(comp, weights=ends - starts, minlength=n)
    keep = area >= min_cells
    keep[int(np.argmax(area))] = True
    if keep.sum() > max_parts:
        order = np.argsort(-area, kind="stable")  # largest first, ties in raster order
        keep[:] = False
        keep[order[:max_parts]] = True
    drop = ~keep[comp]
    if drop.any():
        dropped = _run_cells(rows[drop], starts[drop], ends[drop], fg.shape[1])
        fg = fg.copy()
        fg[dropped] = False
        rows, starts, ends = rows[~drop], starts[~drop], ends[~drop]
    # Holes of what is kept: background inside the parts' bounding box, framed so that
    # everything open to the outside (or to the image border) is one component, the first.
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    x0, x1 = int(starts.min()), int(ends.max())
    frame = np.zeros((y1 - y0 + 2, x1 - x0 + 2), dtype=bool)
    frame[1:-1, 1:-1] = fg[y0:y1, x0:x1]
    g_rows, g_starts, g_ends = runs(~frame)
    g_comp, m = run_components(g_rows, g_starts, g_ends, frame.shape[1], eight=True)
    g_area = np.bincount(g_comp, weights=g_ends - g_starts, minlength=m)
    hole = (g_area < min_cells)[g_comp] & (g_comp != 0)  # component 0: the outside
    if not drop.any() and not hole.any():
        return arr
    out = arr.copy()
    if drop.any():
        out[dropped] = threshold - 10.0
    if hole.any():
        r, c = _run_cells(g_rows[hole], g_starts[hole], g_ends[hole], frame.shape[1])
        out[r + y0 - 1, c + x0 - 1] = threshold + 10.0
    return out
