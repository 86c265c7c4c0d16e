"""Smart select: one-click shapes without any model (numpy only; no OpenCV, SciPy, scikit-image).

**Click** — a watershed with two markers. Each pixel costs its colour edge strength (CIELAB,
lightness weighted down so shading does not split an object; edges thickened by a 3x3 maximum
so the fill cannot slip through one-pixel gaps) plus a little of its colour distance from the
click. The *minimax distance* ``D(p)`` from a marker is the lowest "highest cost" over paths to
``p`` (:func:`~backend.ai.regions.minimax_distance`, raster sweeps). Pixels closer to the click
than to the image border (where the colour differs from the click's) form the region: it grows
over weak texture edges and stops at the strongest closed edge around the click, with no
tolerance to tune. Pixels exactly on the edge's crest go to the side whose colour they share.
Objects are usually small, so this runs in a window around the click that doubles while the
region reaches its side. When nothing on the border differs from the click, the fill grows by
colour tolerance instead, taking the most *stable* region (MSER's criterion).

**Box** — an iterative foreground/background colour model (GrabCut without the graph cut):
Gaussian mixtures of the colours around the box (background) and inside it (foreground, at
first), a per-pixel log-likelihood ratio plus a prior that favours the box centre, spatially
smoothed, thresholded, and the models refitted on the result a few times.

Both end with: keep the part that holds the click (or the most confident pixel), fill holes,
smooth the outline, trace polygons. Work happens on the image reduced to at most
:data:`WORK_SIDE` pixels, large windows in blocks (bounded time, coarser outline); results are
scaled back to image pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from backend.ai.regions import (
    block_mean,
    box_blur,
    component_at,
    dilate,
    fill_holes,
    max3,
    minimax_distance,
    smooth,
)
from backend.errors import InvalidArgument
from backend.geometry.masks import mask_to_polygon_arrays

WORK_SIDE = 512
_L_WEIGHT = 0.6        # lightness counts less than hue/chroma (shading, highlights)
_DELTA = 2.0           # MSER step, in colour-distance units
_BINS_PER_UNIT = 4     # resolution of the tolerance search
_BOX_PIXELS = 40_000   # colour-model work size for a box (pixels)
_FAR_WEIGHT = 0.3      # colour distance from the click, relative to edge strength
_MIN_PART = 20         # pixels (working scale): less is a speck, not a selection


# -- colour -------------------------------------------------------------------------------------

_SRGB_LUT = np.where(np.arange(256) / 255.0 <= 0.04045, np.arange(256) / 255.0 / 12.92,
                     ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4).astype(np.float32)
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]], dtype=np.float32)
_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 (h, w, 3) sRGB -> float32 (h, w, 3) CIELAB (D65)."""
    lin = _SRGB_LUT[rgb]
    xyz = (lin @ _RGB_TO_XYZ.T) / _WHITE
    eps = (6 / 29) ** 3
    f = np.where(xyz > eps, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lab = np.empty_like(f)
    lab[..., 0] = 116 * f[..., 1] - 16
    lab[..., 1] = 500 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200 * (f[..., 1] - f[..., 2])
    return lab


def working_lab(rgb: np.ndarray) -> np.ndarray:
    """The working image for :func:`select`: CIELAB of ``rgb`` lightly smoothed (3x3 mean),
    which keeps JPEG blocks and sensor grain from reading as edges."""
    return rgb_to_lab(np.clip(box_blur(rgb, 1) + 0.5, 0, 255).astype(np.uint8))


# -- click: region growing -----------------------------------------------------------------------

def _weighted(lab: np.ndarray) -> np.ndarray:
    return lab * np.array([_L_WEIGHT, 1.0, 1.0], dtype=np.float32)


def gradient(feat: np.ndarray) -> np.ndarray:
    """Colour edge strength: magnitude of central differences of a (h, w, 3) image."""
    p = np.pad(feat, ((1, 1), (1, 1), (0, 0)), mode="edge")
    gx = (p[1:-1, 2:] - p[1:-1, :-2]) / 2
    gy = (p[2:, 1:-1] - p[:-2, 1:-1]) / 2
    return np.sqrt((gx ** 2 + gy ** 2).sum(axis=-1)).astype(np.float32)


def _partition(feat: np.ndarray, row: int, col: int, seed_colour: np.ndarray,
               whole: bool) -> np.ndarray | None:
    """Watershed with two markers on ``feat``: the click, and the window's border pixels whose
    colour differs from the click's. Pixels closer (minimax) to the click form the region."""
    h, w = feat.shape[:2]
    far = np.sqrt(((feat - seed_colour) ** 2).sum(axis=-1))
    seeds = np.zeros((h, w), dtype=bool)
    seeds[row, col] = True
    # Edges bound the object; the colour distance keeps the fill from wandering through weak
    # edges into differently coloured surroundings.
    cost = max3(gradient(feat)) + _FAR_WEIGHT * far
    background = np.zeros((h, w), dtype=bool)
    background[0, :] = background[-1, :] = background[:, 0] = background[:, -1] = True
    background &= far > max(12.0, 2.0 * float(far[row, col]) + 6.0)
    if background.any():
        from_seed = minimax_distance(cost, seeds)
        from_border = minimax_distance(cost, background)
        region = from_seed < from_border
        if _MIN_PART <= region.sum() <= 0.9 * h * w:
            return _split_ties(region, (from_seed == from_border) & np.isfinite(from_seed), far)
    if not whole:
        return None
    # Nothing on the image border differs from the click: grow by colour tolerance instead.
    dist = minimax_distance(far, seeds)
    return dist <= choose_tolerance(dist, far[row, col])


def _split_ties(region: np.ndarray, ties: np.ndarray, far: np.ndarray) -> np.ndarray:
    """Give the pixels on an edge's crest (as close to the click as to the border) to the side
    whose colour they are closer to: the object's typical distance from the click colour, or
    that of the background just outside. The thickened edge crest is a few pixels wide; without
    this the outline would sit on its outer or inner side instead of on the colour change."""
    if not ties.any() or not region.any():
        return region
    outside = dilate(dilate(region | ties)) & ~(region | ties)
    if not outside.any():
        return region | ties
    cut = (float(np.median(far[region])) + float(np.median(far[outside]))) / 2
    return region | (ties & (far < cut))


def click_mask(lab: np.ndarray, x: float, y: float) -> np.ndarray:
    """Mask of the region around pixel (x, y) of ``lab`` (see the module doc).

    Most objects are small: the watershed runs in a window around the click first, and the
    window doubles while the region reaches (near) its edge, up to the whole image. Windows
    larger than :data:`_BOX_PIXELS` are worked on in blocks (bounded time, coarser outline).
    """
    h, w = lab.shape[:2]
    col, row = min(max(int(x), 0), w - 1), min(max(int(y), 0), h - 1)
    feat = _weighted(lab)
    win = feat[max(row - 2, 0):row + 3, max(col - 2, 0):col + 3].reshape(-1, 3)
    seed_colour = np.median(win, axis=0)
    half = 48
    while True:
        r0, r1 = max(row - half, 0), min(row + half + 1, h)
        c0, c1 = max(col - half, 0), min(col + half + 1, w)
        whole = (r0, r1, c0, c1) == (0, h, 0, w)
        # A big window is worked on in blocks, as the box select does.
        f = max(1, int(np.ceil(np.sqrt((r1 - r0) * (c1 - c0) / _BOX_PIXELS))))
        region = _partition(block_mean(feat[r0:r1, c0:c1], f), (row - r0) // f,
                            (col - c0) // f, seed_colour, whole)
        if region is not None and f > 1:
            region = np.repeat(np.repeat(region, f, axis=0), f, axis=1)[:r1 - r0, :c1 - c0]
        if whole:
            break
        if region is not None:
            m = 3  # a region this close to a cut side of the window was cut by it
            near = ((r0 > 0 and region[:m].any()) or (r1 < h and region[-m:].any())
                    or (c0 > 0 and region[:, :m].any()) or (c1 < w and region[:, -m:].any()))
            if not near:
                break
        half *= 2
    full = np.zeros((h, w), dtype=bool)
    if region is None:
        return full
    seeds = np.zeros(region.shape, dtype=bool)
    seeds[row - r0, col - c0] = True
    kept = smooth(region)
    region = kept if kept[row - r0, col - c0] else region
    full[r0:r1, c0:c1] = fill_holes(component_at(region, seeds))
    return full


def choose_tolerance(dist: np.ndarray, floor: float) -> float:
    """The tolerance of the first stable region around the seed (MSER's criterion)."""
    n = dist.size
    finite = dist[np.isfinite(dist)]
    top = float(min(finite.max(), 120.0)) if finite.size else 0.0
    nbins = int(top * _BINS_PER_UNIT) + 2
    bins = np.minimum((finite * _BINS_PER_UNIT).astype(np.int64), nbins - 1)
    area = np.cumsum(np.bincount(bins, minlength=nbins)).astype(np.float64)
    step = int(_DELTA * _BINS_PER_UNIT)
    for i in range(step, area.size - step):
        if _MIN_PART <= area[i] <= 0.9 * n and (area[i + step] - area[i - step]) / area[i] < 0.1:
            return (i + 1) / _BINS_PER_UNIT
    return float(floor) + 8.0


# -- box: colour models --------------------------------------------------------------------------

def _fit_gmm(x: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Diagonal Gaussian mixture by k-means (means, variances, log weights)."""
    if x.shape[0] > 6000:
        x = x[rng.choice(x.shape[0], 6000, replace=False)]
    k = max(1, min(k, x.shape[0]))
    means = x[rng.choice(x.shape[0], k, replace=False)].copy()
    for _ in range(8):
        lab = np.argmin(((x[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
        for j in range(k):
            pts = x[lab == j]
            if pts.shape[0]:
                means[j] = pts.mean(axis=0)
    var = np.empty_like(means)
    weights = np.empty(k, dtype=np.float64)
    for j in range(k):
        pts = x[lab == j]
        var[j] = pts.var(axis=0) + 4.0 if pts.shape[0] > 1 else 25.0
        weights[j] = max(pts.shape[0], 1)
    return means, var, np.log(weights / weights.sum())


def _loglik(x: np.ndarray, model: tuple[np.ndarray, ...]) -> np.ndarray:
    """Per-row log-likelihood of (N, 3) colours under a diagonal mixture (matrix products, no
    (N, k, 3) temporaries)."""
    means, var, logw = model
    inv = (1.0 / var).astype(np.float32)
    x = x.astype(np.float32)
    d = (x * x) @ inv.T - 2.0 * (x @ (means * inv).T.astype(np.float32))
    d += ((means * means) * inv).sum(axis=1).astype(np.float32)[None]
    comp = (logw - 0.5 * np.log(var).sum(-1)).astype(np.float32)[None] - 0.5 * d
    m = comp.max(axis=1)
    return m + np.log(np.exp(comp - m[:, None]).sum(axis=1))


def box_mask(lab: np.ndarray, box: Sequence[float], iterations: int = 4) -> np.ndarray:
    """Mask of the object in ``box`` ([x0, y0, x1, y1] pixels of ``lab``).

    A large box is worked on in blocks so that the colour models see at most about
    :data:`_BOX_PIXELS` pixels (their cost grows with the pixel count, not with the detail).
    """
    h, w = lab.shape[:2]
    x0, y0 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x1, y1 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    out = np.zeros((h, w), dtype=bool)
    if x1 - x0 < 3 or y1 - y0 < 3:
        out[y0:y1, x0:x1] = True
        return out
    m = max(6, int(0.15 * max(x1 - x0, y1 - y0)))
    cx0, cy0, cx1, cy1 = max(x0 - m, 0), max(y0 - m, 0), min(x1 + m, w), min(y1 + m, h)
    f = max(1, int(np.ceil(np.sqrt((cx1 - cx0) * (cy1 - cy0) / _BOX_PIXELS))))
    crop = block_mean(_weighted(lab[cy0:cy1, cx0:cx1]), f)
    inside = np.zeros(crop.shape[:2], dtype=bool)
    inside[(y0 - cy0) // f:-(-(y1 - cy0) // f), (x0 - cx0) // f:-(-(x1 - cx0) // f)] = True
    fg = _grabcut(crop, inside, iterations)
    big = np.repeat(np.repeat(fg, f, axis=0), f, axis=1)[:cy1 - cy0, :cx1 - cx0]
    out[cy0:cy1, cx0:cx1] = big
    out[:, :x0] = out[:, x1:] = False
    out[:y0] = out[y1:] = False
    return out


def _grabcut(crop: np.ndarray, inside: np.ndarray, iterations: int) -> np.ndarray:
    """Foreground of ``crop`` (h, w, 3 colours) within ``inside`` (see the module doc)."""
    ys, xs = np.nonzero(inside)
    by0, by1, bx0, bx1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    bw, bh = bx1 - bx0, by1 - by0
    ring = ~inside
    if ring.sum() < 30:  # the box covers the image: its own border band is the background
        band = max(1, int(0.06 * min(bw, bh)))
        ring = inside.copy()
        ring[by0 + band:by1 - band, bx0 + band:bx1 - band] = False
    yy, xx = np.mgrid[0:crop.shape[0], 0:crop.shape[1]].astype(np.float32)
    ex = np.abs(xx + 0.5 - (bx0 + bx1) / 2) / (bw / 2)
    ey = np.abs(yy + 0.5 - (by0 + by1) / 2) / (bh / 2)
    prior = 0.75 - 1.5 * np.maximum(ex, ey) ** 2   # +0.75 at the centre, -0.75 at the edge
    pixels = crop.reshape(-1, 3).astype(np.float32)
    rng = np.random.default_rng(0)
    fg = inside.copy()
    score = np.zeros(crop.shape[:2], dtype=np.float32)
    r = max(1, int(round(min(bw, bh) / 60)))
    for _ in range(iterations):
        bg_pts = pixels[(ring | (inside & ~fg)).ravel()]
        fg_pts = pixels[fg.ravel()]
        if fg_pts.shape[0] < 10 or bg_pts.shape[0] < 10:
            break
        llr = _loglik(pixels, _fit_gmm(fg_pts, 5, rng)) - _loglik(pixels, _fit_gmm(bg_pts, 5, rng))
        llr = np.clip(llr, -20, 20).reshape(crop.shape[:2])
        score = box_blur(llr + prior, r)
        new = inside & (score > 0)
        if not new.any() or np.array_equal(new, fg):
            fg = new if new.any() else fg
            break
        fg = new
    core = inside & (score >= score[inside].max() - 1e-6) if fg.any() else inside
    fg = smooth(fg)
    fg = component_at(fg, core) if (fg & core).any() else fg
    return fill_holes(fg) if fg.any() else fg


# -- public entry --------------------------------------------------------------------------------

def select(lab: np.ndarray, point: Sequence[float] | None = None,
           box: Sequence[float] | None = None, scale: float = 1.0) -> dict[str, Any]:
    """``{"polygons", "bbox", "area"}`` in image pixels for a click or a box.

    ``lab`` is the working image (``rgb_to_lab`` of the image reduced by ``scale`` =
    working pixels per image pixel); ``point`` and ``box`` are in image pixels. With both, the
    box is used and the point must lie inside it (it picks the part to keep).
    """
    if point is None and box is None:
        raise InvalidArgument("Smart select needs a click ('point') or a box.",
                              detail={"field": "point"})
    h, w = lab.shape[:2]
    if box is not None:
        mask = box_mask(lab, [c * scale for c in box])
        if point is not None and mask.any():
            seeds = np.zeros_like(mask)
            seeds[min(int(point[1] * scale), h - 1), min(int(point[0] * scale), w - 1)] = True
            if (mask & seeds).any():
                mask = component_at(mask, seeds)
    elif point is not None:
        mask = click_mask(lab, point[0] * scale, point[1] * scale)
    polygons = []
    area = 0.0
    parts = mask_to_polygon_arrays(mask, tolerance=0.7, min_area=4.0)
    # Largest first; crumbs that only touched the selection at a corner are dropped.
    biggest = _ring_area(parts[0][0]) if parts else 0.0
    for rings in parts:
        if _ring_area(rings[0]) < 0.05 * biggest:
            continue
        scaled = [(ring / scale) for ring in rings]
        polygons.append([r.round(2).tolist() for r in scaled])
        area += float(_ring_area(scaled[0]) - sum(_ring_area(r) for r in scaled[1:]))
    if not polygons:
        return {"polygons": [], "bbox": None, "area": 0}
    pts = np.concatenate([np.asarray(p[0]) for p in polygons])
    bbox = [float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()),
            float(pts[:, 1].max())]
    return {"polygons": polygons, "bbox": bbox, "area": round(area, 2)}


def _ring_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2
