"""The fast RLE paths of the COCO export agree byte for byte with pycocotools.

``shape_rles`` (boxes and polygons, many at once, no full-image mask) is checked against the
slow, obvious route — ``polygons_to_mask`` on the whole image, then ``pycocotools.mask.encode``
— and ``rle.encode_crop`` / ``rle.from_changes`` against pycocotools on the full mask. Shapes
include the cases where rounding rules matter: coordinates on pixel centers and corners, shapes
reaching outside the image, shapes covering whole columns (runs that join across columns),
self-crossing rings and shapes covering no pixel center.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as coco

from backend.errors import InvalidArgument
from backend.formats.shape_rle import shape_rles
from backend.geometry import rle
from backend.geometry.masks import polygons_to_mask


def reference(mask: np.ndarray) -> dict:
    return coco.encode(np.asfortranarray(mask.astype(np.uint8)))


def box_ring(box: list[float]) -> list[list[float]]:
    x0, y0, x1, y1 = box
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def check(shapes: list[tuple[str, list]], sizes: list[tuple[int, int]]) -> None:
    got = shape_rles(shapes, sizes)
    assert len(got) == len(shapes)
    for (kind, g), (h, w), out in zip(shapes, sizes, got, strict=True):
        ring = box_ring(g) if kind == "box" else g
        mask = polygons_to_mask([[ring]], h, w)
        if not mask.any():
            assert out is None, (kind, g, h, w)
            continue
        assert out is not None, (kind, g, h, w)
        enc, area, bbox = out
        ref = reference(mask)
        assert enc["size"] == [h, w]
        assert enc["counts"].encode() == ref["counts"], (kind, g, h, w)
        assert area == int(mask.sum())
        assert bbox == [float(v) for v in coco.toBbox(ref)]


# Half-pixel steps land on pixel centers (x.5) and corners (x.0): where rounding rules bite.
half = st.integers(-12, 100).map(lambda v: v / 2)
sizes = st.tuples(st.integers(1, 45), st.integers(1, 45))


@st.composite
def shape_on_image(draw: st.DrawFn) -> tuple[tuple[str, list], tuple[int, int]]:
    h, w = draw(sizes)
    if draw(st.booleans()):
        xs, ys = sorted([draw(half), draw(half)]), sorted([draw(half), draw(half)])
        return ("box", [xs[0], ys[0], xs[1], ys[1]]), (h, w)
    coord = half if draw(st.booleans()) else st.floats(-6, 50, allow_nan=False).map(
        lambda v: round(v, 2))
    ring = draw(st.lists(st.tuples(coord, coord).map(list), min_size=3, max_size=9))
    return ("polygon", ring), (h, w)


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(shape_on_image(), min_size=1, max_size=25))
def test_boxes_and_polygons_match_pycocotools_on_the_full_mask(items: list) -> None:
    check([s for s, _ in items], [hw for _, hw in items])


@pytest.mark.parametrize(("kind", "geometry", "size"), [
    ("box", [0, 0, 20, 10], (10, 20)),             # the whole image: one run over all columns
    ("box", [-5, -5, 50, 50], (10, 20)),           # larger than the image: clipped to it
    ("box", [3, 0, 7, 10], (10, 20)),              # full columns: runs join across columns
    ("box", [2.5, 2.5, 3.5, 3.5], (10, 20)),       # exactly one pixel center
    ("box", [2.6, 2.6, 3.4, 3.4], (10, 20)),       # no pixel center: nothing
    ("box", [19, 9, 20, 10], (10, 20)),            # the last pixel: the mask ends on a one
    ("polygon", [[0, 0], [20, 0], [20, 10], [0, 10]], (10, 20)),
    ("polygon", [[0, 0], [10, 10], [0, 10], [10, 0]], (12, 12)),   # self-crossing (bow tie)
    ("polygon", [[1, 1], [30, 1], [1, 2]], (8, 40)),                # a sliver
    ("polygon", [[0, 0], [5, 0]], (8, 8)),                          # fewer than 3 vertices
    ("polygon", [[-10, -10], [-5, -10], [-5, -5]], (8, 8)),         # outside the image
], ids=["whole", "clipped", "full-columns", "one-pixel", "no-center", "last-pixel",
        "polygon-whole", "bow-tie", "sliver", "two-vertices", "outside"])
def test_edge_cases_match_pycocotools(kind: str, geometry: list, size: tuple[int, int]) -> None:
    check([(kind, geometry)], [size])


def test_large_image_and_many_shapes_in_one_call() -> None:
    rng = np.random.default_rng(5)
    shapes, hw = [], []
    for _ in range(300):
        h, w = int(rng.integers(200, 700)), int(rng.integers(200, 700))
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(2, 120)
        t = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 14))))
        rad = r * rng.uniform(0.3, 1.0, t.size)        # star-shaped: concave, several runs
        ring = np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], 1).round(2).tolist()
        shapes.append(("polygon", ring))
        hw.append((h, w))
    check(shapes, hw)


crops = st.tuples(st.integers(0, 30), st.integers(0, 30)).flatmap(
    lambda hw: st.tuples(st.just(hw), st.integers(0, hw[0]), st.integers(0, hw[1]),
                         st.integers(0, 2 ** 31), st.floats(0, 1)))


@settings(max_examples=300, deadline=None, database=None)
@given(crops)
def test_encode_crop_matches_pycocotools_on_the_full_mask(spec: tuple) -> None:
    (h, w), ch, cw, seed, density = spec
    rng = np.random.default_rng(seed)
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    crop = rng.random((ch, cw)) < density
    full = np.zeros((h, w), bool)
    full[y0:y0 + ch, x0:x0 + cw] = crop
    got = rle.encode_crop(crop, x0, y0, h, w)
    assert got["counts"].encode() == reference(full)["counts"]
    assert got == rle.encode(full)
    assert rle.area_and_bbox(got) == (rle.area(got), rle.to_bbox(got))


def test_encode_crop_refuses_a_crop_that_does_not_fit() -> None:
    with pytest.raises(InvalidArgument, match="does not fit"):
        rle.encode_crop(np.ones((3, 3), bool), 8, 0, 10, 10)


def test_from_changes_of_several_masks_equals_encoding_each() -> None:
    rng = np.random.default_rng(2)
    masks = [rng.random((int(rng.integers(0, 9)), int(rng.integers(0, 9)))) < 0.5
             for _ in range(40)]
    changes, lengths = [], []
    for m in masks:
        flat = m.ravel(order="F")
        prev = np.r_[False, flat[:-1]]
        c = np.flatnonzero(flat != prev)
        changes.append(c)
        lengths.append(c.size)
    got = rle.from_changes(np.concatenate(changes), lengths, [m.shape for m in masks])
    for m, enc in zip(masks, got, strict=True):
        assert enc["counts"].encode() == reference(m)["counts"]


def test_from_changes_refuses_unordered_changes() -> None:
    with pytest.raises(InvalidArgument, match="ascend"):
        rle.from_changes(np.array([5, 3]), [2], [(4, 4)])


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.tuples(st.integers(0, 25), st.integers(0, 25), st.integers(0, 2 ** 31),
                          st.booleans()), min_size=1, max_size=30))
def test_encode_rects_matches_pycocotools(specs: list) -> None:
    rects, sizes, masks = [], [], []
    for h, w, seed, whole_columns in specs:
        rng = np.random.default_rng(seed)
        c0, c1 = sorted(rng.integers(0, w + 1, 2).tolist())
        r0, r1 = (0, h) if whole_columns else sorted(rng.integers(0, h + 1, 2).tolist())
        mask = np.zeros((h, w), bool)
        mask[r0:r1, c0:c1] = True
        rects.append([c0, r0, c1, r1])
        sizes.append((h, w))
        masks.append(mask)
    for mask, got in zip(masks, rle.encode_rects(np.array(rects), sizes), strict=True):
        assert got["counts"].encode() == reference(mask)["counts"]


def test_area_and_bbox_of_many_masks_equal_pycocotools() -> None:
    rng = np.random.default_rng(9)
    masks = [rng.random((int(rng.integers(0, 30)), int(rng.integers(0, 30)))) < rng.random() ** 3
             for _ in range(400)]
    masks.append(np.eye(7, dtype=bool))          # runs wrapping into the next column
    encoded = [rle.encode(m) for m in masks]
    for m, (area, bbox) in zip(masks, rle.area_and_bbox_many(encoded), strict=True):
        assert area == int(m.sum())
        if m.size:
            assert bbox == [float(v) for v in coco.toBbox(reference(m))]


def test_area_and_bbox_of_many_masks_refuses_a_broken_one() -> None:
    good = rle.encode(np.ones((3, 3), bool))
    with pytest.raises(InvalidArgument, match="add up"):
        rle.area_and_bbox_many([good, {"size": [3, 3], "counts": "5"}])
