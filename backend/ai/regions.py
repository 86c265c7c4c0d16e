"""Pixel-region primitives in numpy for smart select: minimax (barrier) distances, connected
parts, holes, 3x3 morphology, box means. Masks are bool (h, w) arrays; connectivity is 8.
"""

from __future__ import annotations

import numpy as np


def box_blur(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window (edges replicated), separable, via cumulative sums."""
    if r <= 0:
        return a.astype(np.float32)
    out = a.astype(np.float32)
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r + 1, r)
        c = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis, dtype=np.float64)
        n = out.shape[axis]
        hi = np.take(c, np.arange(2 * r + 1, 2 * r + 1 + n), axis=axis)
        lo = np.take(c, np.arange(0, n), axis=axis)
        out = ((hi - lo) / (2 * r + 1)).astype(np.float32)
    return out


def block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """(h, w, c) -> (ceil(h/f), ceil(w/f), c) means over f x f blocks (edges replicated)."""
    h, w = a.shape[:2]
    ph, pw = -h % f, -w % f
    p = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return p.reshape((h + ph) // f, f, (w + pw) // f, f, -1).mean(axis=(1, 3))


def max3(a: np.ndarray) -> np.ndarray:
    """3x3 maximum filter: thickens edges so the fill cannot slip through one-pixel gaps."""
    p = np.pad(a, 1, mode="edge")
    h, w = a.shape
    out = a.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            np.maximum(out, p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w], out=out)
    return out


def _sweep(grid: np.ndarray, cost: np.ndarray) -> None:
    """One pass down and one up over the rows of ``grid`` (in place), 8-connected: each row
    takes the best of the three neighbours above (below). Diagonal steps let winding paths
    converge in fewer passes; edges are thickened (:func:`max3`) so nothing leaks diagonally."""
    w = grid.shape[1]
    buf = np.empty(w, dtype=np.float32)
    near = np.empty(w, dtype=np.float32)
    for rows in (range(1, grid.shape[0]), range(grid.shape[0] - 2, -1, -1)):
        step = 1 if rows.step > 0 else -1
        for i in rows:
            prev = grid[i - step]
            if w > 1:
                np.minimum(prev[1:], prev[:-1], out=near[:-1])
                near[-1] = prev[-1]
                np.minimum(near[1:], prev[:-1], out=near[1:])
            else:
                near[:] = prev
            np.maximum(near, cost[i], out=buf)
            np.minimum(grid[i], buf, out=grid[i])


def minimax_distance(cost: np.ndarray, seeds: np.ndarray, max_rounds: int = 200) -> np.ndarray:
    """``D[p] = min over 8-connected paths from a seed to p of the max cost on the path``.

    Raster sweeps (down, up, then right, left on the transpose) repeated until nothing changes;
    each sweep is one vectorized step per row. Winding paths need many rounds, so the sweeps
    start from the result at half resolution on max-pooled costs, upsampled: any coarse path
    has a fine path through the same 2x2 blocks costing no more, so it is an upper bound that
    the sweeps only lower, and the fine level converges in a few rounds. Pixels no path
    reaches (cost inf) stay inf.
    """
    cost = np.ascontiguousarray(cost, dtype=np.float32)
    h, w = cost.shape
    d = np.full(cost.shape, np.inf, dtype=np.float32)
    if min(h, w) >= 32:
        ph, pw = h + h % 2, w + w % 2
        padded = np.pad(cost, ((0, ph - h), (0, pw - w)), mode="edge")
        pooled = padded.reshape(ph // 2, 2, pw // 2, 2).max(axis=(1, 3))
        pseeds = np.pad(seeds, ((0, ph - h), (0, pw - w))).reshape(ph // 2, 2, pw // 2, 2)
        coarse = minimax_distance(pooled, np.asarray(pseeds.any(axis=(1, 3))), max_rounds)
        d = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)[:h, :w].copy()
    d[seeds] = cost[seeds]
    cost_t = np.ascontiguousarray(cost.T)
    for _ in range(max_rounds):
        before = d.copy()
        _sweep(d, cost)
        dt = np.ascontiguousarray(d.T)
        _sweep(dt, cost_t)
        d = np.ascontiguousarray(dt.T)
        if np.array_equal(d, before):
            break
    return d


def component_at(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The 4-connected parts of ``mask`` that contain a seed pixel."""
    cost = np.where(mask, 0.0, np.inf).astype(np.float32)
    return minimax_distance(cost, seeds & mask) == 0


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` plus every background pixel not connected to the image border."""
    border = np.zeros_like(mask)
    border[0, :] = border[-1, :] = True
    border[:, 0] = border[:, -1] = True
    outside = component_at(~mask, border & ~mask)
    return ~outside


def erode(m: np.ndarray) -> np.ndarray:
    p = np.pad(m, 1, mode="edge")
    h, w = m.shape
    out = m.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            out &= p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
    return out


def dilate(m: np.ndarray) -> np.ndarray:
    return ~erode(~m)


def smooth(mask: np.ndarray) -> np.ndarray:
    """Opening then closing with a 3x3 square: removes specks, hairline bridges and notches."""
    return erode(dilate(dilate(erode(mask))))
