"""Drawing with the mouse: boxes, polygons and points end up in the page and in the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from backend.store import Project
from tests.e2e.harness import Driver, approx_geometry, close_checked

pytestmark = pytest.mark.e2e

TOL = 1.0  # image px: a widget pixel is < 1 image px at the fitted zoom of these images


def test_box_by_drag_is_stored_with_its_geometry(app: Driver, project: Path) -> None:
    image_id = app.current_id()
    app.key(Qt.Key.Key_B)
    app.drag([(40, 30), (120, 90), (200, 150)])
    app.settle()

    page = app.page_shapes()
    assert len(page) == 1 and page[0]["kind"] == "box"
    assert approx_geometry(page[0]["geometry"], [40, 30, 200, 150], TOL), page[0]["geometry"]
    assert app.drawn_count() == 1
    assert app.store_shapes(image_id) == page

    close_checked(app)
    with Project.open(project) as store:
        (shape,) = store.shapes(image_id)
    assert shape["kind"] == "box" and shape["source"] == "manual" and shape["status"] == "accepted"
    assert approx_geometry(shape["geometry"], [40, 30, 200, 150], TOL)


def test_dragging_up_and_left_draws_the_same_box(app: Driver) -> None:
    app.key(Qt.Key.Key_B)
    app.drag([(250, 200), (60, 20)])
    app.settle()
    (shape,) = app.store_shapes(app.current_id())
    assert approx_geometry(shape["geometry"], [60, 20, 250, 200], TOL), shape["geometry"]


def test_a_click_with_the_box_tool_draws_nothing(app: Driver) -> None:
    app.key(Qt.Key.Key_B)
    app.click(100, 100)
    app.settle()
    assert app.page_shapes() == [] and app.store_shapes(app.current_id()) == []


def test_polygon_finished_with_enter(app: Driver) -> None:
    corners = [(30, 30), (200, 40), (180, 200), (50, 180)]
    app.key(Qt.Key.Key_P)
    for x, y in corners:
        app.click(x, y)
    app.settle()
    assert app.js("window.fieldmark.canvas.isDrawing") is True
    assert app.store_shapes(app.current_id()) == [], "an unfinished polygon must not be saved"
    app.key(Qt.Key.Key_Return)
    app.settle()

    (shape,) = app.store_shapes(app.current_id())
    assert shape["kind"] == "polygon"
    assert approx_geometry(shape["geometry"], [list(c) for c in corners], TOL), shape["geometry"]
    assert app.page_shapes() == [shape] and app.drawn_count() == 1
    assert app.js("window.fieldmark.canvas.isDrawing") is False


def test_polygon_closed_by_clicking_its_first_vertex(app: Driver) -> None:
    corners = [(40, 40), (220, 60), (120, 200)]
    app.key(Qt.Key.Key_P)
    for x, y in corners:
        app.click(x, y)
    app.click(41, 41)  # within the snap distance of the first vertex: closes, adds no 4th point
    app.settle()
    (shape,) = app.store_shapes(app.current_id())
    assert approx_geometry(shape["geometry"], [list(c) for c in corners], TOL), shape["geometry"]


def test_polygon_closed_by_double_click(app: Driver) -> None:
    corners = [(20, 200), (150, 20), (290, 210), (150, 120)]
    app.key(Qt.Key.Key_P)
    for x, y in corners:
        app.click(x, y)
    app.click(*corners[-1])  # the second click of a double-click on the last point
    app.settle()
    (shape,) = app.store_shapes(app.current_id())
    assert approx_geometry(shape["geometry"], [list(c) for c in corners], TOL), shape["geometry"]


def test_escape_abandons_a_polygon_and_backspace_removes_its_last_point(app: Driver) -> None:
    app.key(Qt.Key.Key_P)
    for x, y in [(20, 20), (100, 20), (100, 100), (20, 150)]:
        app.click(x, y)
    app.key(Qt.Key.Key_Backspace)  # drops (20, 150)
    app.key(Qt.Key.Key_Return)
    app.settle()
    (shape,) = app.store_shapes(app.current_id())
    assert approx_geometry(shape["geometry"], [[20, 20], [100, 20], [100, 100]], TOL)

    for x, y in [(150, 150), (250, 150), (250, 220)]:
        app.click(x, y)
    app.key(Qt.Key.Key_Escape)
    app.key(Qt.Key.Key_Return)  # nothing left to finish
    app.settle()
    assert len(app.store_shapes(app.current_id())) == 1
    assert app.js("window.fieldmark.canvas.isDrawing") is False


def test_point_by_click(app: Driver) -> None:
    app.key(Qt.Key.Key_O)
    app.click(123, 45)
    app.settle()
    (shape,) = app.store_shapes(app.current_id())
    assert shape["kind"] == "point"
    assert approx_geometry(shape["geometry"], [123, 45], TOL), shape["geometry"]
    assert app.page_shapes() == [shape] and app.drawn_count() == 1


def test_new_shapes_get_the_active_class(app: Driver) -> None:
    moth = app.call("classes.add", {"name": "moth"})["ok"]
    beetle = app.call("classes.add", {"name": "beetle"})["ok"]
    app.run("await window.fieldmark.actions.refreshClasses(); return true;")
    app.key(Qt.Key.Key_2)  # nothing selected: makes "beetle" the active class
    app.key(Qt.Key.Key_B)
    app.drag([(10, 10), (60, 60)])
    app.key(Qt.Key.Key_1)  # the new box is not selected by drawing, so this only switches class
    app.drag([(100, 100), (160, 160)])
    app.settle()
    classes = [s["class_id"] for s in app.store_shapes(app.current_id())]
    assert classes == [beetle["id"], moth["id"]]


def test_drawing_after_zooming_and_panning_maps_to_the_same_image_pixels(app: Driver) -> None:
    fitted = app.js("window.fieldmark.canvas.view")
    for _ in range(3):
        app.key(Qt.Key.Key_Plus)  # zoom in about the centre
    app.drag([(200, 150), (230, 170)], button="right")  # right-drag pans and draws nothing
    app.settle()
    view = app.js("window.fieldmark.canvas.view")
    assert view["scale"] > fitted["scale"] * 1.9 and (view["tx"], view["ty"]) != (fitted["tx"], fitted["ty"])
    assert app.store_shapes(app.current_id()) == []
    app.key(Qt.Key.Key_B)
    app.drag([(150, 100), (190, 140)])
    app.settle()
    (shape,) = app.store_shapes(app.current_id())
    assert approx_geometry(shape["geometry"], [150, 100, 190, 140], 0.5), shape["geometry"]
    app.key(Qt.Key.Key_F)  # fit again: the box stays where it was drawn
    app.settle()
    assert app.js("window.fieldmark.canvas.view") == fitted
    assert app.page_shapes() == [shape]
