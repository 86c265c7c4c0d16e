"""Segment by clicking in the real page: the segment tool (S) with a tiny random SAM pack gives
a live mask that Enter stores as a shape of the active class; Shift+click, Backspace and Esc
edit the clicks; without a segmenter the same tool uses smart select (no model); "segment
boxes" turns a box into a mask shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from backend.store import Project
from tests.e2e.harness import Driver, Launcher

pytestmark = pytest.mark.e2e

SEGMENTER = "sam-tiny-e2e@0.0.1"
SMART = "smart-select@1"
W, H = 240, 180
DISC = (150.0, 80.0, 45.0)  # cx, cy, r: a dark disc on a light, slightly textured background


@pytest.fixture
def disc_project(tmp_path: Path) -> Path:
    folder = tmp_path / "discs"
    folder.mkdir()
    yy, xx = np.mgrid[0:H, 0:W]
    rng = np.random.default_rng(0)
    img = np.full((H, W, 3), 215.0) + rng.normal(0, 4, (H, W, 3))
    cx, cy, r = DISC
    img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = (40, 70, 140)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / "disc.png")
    with Project.open(folder) as store:
        store.add_class("cell")
    return folder


def preview(app: Driver) -> list[list[list[float]]] | None:
    result: list[list[list[float]]] | None = app.js("window.fieldmark.canvas.segmentPreview")
    return result


def wait_mask(app: Driver) -> None:
    app.wait_for("!window.fieldmark.state.ai.segment.busy && window.fieldmark.canvas.segmentPreview",
                 timeout=60, what="the mask preview")
    app.settle()


def shift_click(app: Driver, x: float, y: float) -> None:
    p: QPoint = app.client_of(x, y)
    app.mouse_move_client(p)
    app.mouse_down_client(p, mods=Qt.KeyboardModifier.ShiftModifier)
    app.mouse_up_client(p, mods=Qt.KeyboardModifier.ShiftModifier)


def bbox(shape: dict) -> list[float]:
    g = shape["geometry"]
    if shape["kind"] == "mask":
        return [float(v) for v in g["bbox"]]
    pts = np.array(g if isinstance(g[0][0], (int, float)) else [p for ring in g for p in ring], dtype=float)
    return [pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()]


def test_a_click_gives_a_live_mask_that_enter_stores(ai_launcher: Launcher, disc_project: Path) -> None:
    app = ai_launcher(disc_project)
    image_id = app.current_id()
    (cls,) = app.api.require_project().classes()
    app.key(Qt.Key.Key_S)
    app.settle()
    assert app.js("window.fieldmark.state.tool") == "segment"
    assert app.js("window.fieldmark.state.ai.segment.mode") == "model"

    app.click(DISC[0], DISC[1])
    wait_mask(app)
    rings = preview(app)
    assert rings and all(len(r) >= 3 for r in rings)
    assert app.js("window.fieldmark.canvas.segmentPrompt.points.length") == 1
    assert app.store_shapes(image_id) == [], "a preview is not stored"

    app.key(Qt.Key.Key_Return)
    app.settle()
    (shape,) = app.api.require_project().shapes(image_id)
    assert shape["kind"] in ("polygon", "mask") and shape["status"] == "accepted"
    assert shape["source"] == SEGMENTER and shape["class_id"] == cls["id"]
    clicks = json.loads(shape["prompt"])["points"]
    assert len(clicks) == 1 and clicks[0][2] == 1
    assert abs(clicks[0][0] - DISC[0]) <= 1 and abs(clicks[0][1] - DISC[1]) <= 1
    assert app.page_shapes() == app.store_shapes(image_id) and app.drawn_count() == 1
    assert app.js("window.fieldmark.canvas.segmentPrompt") is None, "Enter starts the next object afresh"
    app.key(Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # one undo step
    app.settle()
    assert app.store_shapes(image_id) == []


def test_shift_click_backspace_and_esc_edit_the_clicks(ai_launcher: Launcher, disc_project: Path) -> None:
    app = ai_launcher(disc_project)
    image_id = app.current_id()
    app.key(Qt.Key.Key_S)
    app.click(DISC[0], DISC[1])
    wait_mask(app)
    shift_click(app, 30, 30)
    app.settle()
    wait_mask(app)
    labels = [p[2] for p in app.js("window.fieldmark.canvas.segmentPrompt.points")]
    assert labels == [1, 0], "Shift+click is a negative point"

    app.key(Qt.Key.Key_Backspace)
    app.settle()
    wait_mask(app)
    assert [p[2] for p in app.js("window.fieldmark.canvas.segmentPrompt.points")] == [1]
    assert app.store_shapes(image_id) == [], "Backspace with clicks deletes no shape"

    app.key(Qt.Key.Key_Escape)
    app.settle()
    assert app.js("window.fieldmark.canvas.segmentPrompt") is None and preview(app) is None
    app.key(Qt.Key.Key_Return)  # nothing to keep now
    app.settle()
    assert app.store_shapes(image_id) == []


def test_smart_select_without_a_model_gives_a_polygon(ai_launcher: Launcher, disc_project: Path) -> None:
    app = ai_launcher(disc_project, segmenter=False)
    image_id = app.current_id()
    app.click_element("#tab-assist")
    app.key(Qt.Key.Key_S)
    app.settle()
    assert app.js("window.fieldmark.state.ai.segment.mode") == "smart"
    assert "smart select" in app.js("document.querySelector('.segment-body').textContent")

    app.click(DISC[0], DISC[1])
    wait_mask(app)
    app.key(Qt.Key.Key_Return)
    app.settle()
    (shape,) = app.api.require_project().shapes(image_id)
    assert shape["source"] == SMART and shape["status"] == "accepted" and shape["score"] is None
    cx, cy, r = DISC
    assert np.allclose(bbox(shape), [cx - r, cy - r, cx + r, cy + r], atol=4), bbox(shape)


def test_segment_boxes_turns_a_box_into_a_mask_shape(ai_launcher: Launcher, disc_project: Path) -> None:
    app = ai_launcher(disc_project)
    image_id = app.current_id()
    cx, cy, r = DISC
    app.key(Qt.Key.Key_B)
    app.drag([(cx - r - 4, cy - r - 4), (cx + r + 4, cy + r + 4)])
    app.settle()
    (box,) = app.store_shapes(image_id)
    app.click_element("#tab-assist")
    app.settle()
    app.click_text(".segment-body .btn", "This image")
    app.wait_for("!window.fieldmark.state.ai.busy.boxes", timeout=60, what="segmenting the boxes")
    app.settle()
    (shape,) = app.api.require_project().shapes(image_id)
    assert shape["id"] == box["id"] and shape["kind"] in ("polygon", "mask")
    assert shape["source"] == SEGMENTER and shape["class_id"] == box["class_id"]
    assert app.page_shapes() == app.store_shapes(image_id)


def test_segment_boxes_of_all_images_is_a_run(ai_launcher: Launcher, tmp_path: Path) -> None:
    folder = tmp_path / "boxes"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((60, 80, 3), 40 * i + 60, np.uint8)).save(folder / f"im{i}.png")
    app = ai_launcher(folder)
    project = app.api.require_project()
    boxes = {im["id"]: project.add_shape(im["id"], "box", [10.0, 10.0, 50.0, 40.0])["id"] for im in project.images()}
    app.click_element("#tab-assist")
    app.settle()
    app.click_text(".segment-body .btn", "All images")
    app.wait_for("window.fieldmark.state.ai.run === null && window.fieldmark.state.ai.lastRun !== null",
                 timeout=120, what="the run to end")
    app.settle()
    (run,) = project.runs()
    assert run["kind"] == "segment_boxes" and run["state"] == "done" and run["done"] == 3
    for image_id, box_id in boxes.items():
        (shape,) = project.shapes(image_id)
        assert shape["id"] == box_id and shape["kind"] in ("polygon", "mask") and shape["source"] == SEGMENTER
    assert app.page_shapes() == app.store_shapes(app.current_id())
