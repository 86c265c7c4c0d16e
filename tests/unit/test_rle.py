"""COCO RLE: byte-for-byte agreement with pycocotools (the reference every COCO tool reads)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as coco

from backend.errors import InvalidArgument
from backend.geometry import rle


def coco_encode(mask: np.ndarray) -> dict:
    return coco.encode(np.asfortranarray(mask.astype(np.uint8)))


def check_against_coco(mask: np.ndarray) -> None:
    ref = coco_encode(mask)
    ours = rle.encode(mask)
    assert ours["size"] == [int(v) for v in ref["size"]]
    assert isinstance(ours["counts"], str)
    assert ours["counts"].encode("ascii") == ref["counts"]
    # Decoding: ours from theirs, and ours from ours.
    np.testing.assert_array_equal(rle.decode(ref), mask.astype(bool))
    np.testing.assert_array_equal(rle.decode(ours), mask.astype(bool))
    assert rle.area(ours) == int(coco.area(ref))
    if mask.size:
        assert rle.to_bbox(ours) == [float(v) for v in coco.toBbox(ref)]


small_masks = st.tuples(st.integers(0, 40), st.integers(0, 40)).flatmap(
    lambda hw: arrays(np.bool_, hw))


@settings(max_examples=300, deadline=None, database=None)
@given(small_masks)
def test_random_masks_match_pycocotools(mask: np.ndarray) -> None:
    check_against_coco(mask)


@st.composite
def blocky_masks(draw: st.DrawFn) -> np.ndarray:
    """Large masks made of a few rectangles: long runs need multi-character counts, and runs
    that shrink give the negative differences of the compressed format."""
    h, w = draw(st.integers(1, 600)), draw(st.integers(1, 600))
    mask = np.zeros((h, w), dtype=bool)
    for _ in range(draw(st.integers(0, 6))):
        y0, x0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
        y1, x1 = draw(st.integers(y0, h)), draw(st.integers(x0, w))
        mask[y0:y1, x0:x1] ^= True
    return mask


@settings(max_examples=100, deadline=None, database=None)
@given(blocky_masks())
def test_large_blocky_masks_match_pycocotools(mask: np.ndarray) -> None:
    check_against_coco(mask)


@pytest.mark.parametrize("mask", [
    np.zeros((5, 7), bool),                    # empty
    np.ones((5, 7), bool),                     # full
    np.zeros((1, 1), bool),
    np.ones((1, 1), bool),
    np.zeros((0, 4), bool),                    # no rows
    np.eye(6, dtype=bool),                     # runs wrapping across columns
    np.ones((1, 5000), bool),
    np.ones((3000, 1), bool),
], ids=["empty", "full", "1x1-0", "1x1-1", "0x4", "diagonal", "one-row", "one-column"])
def test_edge_cases_match_pycocotools(mask: np.ndarray) -> None:
    check_against_coco(mask)


def test_non_contiguous_and_non_bool_inputs() -> None:
    rng = np.random.default_rng(7)
    base = rng.random((40, 30)) < 0.4
    views = {
        "strided": base[::3, ::2],
        "transposed": base.T,
        "fortran": np.asfortranarray(base),
        "uint8": base.astype(np.uint8),
        "float": base.astype(np.float32),
        "reversed": base[::-1, ::-1],
    }
    for name, view in views.items():
        ref = coco_encode(np.ascontiguousarray(view).astype(bool))
        assert rle.encode(view)["counts"].encode() == ref["counts"], name


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside pycocotools, numpy 2
def test_decode_accepts_uncompressed_counts_as_coco_does() -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((13, 17)) < 0.5
    flat = mask.ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.r_[0, change, flat.size]).tolist()
    if flat[0]:
        counts = [0] + counts
    uncompressed = {"size": [13, 17], "counts": counts}
    ref = coco.frPyObjects(uncompressed, 13, 17)
    np.testing.assert_array_equal(rle.decode(uncompressed), coco.decode(ref).astype(bool))
    assert rle.area(uncompressed) == int(mask.sum())
    assert rle.to_bbox(uncompressed) == [float(v) for v in coco.toBbox(ref)]


def test_decode_accepts_bytes_counts() -> None:
    mask = np.zeros((4, 4), bool)
    mask[1:3, 2] = True
    ref = coco_encode(mask)
    assert isinstance(ref["counts"], bytes)
    np.testing.assert_array_equal(rle.decode(ref), mask)


def test_bbox_of_single_pixel_is_its_cell() -> None:
    mask = np.zeros((10, 8), bool)
    mask[5, 3] = True
    assert rle.to_bbox(rle.encode(mask)) == [3.0, 5.0, 1.0, 1.0]
    assert rle.to_bbox(rle.encode(np.zeros((10, 8), bool))) == [0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("bad", [
    {"size": [2, 2], "counts": [1, 2]},                # 3 pixels for a 4-pixel mask
    {"size": [2, 2], "counts": [5, -1]},               # negative run
    {"size": [2, 2], "counts": "0\x7f"},               # not the COCO alphabet
    {"size": [2, 2], "counts": "0P"},                  # 'P' promises more characters
    {"size": [2], "counts": "4"},                      # size is not [h, w]
    {"size": [2, -2], "counts": "4"},
    {"counts": "4"},                                   # no size
    {"size": [2, 2], "counts": 4},                     # counts of the wrong type
    [2, 2],                                            # not an object
])
def test_malformed_rle_is_refused_with_invalid_argument(bad: object) -> None:
    with pytest.raises(InvalidArgument):
        rle.decode(bad)  # type: ignore[arg-type]


def test_encode_refuses_non_2d() -> None:
    with pytest.raises(InvalidArgument, match="2-D"):
        rle.encode(np.zeros((2, 2, 1), bool))
