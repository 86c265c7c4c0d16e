"""Mask <-> polygon: exact round trips, topology against scikit-image, rasterization against
point-in-polygon and pycocotools, Douglas-Peucker against a recursive reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as coco
from skimage.measure import label, points_in_poly

from backend.errors import InvalidArgument
from backend.geometry.contour import trace
from backend.geometry.masks import mask_to_polygons, polygon_area, polygon_bbox, polygons_to_mask
from backend.geometry.simplify import signed_area, simplify_rings


def exact(mask: np.ndarray) -> list:
    return mask_to_polygons(mask, tolerance=0, min_area=0)


def from_rows(*rows: str) -> np.ndarray:
    return np.array([[c == "#" for c in r] for r in rows], dtype=bool)


masks = st.tuples(st.integers(1, 24), st.integers(1, 24)).flatmap(
    lambda hw: arrays(np.bool_, hw))


@settings(max_examples=400, deadline=None, database=None)
@given(masks)
def test_round_trip_is_exact(mask: np.ndarray) -> None:
    polys = exact(mask)
    np.testing.assert_array_equal(polygons_to_mask(polys, *mask.shape), mask)
    enclosed = sum(polygon_area(p[0]) - sum(polygon_area(h) for h in p[1:]) for p in polys)
    assert enclosed == mask.sum()


@settings(max_examples=300, deadline=None, database=None)
@given(masks)
def test_parts_and_holes_match_scikit_image_labelling(mask: np.ndarray) -> None:
    polys = exact(mask)
    parts, n_parts = label(mask, connectivity=1, return_num=True)   # 4-connected foreground
    assert len(polys) == n_parts
    # Holes: 8-connected background components other than the one around the image.
    _, n_bg = label(np.pad(~mask, 1, constant_values=True), connectivity=2, return_num=True)
    assert sum(len(p) - 1 for p in polys) == n_bg - 1
    for poly in polys:
        own = polygons_to_mask([poly], *mask.shape)
        ids = np.unique(parts[own])
        assert len(ids) == 1 and np.array_equal(own, parts == ids[0])
        # Orientation contract: outer clockwise on screen (positive), holes negative; every
        # ring starts at its top-most then left-most vertex.
        assert polygon_area(poly[0], signed=True) > 0
        assert all(polygon_area(h, signed=True) < 0 for h in poly[1:])
        for ring in poly:
            first = tuple(ring[0])
            assert first == min((y, x) for x, y in ring)[::-1]


def test_views_and_non_bool_masks_give_the_same_polygons() -> None:
    rng = np.random.default_rng(5)
    base = rng.random((30, 40)) < 0.5
    for view in (base.T, base[::2, ::3], base[::-1], np.asfortranarray(base),
                 base.astype(np.uint8), base.astype(np.float32)):
        assert exact(view) == exact(np.ascontiguousarray(view).astype(bool))
        np.testing.assert_array_equal(polygons_to_mask(exact(view), *view.shape), view != 0)


def test_single_pixel_is_its_unit_square() -> None:
    mask = np.zeros((3, 3), bool)
    mask[0, 0] = True
    assert exact(mask) == [[[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]]]


def test_diagonal_neighbours_are_separate_parts() -> None:
    mask = from_rows("#.",
                     ".#")
    polys = exact(mask)
    assert len(polys) == 2
    assert sorted(len(p[0]) for p in polys) == [4, 4]
    np.testing.assert_array_equal(polygons_to_mask(polys, 2, 2), mask)


def test_ring_of_diagonal_pixels_has_no_hole() -> None:
    # The centre touches the outside through the corners (8-connected background).
    mask = from_rows(".#.",
                     "#.#",
                     ".#.")
    polys = exact(mask)
    assert len(polys) == 4 and all(len(p) == 1 for p in polys)


def test_part_inside_a_hole_is_its_own_polygon() -> None:
    mask = from_rows("#######",
                     "#.....#",
                     "#.###.#",
                     "#.#.#.#",
                     "#.###.#",
                     "#.....#",
                     "#######")
    polys = exact(mask)
    assert [len(p) for p in polys] == [2, 2]        # both parts have one hole
    big, small = polys
    assert polygon_area(big[0]) == 49 and polygon_area(big[1]) == 25
    assert polygon_area(small[0]) == 9 and polygon_area(small[1]) == 1
    np.testing.assert_array_equal(polygons_to_mask(polys, 7, 7), mask)


def test_one_pixel_wide_parts_survive_simplification() -> None:
    mask = np.zeros((20, 40), bool)
    mask[5, 2:38] = True                             # a 1-pixel-thin line
    mask[8:18, 10] = True
    for tol in (0.0, 1.0, 3.0):
        polys = mask_to_polygons(mask, tolerance=tol, min_area=0)
        assert len(polys) == 2
        np.testing.assert_array_equal(polygons_to_mask(polys, 20, 40), mask)


def test_parts_come_largest_first() -> None:
    mask = np.zeros((20, 20), bool)
    mask[0:2, 0:2] = True          # 4 px, first in raster order
    mask[10:18, 10:18] = True      # 64 px
    mask[0:3, 10:13] = True        # 9 px
    areas = [polygon_area(p[0]) for p in exact(mask)]
    assert areas == [64.0, 9.0, 4.0]


def test_min_area_drops_specks_and_fills_pinholes() -> None:
    mask = np.zeros((30, 30), bool)
    mask[2:22, 2:22] = True
    mask[10, 10] = False            # 1-pixel hole
    mask[5:9, 5:9] = False          # 16-pixel hole
    mask[26, 26] = True             # 1-pixel speck
    polys = mask_to_polygons(mask, tolerance=0, min_area=4)
    assert len(polys) == 1 and len(polys[0]) == 2
    back = polygons_to_mask(polys, 30, 30)
    assert back[10, 10] and not back[26, 26] and not back[6, 6]


def _disk(radius: float, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    return (xx - size / 2) ** 2 + (yy - size / 2) ** 2 < radius ** 2


def test_simplification_stays_within_tolerance_and_drops_vertices() -> None:
    mask = _disk(40, 100)
    staircase = exact(mask)[0][0]
    for tol in (0.5, 1.0, 2.0):
        simple = mask_to_polygons(mask, tolerance=tol)[0][0]
        assert len(simple) < len(staircase)
        # Every staircase corner lies within tol of the simplified outline.
        pts = np.array(staircase)
        ring = np.array(simple + simple[:1])
        a, b = ring[:-1], ring[1:]
        ab = b - a
        t = np.clip(((pts[:, None] - a) * ab).sum(-1) / (ab * ab).sum(-1), 0, 1)
        dist = np.linalg.norm(pts[:, None] - (a + t[..., None] * ab), axis=-1).min(axis=1)
        assert dist.max() <= tol + 1e-9
        back = polygons_to_mask([[simple]], 100, 100)
        assert (back & mask).sum() / (back | mask).sum() > 0.97


def _reference_dp(ring: np.ndarray, tol: float) -> np.ndarray:
    """Textbook recursive Douglas-Peucker on a closed ring split at vertex 0 and the farthest."""
    def seg_dist(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        ab = b - a
        d = float(ab @ ab)
        t = 0.0 if d == 0 else float(np.clip((p - a) @ ab / d, 0, 1))
        return float(np.hypot(*(p - a - t * ab)))

    def rec(line: np.ndarray) -> list[int]:
        if len(line) < 3:
            return [0, len(line) - 1]
        dists = [seg_dist(line[k], line[0], line[-1]) for k in range(1, len(line) - 1)]
        k = int(np.argmax(dists)) + 1
        if dists[k - 1] <= tol:
            return [0, len(line) - 1]
        left, right = rec(line[:k + 1]), rec(line[k:])
        return left[:-1] + [i + k for i in right]

    closed = np.vstack([ring, ring[:1]]).astype(float)
    far = int(np.argmax(np.hypot(*(closed[:-1] - closed[0]).T)))
    idx = rec(closed[:far + 1])[:-1] + [i + far for i in rec(closed[far:])]
    return ring[[i for i in idx if i < len(ring)]]


@pytest.mark.parametrize("seed", range(5))
def test_douglas_peucker_matches_recursive_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((40, 40)) < 0.65
    rings = [r.points for part in trace(mask) for r in [part.outer, *part.holes]]
    for tol in (0.5, 1.0, 2.5):
        for ring, got in zip(rings, simplify_rings(rings, tol), strict=True):
            want = _reference_dp(ring, tol) if len(ring) > 3 else ring
            area = signed_area(want.astype(float))
            if len(want) >= 3 and area != 0 and (area > 0) == (signed_area(ring * 1.0) > 0):
                np.testing.assert_array_equal(got, want)
            else:                                  # would collapse: kept exact
                np.testing.assert_array_equal(got, ring)


def _random_polygon(rng: np.random.Generator, size: int, r_min: float) -> np.ndarray:
    n = int(rng.integers(3, 12))
    r = rng.uniform(r_min, 60)
    cx, cy = rng.uniform(r, size - r, 2)
    ang = np.arange(n) * 2 * np.pi / n + rng.uniform(0, 2 * np.pi) \
        + rng.uniform(-0.2, 0.2, n) * np.pi / n
    rad = r * rng.uniform(0.8, 1.0, n)
    return np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1)


@pytest.mark.parametrize("seed", range(8))
def test_rasterization_is_pixel_centre_in_polygon(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size = 160
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    centres = np.stack([xx.ravel(), yy.ravel()], axis=1)
    for _ in range(20):
        pts = _random_polygon(rng, size, 5)
        want = points_in_poly(centres, pts).reshape(size, size)
        np.testing.assert_array_equal(polygons_to_mask([[pts.tolist()]], size, size), want)


@pytest.mark.parametrize("seed", range(6))
def test_rasterization_of_messy_polygons_matches_per_ring_reference(seed: int) -> None:
    # Overlapping polygons, self-crossing rings, holes that overlap or poke out of their outer
    # ring, coordinates outside the image: union of (outer minus its holes), even-odd per ring.
    rng = np.random.default_rng(seed)
    h, w = 37, 45
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    centres = np.stack([xx.ravel(), yy.ravel()], axis=1)
    for _ in range(40):
        polys = [[rng.uniform(-8, 52, (int(rng.integers(3, 9)), 2)) for _ in
                  range(int(rng.integers(1, 4)))] for _ in range(int(rng.integers(1, 4)))]
        want = np.zeros((h, w), bool)
        for rings in polys:
            inside = points_in_poly(centres, rings[0]).reshape(h, w)
            for hole in rings[1:]:
                inside &= ~points_in_poly(centres, hole).reshape(h, w)
            want |= inside
        got = polygons_to_mask([[r.tolist() for r in rings] for rings in polys], h, w)
        np.testing.assert_array_equal(got, want)


def test_many_holes_rasterize_exactly() -> None:
    rng = np.random.default_rng(11)
    mask = rng.random((200, 200)) < 0.85           # one part riddled with holes
    polys = exact(mask)
    assert sum(len(p) - 1 for p in polys) > 1000
    np.testing.assert_array_equal(polygons_to_mask(polys, 200, 200), mask)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside pycocotools, numpy 2
@pytest.mark.parametrize("seed", range(4))
def test_rasterization_agrees_with_pycocotools_on_simple_polygons(seed: int) -> None:
    # pycocotools traces the outline on a 5x finer grid, so pixels the outline cuts near their
    # centre may go either way; on shapes at least ~30 px across that stays under 2 %.
    rng = np.random.default_rng(100 + seed)
    size = 160
    for _ in range(50):
        pts = _random_polygon(rng, size, 30)
        ours = polygons_to_mask([[pts.tolist()]], size, size)
        theirs = coco.decode(coco.frPyObjects([pts.ravel().tolist()], size, size))[..., 0]
        theirs = theirs.astype(bool)
        assert (ours & theirs).sum() / (ours | theirs).sum() >= 0.98


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_axis_aligned_rectangle_matches_pycocotools_exactly() -> None:
    pts = [[10.3, 5.7], [50.2, 5.7], [50.2, 40.9], [10.3, 40.9]]
    theirs = coco.decode(coco.frPyObjects([np.ravel(pts).tolist()], 64, 64))[..., 0]
    np.testing.assert_array_equal(polygons_to_mask([[pts]], 64, 64), theirs.astype(bool))


def test_holes_are_subtracted_only_from_their_own_polygon() -> None:
    outer = [[0, 0], [10, 0], [10, 10], [0, 10]]
    hole = [[2, 2], [2, 8], [8, 8], [8, 2]]
    other = [[4, 4], [6, 4], [6, 6], [4, 6]]        # an island inside the hole
    m = polygons_to_mask([[outer, hole], [other]], 12, 12)
    assert m.sum() == 100 - 36 + 4
    assert m[5, 5] and not m[3, 3] and m[1, 1]
    # A hole reaching outside its outer ring removes nothing outside it.
    m2 = polygons_to_mask([[outer, [[8, 8], [12, 8], [12, 12], [8, 12]]]], 12, 12)
    assert m2.sum() == 100 - 4


def test_polygons_are_clipped_to_the_image_and_degenerate_rings_ignored() -> None:
    m = polygons_to_mask([[[[-5, -5], [3, -5], [3, 3], [-5, 3]]], [[[1, 1], [2, 2]]], [[]]],
                         4, 4)
    assert m.sum() == 9 and m[:3, :3].all()
    assert polygons_to_mask([], 0, 0).shape == (0, 0)


@pytest.mark.parametrize("bad", [
    [[[[0, 0], [1, 0], [float("nan"), 1]]]],         # not finite
    [[[[0, 0, 0], [1, 0, 0], [1, 1, 1]]]],            # 3 coordinates
    [[]],                                             # a polygon with no rings
    ["abc"],
])
def test_bad_polygons_are_refused(bad: list) -> None:
    with pytest.raises(InvalidArgument):
        polygons_to_mask(bad, 5, 5)


def test_bad_mask_arguments_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="2-D"):
        mask_to_polygons(np.zeros((2, 2, 2), bool))
    with pytest.raises(InvalidArgument, match="tolerance"):
        mask_to_polygons(np.zeros((2, 2), bool), tolerance=-1)
    assert mask_to_polygons(np.zeros((5, 5), bool)) == []


def test_polygon_area_and_bbox() -> None:
    ring = [[1, 1], [4, 1], [4, 3], [1, 3]]
    assert polygon_area(ring) == 6.0
    assert polygon_area(ring, signed=True) == 6.0
    assert polygon_area(ring[::-1], signed=True) == -6.0
    assert polygon_area([[0, 0], [1, 1]]) == 0.0
    assert polygon_bbox([ring, [[2, 0.5], [3, 2]]]) == [1.0, 0.5, 4.0, 3.0]
    assert polygon_bbox(ring) == [1.0, 1.0, 4.0, 3.0]
    with pytest.raises(InvalidArgument):
        polygon_bbox([])
