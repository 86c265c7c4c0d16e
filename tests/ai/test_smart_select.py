"""Smart select (no model): one-click shapes that match the object, on synthetic scenes with a
known answer and on the bundled demo photos."""

from __future__ import annotations

import heapq
import io

import numpy as np
import pytest
from PIL import Image

from backend.ai.regions import box_blur, minimax_distance
from backend.ai.smart_select import rgb_to_lab, select, working_lab
from backend.errors import InvalidArgument
from backend.geometry.masks import polygons_to_mask
from backend.imaging import load_display_scaled
from backend.paths import resource


def _jpeg(rgb: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=85)
    return np.asarray(Image.open(buf).convert("RGB"))


def _scene(h: int, w: int, obj: np.ndarray, colour: tuple[int, int, int], seed: int,
           shade: bool = False) -> np.ndarray:
    """Textured, striped background with ``obj`` painted in ``colour`` (noisy, JPEG'd)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    bg = np.stack([110 + 40 * np.sin(xx / 5), 140 + 30 * np.cos(yy / 7), 90 + 20 * np.sin((xx + yy) / 11)], -1)
    img = bg + rng.normal(0, 10, bg.shape)
    paint = np.asarray(colour, dtype=np.float64)[None, None, :] * np.ones((h, w, 1))
    if shade:  # light from the left: the object darkens by half across its width
        paint *= (1.0 - 0.5 * xx / w)[..., None]
    img[obj] = paint[obj] + rng.normal(0, 8, (int(obj.sum()), 3))
    return _jpeg(np.clip(img, 0, 255).astype(np.uint8))


def _mask(result: dict, h: int, w: int) -> np.ndarray:
    return polygons_to_mask(result["polygons"], h, w) if result["polygons"] else np.zeros((h, w), bool)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _disc(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 < r * r


@pytest.mark.parametrize("seed, colour, shade", [(0, (200, 40, 40), False), (1, (30, 60, 200), False),
                                                 (2, (230, 200, 60), True)])
def test_a_click_selects_the_object_under_it(seed: int, colour: tuple[int, int, int],
                                             shade: bool) -> None:
    h, w = 180, 240
    truth = _disc(h, w, 130, 85, 45)
    rgb = _scene(h, w, truth, colour, seed, shade)
    got = _mask(select(working_lab(rgb), point=[125, 90]), h, w)
    assert _iou(got, truth) > 0.9


def test_an_object_cut_by_the_image_edge_is_still_found() -> None:
    h, w = 160, 200
    truth = _disc(h, w, 0, 80, 55)
    rgb = _scene(h, w, truth, (40, 180, 60), 3)
    assert _iou(_mask(select(working_lab(rgb), point=[15, 80]), h, w), truth) > 0.85


@pytest.mark.parametrize("margin", [6, 25])
def test_a_box_selects_the_object_inside_it(margin: int) -> None:
    h, w = 200, 260
    yy, xx = np.mgrid[0:h, 0:w]
    truth = ((xx + 0.5 - 120) / 60) ** 2 + ((yy + 0.5 - 100) / 40) ** 2 < 1
    rgb = _scene(h, w, truth, (220, 120, 30), 4)
    box = [60 - margin, 60 - margin, 180 + margin, 140 + margin]
    got = _mask(select(working_lab(rgb), box=box), h, w)
    assert _iou(got, truth) > 0.85
    assert not got[:, : int(box[0])].any() and not got[:, int(np.ceil(box[2])):].any(), "stays in the box"


def test_coordinates_scale_back_from_the_working_image() -> None:
    h, w = 180, 240
    truth = _disc(h, w, 130, 85, 45)
    rgb = _scene(h, w, truth, (200, 40, 40), 0)
    small = np.asarray(Image.fromarray(rgb).resize((120, 90), Image.Resampling.BOX))
    # The working image is half size; the click and the answer are in full-size pixels.
    got = _mask(select(working_lab(small), point=[125, 90], scale=0.5), h, w)
    assert _iou(got, truth) > 0.85


def test_a_uniform_picture_gives_one_region_not_an_error() -> None:
    rgb = np.full((50, 70, 3), 128, np.uint8)
    result = select(working_lab(rgb), point=[10, 10])
    assert result["area"] > 0 and result["bbox"] is not None
    with pytest.raises(InvalidArgument):
        select(working_lab(rgb))


# -- the pieces against references ----------------------------------------------------------------

def _dijkstra_minimax(cost: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    h, w = cost.shape
    d = np.full((h, w), np.inf)
    heap = []
    for i, j in zip(*np.nonzero(seeds), strict=True):
        d[i, j] = cost[i, j]
        heap.append((float(cost[i, j]), int(i), int(j)))
    heapq.heapify(heap)
    while heap:
        v, i, j = heapq.heappop(heap)
        if v > d[i, j]:
            continue
        for a in (i - 1, i, i + 1):
            for b in (j - 1, j, j + 1):
                if 0 <= a < h and 0 <= b < w and max(v, cost[a, b]) < d[a, b]:
                    d[a, b] = max(v, cost[a, b])
                    heapq.heappush(heap, (d[a, b], a, b))
    return d


@pytest.mark.parametrize("shape, seed", [((64, 90), 0), ((33, 47), 1), ((1, 30), 2)])
def test_minimax_distance_matches_dijkstra(shape: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    cost = (rng.random(shape) ** 4 * 10).astype(np.float32)
    cost[rng.random(shape) < 0.05] = np.inf      # walls
    seeds = np.zeros(shape, bool)
    seeds[shape[0] // 2, shape[1] // 3] = True
    seeds[0, -1] = True
    np.testing.assert_array_equal(minimax_distance(cost, seeds), _dijkstra_minimax(cost, seeds))


def test_lab_matches_scikit_image() -> None:
    color = pytest.importorskip("skimage.color")
    rgb = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_lab(rgb), color.rgb2lab(rgb), atol=0.05)


def test_box_blur_is_a_window_mean() -> None:
    a = np.random.default_rng(1).random((9, 11)).astype(np.float32)
    p = np.pad(a, 2, mode="edge")
    naive = np.mean([p[dy:dy + 9, dx:dx + 11] for dy in range(5) for dx in range(5)], axis=0)
    np.testing.assert_allclose(box_blur(a, 2), naive, atol=1e-5)


# -- the demo photos ------------------------------------------------------------------------------

def _demo(name: str) -> tuple[np.ndarray, float]:
    rgb, scale = load_display_scaled(resource("demo", "images", name), max_side=512)
    return working_lab(rgb), scale


@pytest.mark.parametrize("name, point, box, inside, min_area", [
    # The crema in the cup: inside the cup's rim, most of its opening.
    ("coffee.jpg", [284, 147], None, [165, 10, 415, 250], 15_000),
    # The rocket on its pad, from a box around it: a tall thin shape.
    ("rocket.jpg", None, [295, 125, 345, 420], [295, 125, 345, 420], 5_000),
    # The helmet, from a box: most of the box.
    ("astronaut.jpg", None, [270, 340, 512, 512], [270, 340, 512, 512], 20_000),
    # One flag stripe from a click.
    ("astronaut.jpg", [20, 200], None, [0, 0, 80, 512], 1_000),
])
def test_one_click_shapes_on_the_demo_photos(name: str, point: list[float] | None,
                                             box: list[float] | None, inside: list[float],
                                             min_area: float) -> None:
    lab, scale = _demo(name)
    result = select(lab, point=point, box=box, scale=scale)
    assert result["area"] >= min_area
    x0, y0, x1, y1 = result["bbox"]
    assert inside[0] - 2 <= x0 and y0 >= inside[1] - 2 and x1 <= inside[2] + 2 and y1 <= inside[3] + 2
