"""Scanline rasterization of polygons with holes, all rings in one vectorized pass.

A pixel is set when its **center** lies inside a polygon: inside its outer ring and outside
each of its holes, each ring read with the even-odd rule (so a self-crossing ring behaves as
usual); polygons are united, and a hole only cuts its own polygon.

How: every ring edge is crossed with the pixel-center line of every row it spans. Sorting the
crossings of one ring on one row and pairing them (1st-2nd, 3rd-4th, ...) gives the runs of
pixels inside that ring. Per polygon and row, a sweep over run ends weighs the outer ring's runs
``BIG`` and each hole's runs 1: a pixel belongs to the polygon exactly where the sum is ``BIG``.
Those runs are painted into the mask. Cost grows with the number of crossings and the filled
area, not with the number of rings, so ten thousand holes cost no Python loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_BIG = np.int64(1) << 40            # outer-ring weight; more holes than this cannot occur


def ring_edges(rings: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Every edge of every ring at once: (ring index, x, y, next x, next y) per vertex."""
    sizes = np.array([r.shape[0] for r in rings], dtype=np.int64)
    pts = np.concatenate(rings)
    ring_of = np.repeat(np.arange(len(rings)), sizes)
    starts = np.cumsum(sizes) - sizes
    nxt = np.arange(pts.shape[0]) + 1
    nxt[starts + sizes - 1] = starts               # each ring closes on its first vertex
    x, y = pts[:, 0], pts[:, 1]
    return ring_of, x, y, x[nxt], y[nxt]


def _crossings(rings: list[np.ndarray], height: int, width: int) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """(ring index, row, first column right of the crossing) for every edge/row-center pair."""
    ring_of, x, y, x2, y2 = ring_edges(rings)
    ylo, yhi = np.minimum(y, y2), np.maximum(y, y2)
    # Rows whose center r + 0.5 lies in [ylo, yhi): half-open, so a vertex counts once.
    r_a = np.clip(np.ceil(ylo - 0.5), 0, height).astype(np.int64)
    r_b = np.clip(np.ceil(yhi - 0.5), 0, height).astype(np.int64)
    n_rows = r_b - r_a
    edge = np.repeat(np.arange(x.size), n_rows)
    first = np.repeat(np.cumsum(n_rows) - n_rows, n_rows)
    rows = r_a[edge] + (np.arange(edge.size) - first)
    t = (rows + 0.5 - y[edge]) / (y2[edge] - y[edge])
    xi = x[edge] + t * (x2[edge] - x[edge])
    # Pixel c is right of the crossing when c + 0.5 > xi, i.e. from column floor(xi + 0.5) on.
    col = np.clip(np.floor(xi + 0.5), 0, width).astype(np.int64)
    return ring_of[edge], rows, col


def rasterize(polygons: list[list[np.ndarray]], height: int, width: int) -> np.ndarray:
    """Bool ``height x width`` mask of ``polygons`` (each: outer ``(K, 2)`` array, then holes).

    Rings must have at least 3 finite vertices (the caller validates).
    """
    out = np.zeros((height, width), dtype=bool)
    rings = [r for poly in polygons for r in poly]
    if not rings or height == 0 or width == 0:
        return out
    poly_of_ring = np.repeat(np.arange(len(polygons)), [len(p) for p in polygons])
    is_outer = np.zeros(len(rings), dtype=bool)
    is_outer[np.cumsum([len(p) for p in polygons]) - [len(p) for p in polygons]] = True
    ring, row, col = _crossings(rings, height, width)
    if ring.size == 0:
        return out
    # Pair crossings per (ring, row) into inside-runs [start, end).
    order = np.lexsort((col, row, ring))
    ring, row, col = ring[order], row[order], col[order]
    start, end = col[0::2], col[1::2]
    ring, row = ring[0::2], row[0::2]
    keep = end > start
    ring, row, start, end = ring[keep], row[keep], start[keep], end[keep]
    if ring.size == 0:
        return out
    # Sweep per (polygon, row): outer runs weigh BIG, hole runs 1; inside where the sum == BIG.
    weight = np.where(is_outer[ring], _BIG, np.int64(1))
    poly = np.repeat(poly_of_ring[ring], 2)
    ev_row = np.repeat(row, 2)
    ev_col = np.stack([start, end], axis=1).ravel()
    ev_delta = np.stack([weight, -weight], axis=1).ravel()
    order = np.lexsort((ev_col, ev_row, poly))
    poly, ev_row, ev_col, ev_delta = poly[order], ev_row[order], ev_col[order], ev_delta[order]
    level = np.cumsum(ev_delta)          # every group sums to 0, so groups do not leak
    same = (poly[:-1] == poly[1:]) & (ev_row[:-1] == ev_row[1:])
    inside = same & (level[:-1] == _BIG) & (ev_col[1:] > ev_col[:-1])
    r_in, a, b = ev_row[:-1][inside], ev_col[:-1][inside], ev_col[1:][inside]
    if r_in.size == 0:
        return out
    # Paint the runs (overlaps just paint twice): cost follows the filled area, not the bbox.
    lengths = b - a
    offsets = np.cumsum(lengths) - lengths
    flat = np.repeat(r_in * width + a - offsets, lengths) + np.arange(int(lengths.sum()))
    out.reshape(-1)[flat] = True
    return out
