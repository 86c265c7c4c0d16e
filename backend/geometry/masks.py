"""Mask <-> polygon conversion in pure numpy (no OpenCV, no scikit-image at run time).

Types::

    Ring    = list[[x, y]]     # closed; the first vertex is not repeated at the end
    Polygon = list[Ring]       # ring 0 the outer boundary, the others its holes

Coordinates are image pixels with the pixel-corner convention: the pixel at column ``c``, row
``r`` covers ``[c, c+1] x [r, r+1]``, so a single pixel at the origin traces as
``[[0, 0], [1, 0], [1, 1], [0, 1]]``.

Orientation: an outer ring runs **clockwise on screen** (x right, y down), which is a positive
shoelace area on the raw ``[x, y]`` numbers; holes run the other way (negative area). Each outer
ring starts at its top-most, then left-most, vertex.

Connectivity: a part is a **4-connected** set of pixels; pixels that touch only at a corner
belong to different parts (each gets its own polygon). A part lying inside another part's hole
is a polygon of its own.

Rasterization (``polygons_to_mask``) takes a pixel when its **center** lies inside the outer ring
and outside every hole (even-odd rule per ring, so a self-crossing ring behaves as usual). With
``tolerance=0`` and ``min_area=0``, ``polygons_to_mask(mask_to_polygons(m), h, w) == m`` exactly.
pycocotools rasterizes polygons by upsampling the outline instead; on simple shapes the two
agree to an IoU above 0.98, differing only in some pixels the outline cuts near their center.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from backend.errors import InvalidArgument
from backend.geometry.contour import trace
from backend.geometry.raster import rasterize
from backend.geometry.simplify import signed_area, simplify_rings

Ring = list[list[float]]
Polygon = list[Ring]


def mask_to_polygon_arrays(mask: np.ndarray, tolerance: float = 1.0,
                           min_area: float = 4.0) -> list[list[np.ndarray]]:
    """:func:`mask_to_polygons` with each ring as a float64 ``(K, 2)`` array of ``[x, y]``.

    For callers that keep computing (bounding boxes, areas, serialization): building Python
    lists of floats is the most expensive step for masks with thousands of parts.
    """
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise InvalidArgument(f"mask must be 2-D (height x width), got shape {arr.shape}.",
                              detail={"shape": list(arr.shape)})
    if not (tolerance >= 0):
        raise InvalidArgument(f"tolerance must be >= 0 pixels, got {tolerance!r}.")
    if not (min_area >= 0):
        raise InvalidArgument(f"min_area must be >= 0 square pixels, got {min_area!r}.")
    parts = [p for p in trace(arr) if p.outer.area >= min_area]
    parts.sort(key=lambda p: -p.outer.area)  # stable: raster order among equals
    grouped = [[part.outer] + sorted((h for h in part.holes if -h.area >= min_area),
                                     key=lambda h: h.area) for part in parts]
    flat = simplify_rings([r.points for rings in grouped for r in rings], tolerance)
    out: list[list[np.ndarray]] = []
    at = 0
    for rings in grouped:
        out.append([ring.astype(np.float64) for ring in flat[at:at + len(rings)]])
        at += len(rings)
    return out


def mask_to_polygons(mask: np.ndarray, tolerance: float = 1.0,
                     min_area: float = 4.0) -> list[Polygon]:
    """Polygons (outer ring + holes) of every part of a 2-D mask.

    ``tolerance``: Douglas-Peucker tolerance in pixels applied to every ring; 0 keeps the exact
    staircase boundary (only its corners). A ring that would collapse under simplification is
    kept exact instead.
    ``min_area``: parts whose outer ring encloses less than this many square pixels are dropped,
    and holes smaller than this are filled (tiny specks and pinholes of model masks).

    Parts come largest first (by the area their outer ring encloses), ties in raster order.
    """
    return [[ring.tolist() for ring in rings]
            for rings in mask_to_polygon_arrays(mask, tolerance, min_area)]


def _ring_array(ring: Any, where: str) -> np.ndarray:
    try:
        pts = np.asarray(ring, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{where} must be a list of [x, y] points.",
                              detail={"field": where}) from exc
    if pts.size == 0:
        return pts.reshape(0, 2)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise InvalidArgument(f"{where} must be a list of [x, y] points, got shape {pts.shape}.",
                              detail={"field": where})
    if not np.isfinite(pts).all():
        raise InvalidArgument(f"{where} has a coordinate that is not a finite number.",
                              detail={"field": where})
    return pts


def polygons_to_mask(polygons: Sequence[Polygon], height: int, width: int) -> np.ndarray:
    """Rasterize polygons (outer ring first, then holes) into a bool ``height x width`` mask.

    Holes are subtracted from their own polygon only; polygons are united. Rings with fewer than
    three vertices enclose nothing and are ignored (a polygon whose outer ring is such a ring
    draws nothing). Coordinates outside the image are fine: what falls outside is clipped.
    """
    if int(height) < 0 or int(width) < 0:
        raise InvalidArgument(f"mask size must be non-negative, got {height} x {width}.")
    arrays: list[list[np.ndarray]] = []
    for i, polygon in enumerate(polygons):
        if not isinstance(polygon, (list, tuple)) or not polygon:
            raise InvalidArgument(f"polygon {i} must be a list of rings (outer ring first).",
                                  detail={"field": f"polygons[{i}]"})
        rings = [_ring_array(r, f"polygons[{i}][{j}]") for j, r in enumerate(polygon)]
        if rings[0].shape[0] >= 3:
            arrays.append([rings[0]] + [r for r in rings[1:] if r.shape[0] >= 3])
    return rasterize(arrays, int(height), int(width))


def polygon_area(ring: Ring | np.ndarray, signed: bool = False) -> float:
    """Area enclosed by one ring (shoelace). ``signed=True`` keeps the sign: positive for a
    ring that runs clockwise on screen (an outer ring here), negative for a hole."""
    pts = _ring_array(ring, "ring")
    if pts.shape[0] < 3:
        return 0.0
    a = signed_area(pts)
    return a if signed else abs(a)


def polygon_bbox(rings: Sequence[Ring] | Ring) -> list[float]:
    """``[x0, y0, x1, y1]`` around every vertex of ``rings`` (a polygon's rings, or one ring)."""
    try:
        chunks = [np.asarray(r, dtype=np.float64).reshape(-1, 2) for r in rings]
    except (TypeError, ValueError) as exc:
        raise InvalidArgument("rings must be lists of [x, y] points.",
                              detail={"field": "rings"}) from exc
    pts = np.concatenate(chunks) if chunks else np.zeros((0, 2))
    if pts.shape[0] == 0:
        raise InvalidArgument("Cannot take the bounding box of a polygon with no points.",
                              detail={"field": "rings"})
    if not np.isfinite(pts).all():
        raise InvalidArgument("rings have a coordinate that is not a finite number.",
                              detail={"field": "rings"})
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])]
