"""Outlines of mask shapes for the formats that write polygons (COCO, YOLO segment, labelme).

Tracing is numpy work whose fixed cost per call dominates for small masks, so masks are traced
side by side on shared canvases: 10,000 masks cost ~50 calls, not 10,000.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _mask_crop(geometry: dict[str, Any]) -> tuple[np.ndarray, int, int] | None:
    """``(crop, x0, y0)``: the mask's pixels inside its bounding box, decoding only the columns
    it touches (a small mask on a large image stays cheap); None for an empty mask."""
    from backend.geometry import rle

    h, _, counts = rle.counts_of(geometry["rle"])
    ones = np.flatnonzero((np.arange(counts.size) % 2 == 1) & (counts > 0))
    if h == 0 or ones.size == 0:
        return None
    ends = np.cumsum(counts)
    starts = ends - counts
    lo = int(starts[ones[0]]) // h * h
    hi = ((int(ends[ones[-1]]) - 1) // h + 1) * h
    clipped = np.clip(np.minimum(ends, hi) - np.maximum(starts, lo), 0, None)
    crop = np.repeat(np.arange(counts.size) % 2 == 1, clipped).reshape((h, -1), order="F")
    rows = np.flatnonzero(crop.any(axis=1))
    return crop[rows[0]:rows[-1] + 1], lo // h, int(rows[0])


# Masks are traced side by side on one canvas of about this many pixels: tracing is numpy work
# whose fixed cost per call dominates for small masks, so 10,000 masks cost ~50 calls, not
# 10,000. One empty column between neighbours keeps their parts apart.
_CANVAS_PIXELS = 1 << 21


def mask_outlines(geometries: Sequence[dict[str, Any]], tolerance: float = 0.0
                  ) -> list[list[list[np.ndarray]]]:
    """Outlines of many mask shapes: per mask, per part, ``[outer ring, *holes]`` as ``(K, 2)``
    float arrays in image pixels (pixel-corner convention, backend.geometry.masks).

    Parts come largest first, as :func:`backend.geometry.masks.mask_to_polygons` gives them
    (``min_area=0``: no part or hole is dropped, however small). With the default
    ``tolerance=0`` the rings are the exact pixel staircase, so rasterizing them (ours or
    pycocotools') gives the mask back exactly. An empty mask has no parts.
    """
    from backend.geometry.masks import mask_to_polygon_arrays

    out: list[list[list[np.ndarray]]] = [[] for _ in geometries]
    crops = [(i, c) for i, g in enumerate(geometries) if (c := _mask_crop(g)) is not None]
    # Similar heights side by side waste the least canvas.
    crops.sort(key=lambda ic: ic[1][0].shape[0])
    batch: list[tuple[int, tuple[np.ndarray, int, int]]] = []
    width = 0

    def flush() -> None:
        height = max(c[0].shape[0] for _, c in batch)
        canvas = np.zeros((height, width), dtype=bool)
        lefts = []
        x = 0
        for _, (crop, _, _) in batch:
            canvas[:crop.shape[0], x:x + crop.shape[1]] = crop
            lefts.append(x)
            x += crop.shape[1] + 1
        starts = np.array(lefts)
        for part in mask_to_polygon_arrays(canvas, tolerance=tolerance, min_area=0.0):
            k = int(np.searchsorted(starts, part[0][:, 0].min(), side="right")) - 1
            index, (_, x0, y0) = batch[k]
            shift = np.array([x0 - lefts[k], y0], dtype=np.float64)
            out[index].append([ring + shift for ring in part])

    for item in crops:
        crop = item[1][0]
        if batch and (width + crop.shape[1]) * max(crop.shape[0], 1) > _CANVAS_PIXELS:
            flush()
            batch, width = [], 0
        batch.append(item)
        width += crop.shape[1] + 1
    if batch:
        flush()
    return out


def mask_parts(geometry: dict[str, Any], tolerance: float = 0.0) -> list[list[np.ndarray]]:
    """:func:`mask_outlines` of one mask."""
    return mask_outlines([geometry], tolerance)[0]
