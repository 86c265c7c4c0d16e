"""Douglas-Peucker simplification of closed rings, vectorized across all rings at once.

Classic Douglas-Peucker recurses segment by segment; here every pending segment of every ring
is handled in one array pass per recursion level, so a mask's whole outline simplifies in a
dozen numpy passes instead of one small numpy call per kept vertex. The result is the same as
the recursive algorithm (farthest point splits, ties to the first such point).
"""

from __future__ import annotations

import numpy as np


def signed_area(pts: np.ndarray) -> float:
    """Shoelace area of a closed ring ``(K, 2)``: positive when clockwise on screen (y down)."""
    x, y = pts[:, 0], pts[:, 1]
    return float((x * np.roll(y, -1) - np.roll(x, -1) * y).sum() / 2.0)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise distance of points ``p (K, 2)`` to segments ``a (K, 2)``-``b (K, 2)``."""
    ab = b - a
    ap = p - a
    denom = (ab * ab).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(denom > 0, (ap * ab).sum(axis=1) / denom, 0.0)
    t = np.clip(t, 0.0, 1.0)
    diff = ap - t[:, None] * ab
    return np.hypot(diff[:, 0], diff[:, 1])


def _first_argmax(values: np.ndarray, seg: np.ndarray, first: np.ndarray) -> tuple[
        np.ndarray, np.ndarray]:
    """Per segment (``seg`` ids sorted, ``first`` their start offsets): max and first argmax."""
    top = np.maximum.reduceat(values, first)
    at_top = np.flatnonzero(values == top[seg])
    lead = np.r_[True, seg[at_top][1:] != seg[at_top][:-1]]
    return top, at_top[lead]


def _ring_areas(pts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Signed shoelace areas of rings stored back to back in ``pts``."""
    starts = np.cumsum(sizes) - sizes
    nxt = np.arange(pts.shape[0]) + 1
    nxt[starts + sizes - 1] = starts
    cross = pts[:, 0] * pts[nxt, 1] - pts[nxt, 0] * pts[:, 1]
    return np.add.reduceat(cross, starts) / 2.0


def simplify_rings(rings: list[np.ndarray], tolerance: float) -> list[np.ndarray]:
    """Simplify closed rings (each ``(K, 2)``, first vertex not repeated), keeping vertex 0.

    Each ring is split at its first vertex and the vertex farthest from it; both halves are
    simplified as open lines. A ring that would be left with fewer than 3 vertices, or whose
    area would flip sign or vanish (a part thinner than ``tolerance``), is returned unchanged:
    a thin structure keeps its staircase outline rather than disappearing.
    """
    todo = [i for i, r in enumerate(rings) if r.shape[0] > 3]
    if tolerance <= 0 or not todo:
        return list(rings)
    sizes = np.array([rings[i].shape[0] for i in todo]) + 1     # closed: vertex 0 repeated
    base = np.cumsum(sizes) - sizes
    last = base + sizes - 1
    ring_of = np.repeat(np.arange(len(todo)), sizes)
    local = np.arange(int(sizes.sum())) - base[ring_of]
    open_pts = np.concatenate([rings[i] for i in todo]).astype(np.float64)
    open_base = base - np.arange(len(todo))
    pts = open_pts[open_base[ring_of] + local % (sizes[ring_of] - 1)]
    dist0 = np.hypot(*(pts - pts[base[ring_of]]).T)
    _, far = _first_argmax(dist0, ring_of, base)
    keep = np.zeros(pts.shape[0], dtype=bool)
    keep[base] = keep[far] = keep[last] = True
    lo = np.concatenate([base, far])
    hi = np.concatenate([far, last])
    while lo.size:
        inner = hi - lo - 1
        live = inner > 0
        lo, hi, inner = lo[live], hi[live], inner[live]
        if lo.size == 0:
            break
        seg = np.repeat(np.arange(lo.size), inner)
        first = np.cumsum(inner) - inner
        idx = lo[seg] + 1 + (np.arange(seg.size) - first[seg])
        dist = _segment_distance(pts[idx], pts[lo[seg]], pts[hi[seg]])
        top, at = _first_argmax(dist, seg, first)
        split = top > tolerance
        mid = idx[at[split]]
        keep[mid] = True
        lo, hi = np.concatenate([lo[split], mid]), np.concatenate([mid, hi[split]])
    keep[last] = False                                            # the repeated vertex 0
    kept_sizes = np.bincount(ring_of[keep], minlength=len(todo))
    before = _ring_areas(open_pts, sizes - 1)
    after = _ring_areas(pts[keep], np.maximum(kept_sizes, 1))
    ok = (kept_sizes >= 3) & (after != 0) & ((after > 0) == (before > 0))
    out = list(rings)
    not_closing = np.ones(keep.size, dtype=bool)
    not_closing[last] = False
    kept_local = np.split(keep[not_closing], np.cumsum(sizes - 1)[:-1])
    for j, i in enumerate(todo):
        if ok[j]:
            out[i] = rings[i][kept_local[j]]
    return out


def simplify_ring(pts: np.ndarray, tolerance: float) -> np.ndarray:
    """:func:`simplify_rings` for one ring."""
    return simplify_rings([pts], tolerance)[0]
