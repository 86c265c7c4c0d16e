"""Box arithmetic in pure numpy, with torchvision's conventions.

Boxes are ``(N, 4)`` float arrays ``[x0, y0, x1, y1]`` in image pixels (origin top-left, pixel
corners: a box around the single pixel at column 0, row 0 is ``[0, 0, 1, 1]``). Areas are
``(x1 - x0) * (y1 - y0)`` — no "+1" as in the old Pascal VOC code — exactly as
``torchvision.ops.box_area``, so ``nms`` and ``box_iou`` give torchvision's results.
"""

from __future__ import annotations

import numpy as np

from backend.errors import InvalidArgument


def _as_boxes(boxes: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InvalidArgument(f"{name} must be an (N, 4) array of [x0, y0, x1, y1], got shape "
                              f"{arr.shape}.", detail={"field": name, "shape": list(arr.shape)})
    return arr


def box_area(boxes: np.ndarray) -> np.ndarray:
    """``(N,)`` areas of ``(N, 4)`` xyxy boxes (negative for inverted boxes, as torchvision)."""
    b = _as_boxes(boxes, "boxes")
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)`` intersection over union of xyxy boxes ``a (N, 4)`` and ``b (M, 4)``.

    Two zero-area boxes give NaN (0 / 0), as in torchvision.
    """
    a, b = _as_boxes(a, "a"), _as_boxes(b, "b")
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression, as ``torchvision.ops.nms``.

    Takes boxes in order of decreasing score and drops every later box whose IoU with a kept box
    is *greater than* ``iou_threshold``. Returns the kept indices (int64) by decreasing score.
    Equal scores keep their input order (torchvision leaves that order unspecified).
    """
    b = _as_boxes(boxes, "boxes")
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (b.shape[0],):
        raise InvalidArgument(f"scores must have shape ({b.shape[0]},) to match boxes, got "
                              f"{s.shape}.", detail={"field": "scores"})
    if not np.isfinite(float(iou_threshold)):
        raise InvalidArgument(f"iou_threshold must be a number, got {iou_threshold!r}.")
    order = np.argsort(-s, kind="stable")
    b = b[order]
    keep = _greedy_matrix(b, float(iou_threshold)) if b.shape[0] <= _MATRIX_MAX else \
        _greedy_rows(b, float(iou_threshold))
    return order[np.asarray(keep, dtype=np.int64)].astype(np.int64)


# Up to this many boxes NMS builds the whole N x N "overlaps too much" matrix (1 MB of bools at
# 1,024) in a few vectorized passes, then walks only the boxes that overlap a later one: most
# proposals overlap nothing and cost nothing. A detector's proposals per class at a usable
# threshold are in this range; the row-by-row walk keeps memory O(N) for anything larger.
_MATRIX_MAX = 1024


def _greedy_matrix(b: np.ndarray, thr: float) -> list[int]:
    x0, y0, x1, y1 = (b[:, k] for k in range(4))
    iw = np.clip(np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None]), 0, None)
    ih = np.clip(np.minimum(y1[:, None], y1[None]) - np.maximum(y0[:, None], y0[None]), 0, None)
    inter = iw * ih
    area = (x1 - x0) * (y1 - y0)
    with np.errstate(divide="ignore", invalid="ignore"):
        over = np.triu(inter / (area[:, None] + area[None] - inter) > thr, 1)  # NaN: no overlap
    alive = np.ones(b.shape[0], dtype=bool)
    for i in np.flatnonzero(over.any(axis=1)).tolist():
        if alive[i]:
            alive &= ~over[i]
    return np.flatnonzero(alive).tolist()


def _greedy_rows(b: np.ndarray, thr: float) -> list[int]:
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    alive = np.ones(b.shape[0], dtype=bool)
    keep: list[int] = []
    for i in range(b.shape[0]):
        if not alive[i]:
            continue
        keep.append(i)
        rest = np.flatnonzero(alive[i + 1:]) + i + 1
        if rest.size == 0:
            break
        w = np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0], b[rest, 0])
        h = np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1], b[rest, 1])
        inter = np.clip(w, 0, None) * np.clip(h, 0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = inter / (areas[i] + areas[rest] - inter)
        alive[rest[iou > thr]] = False  # NaN compares False: kept, as torchvision
    return keep


def center_to_corners(boxes: np.ndarray) -> np.ndarray:
    """``(..., 4)`` ``[cx, cy, w, h]`` -> ``[x0, y0, x1, y1]`` (float64 unless float32 given)."""
    arr = np.asarray(boxes)
    if arr.shape[-1:] != (4,):
        raise InvalidArgument(f"boxes must end in a dimension of 4 ([cx, cy, w, h]), got shape "
                              f"{arr.shape}.", detail={"field": "boxes"})
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64)
    c, half = arr[..., :2], arr[..., 2:] / 2
    return np.concatenate([c - half, c + half], axis=-1)


def corners_to_center(boxes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`center_to_corners`."""
    arr = np.asarray(boxes)
    if arr.shape[-1:] != (4,):
        raise InvalidArgument(f"boxes must end in a dimension of 4 ([x0, y0, x1, y1]), got "
                              f"shape {arr.shape}.", detail={"field": "boxes"})
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64)
    lo, hi = arr[..., :2], arr[..., 2:]
    return np.concatenate([(lo + hi) / 2, hi - lo], axis=-1)


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Clip ``(..., 4)`` xyxy boxes to the image: x into ``[0, width]``, y into ``[0, height]``."""
    arr = np.asarray(boxes)
    if arr.shape[-1:] != (4,):
        raise InvalidArgument(f"boxes must end in a dimension of 4, got shape {arr.shape}.",
                              detail={"field": "boxes"})
    if not (width >= 0 and height >= 0):
        raise InvalidArgument(f"image size must be non-negative, got {width} x {height}.")
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64)
    lo = np.zeros(4, dtype=arr.dtype)
    hi = np.array([width, height, width, height], dtype=arr.dtype)
    return np.clip(arr, lo, hi)
