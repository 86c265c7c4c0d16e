"""Boxes: NMS and IoU against straightforward references with torchvision's semantics."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.errors import InvalidArgument
from backend.geometry import boxes as boxes_module
from backend.geometry.boxes import box_iou, center_to_corners, clip_boxes, corners_to_center, nms


def reference_iou(a: list[float], b: list[float]) -> float:
    """torchvision's formula, one pair at a time: areas without +1, NaN for 0 / 0."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union != 0 else float("nan")


def reference_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """The textbook loop: best remaining box wins, drop boxes overlapping it by more than thr."""
    remaining = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    keep: list[int] = []
    while remaining:
        best = remaining.pop(0)
        keep.append(best)
        remaining = [j for j in remaining
                     if not reference_iou(list(boxes[best]), list(boxes[j])) > thr]
    return keep


@st.composite
def box_sets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 30))
    coord = st.integers(0, 50)      # a small grid: many overlaps, duplicates and exact ties
    boxes = []
    for _ in range(n):
        x0, y0 = draw(coord), draw(coord)
        boxes.append([x0, y0, x0 + draw(st.integers(0, 30)), y0 + draw(st.integers(0, 30))])
    scores = [draw(st.sampled_from([0.1, 0.5, 0.9]) | st.floats(0, 1)) for _ in range(n)]
    return np.array(boxes, float).reshape(-1, 4), np.array(scores, float)


@settings(max_examples=150, deadline=None, database=None)
@given(box_sets(), st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]))
def test_nms_matches_reference(data: tuple[np.ndarray, np.ndarray], thr: float) -> None:
    boxes, scores = data
    kept = nms(boxes, scores, thr)
    assert kept.dtype == np.int64
    assert kept.tolist() == reference_nms(boxes, scores, thr)
    # Above the matrix size NMS walks row by row (memory O(N)): same answer.
    with mock.patch.object(boxes_module, "_MATRIX_MAX", 0):
        assert nms(boxes, scores, thr).tolist() == reference_nms(boxes, scores, thr)


@settings(max_examples=50, deadline=None, database=None)
@given(box_sets(), box_sets())
def test_box_iou_matches_reference(a: tuple, b: tuple) -> None:
    got = box_iou(a[0], b[0])
    assert got.shape == (len(a[0]), len(b[0]))
    want = np.array([[reference_iou(list(x), list(y)) for y in b[0]] for x in a[0]])
    np.testing.assert_allclose(got, want.reshape(got.shape), equal_nan=True)


def test_nms_edge_cases_follow_torchvision() -> None:
    empty = nms(np.zeros((0, 4)), np.zeros(0), 0.5)
    assert empty.dtype == np.int64 and empty.size == 0
    # Result is ordered by decreasing score, not by input position.
    far_apart = np.array([[0, 0, 1, 1], [10, 10, 11, 11], [20, 20, 21, 21]], float)
    assert nms(far_apart, np.array([0.2, 0.9, 0.5]), 0.5).tolist() == [1, 2, 0]
    # IoU exactly at the threshold is kept (suppression needs IoU > threshold).
    half = np.array([[0, 0, 2, 1], [0, 0, 1, 1]], float)      # IoU = 1 / 2
    assert nms(half, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert nms(half, np.array([0.9, 0.8]), 0.49).tolist() == [0]
    # Boxes sharing only an edge do not overlap, even at threshold 0.
    touching = np.array([[0, 0, 1, 1], [1, 0, 2, 1]], float)
    assert nms(touching, np.array([0.9, 0.8]), 0.0).tolist() == [0, 1]
    # Identical boxes: the higher score survives; equal scores keep the first.
    same = np.array([[0, 0, 5, 5]] * 3, float)
    assert nms(same, np.array([0.1, 0.7, 0.3]), 0.5).tolist() == [1]
    assert nms(same, np.array([0.5, 0.5, 0.5]), 0.5).tolist() == [0]
    # Zero-area boxes: 0 / 0 IoU is NaN, never above the threshold, so nothing is suppressed.
    points = np.array([[3, 3, 3, 3], [3, 3, 3, 3]], float)
    assert nms(points, np.array([0.9, 0.8]), 0.0).tolist() == [0, 1]


def test_nms_refuses_mismatched_input() -> None:
    with pytest.raises(InvalidArgument, match="scores"):
        nms(np.zeros((3, 4)), np.zeros(2), 0.5)
    with pytest.raises(InvalidArgument, match=r"\(N, 4\)"):
        nms(np.zeros((3, 5)), np.zeros(3), 0.5)
    with pytest.raises(InvalidArgument, match="iou_threshold"):
        nms(np.zeros((1, 4)), np.zeros(1), float("nan"))


def test_box_iou_known_value() -> None:
    iou = box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]]))
    np.testing.assert_allclose(iou, [[1 / 7, 1.0, 0.0]])


def test_center_to_corners_and_back() -> None:
    cxcywh = np.array([[[5.0, 4.0, 2.0, 6.0]], [[0.5, 0.5, 1.0, 1.0]]])
    xyxy = center_to_corners(cxcywh)
    assert xyxy.shape == (2, 1, 4)
    np.testing.assert_allclose(xyxy, [[[4, 1, 6, 7]], [[0, 0, 1, 1]]])
    np.testing.assert_allclose(corners_to_center(xyxy), cxcywh)
    assert center_to_corners(cxcywh.astype(np.float32)).dtype == np.float32
    with pytest.raises(InvalidArgument):
        center_to_corners(np.zeros((2, 3)))


def test_clip_boxes_to_image_edges() -> None:
    boxes = np.array([[-5, -1, 50, 20], [10, 10, 20, 20], [120, 90, 130, 95]], float)
    clipped = clip_boxes(boxes, 100, 80)
    np.testing.assert_array_equal(clipped, [[0, 0, 50, 20], [10, 10, 20, 20],
                                            [100, 80, 100, 80]])
    assert boxes[0, 0] == -5                          # input untouched
    with pytest.raises(InvalidArgument):
        clip_boxes(boxes, -1, 10)
