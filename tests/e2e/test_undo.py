"""Undo and redo from the keyboard, across every kind of edit, checked in the page and the store.

Each edit is made with real input, then undone (Ctrl+Z) and redone (Ctrl+Shift+Z or Ctrl+Y);
after every step the page's shapes and classes must equal the store's, the canvas must hold
as many shapes, and the whole must equal the state before / after the edit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import Qt

from tests.e2e.harness import Driver, approx_geometry

pytestmark = pytest.mark.e2e

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
TOL = 1.0
BOX = [40.0, 40.0, 140.0, 120.0]
POLYGON = [[180.0, 40.0], [280.0, 50.0], [260.0, 180.0], [190.0, 160.0]]


def snapshot(app: Driver) -> dict[str, Any]:
    """What the store holds for the current image and the classes; checks that the page agrees."""
    image_id = app.current_id()
    store = app.store_shapes(image_id)
    assert app.page_shapes() == store, "the page shows other shapes than the store holds"
    assert app.drawn_count() == len(store), "the canvas does not draw every shape"
    classes = [(c["id"], c["name"], c["color"], c["count"]) for c in app.api.require_project().classes()]
    page_classes = app.js("window.fieldmark.state.classes.map((c) => [c.id, c.name, c.color, c.count])")
    assert [tuple(c) for c in page_classes] == classes, "the page lists other classes than the store"
    names = app.js("[...document.querySelectorAll('#classes .class-name')].map((e) => e.textContent)")
    assert names == [c[1] for c in classes], "the classes panel shows other names"
    return {"image": image_id, "shapes": store, "classes": classes}


def redo(app: Driver, how: str) -> None:
    if how == "ctrl+shift+z":
        app.key(Qt.Key.Key_Z, CTRL | SHIFT)
    else:
        app.key(Qt.Key.Key_Y, CTRL)


def round_trip(app: Driver, edit: Callable[[], None], how: str = "ctrl+shift+z") -> dict[str, Any]:
    """Make ``edit``, undo it, redo it; returns the state after the edit."""
    before = snapshot(app)
    edit()
    app.settle()
    after = snapshot(app)
    assert after != before, "the edit changed nothing"
    assert app.js("window.fieldmark.state.edit.can_undo") is True
    app.key(Qt.Key.Key_Z, CTRL)
    app.settle()
    assert snapshot(app) == before, "undo did not restore the state before the edit"
    assert app.js("window.fieldmark.state.edit.can_redo") is True
    redo(app, how)
    app.settle()
    assert snapshot(app) == after, "redo did not bring the edit back"
    return after


def add_shapes(app: Driver, *shapes: tuple[str, Any]) -> list[dict[str, Any]]:
    """Shapes made through the bridge (set-up, not under test), then shown by the page."""
    image_id = app.current_id()
    made = [app.call("shapes.add", {"image_id": image_id, "kind": k, "geometry": g})["ok"] for k, g in shapes]
    app.run("await window.fieldmark.actions.refreshShapes(); await window.fieldmark.actions.refreshEdit(); return 1;")
    return made


def only(state: dict[str, Any], kind: str) -> dict[str, Any]:
    (shape,) = [s for s in state["shapes"] if s["kind"] == kind]
    return shape


def test_undo_redo_of_drawing_a_box(app: Driver) -> None:
    app.key(Qt.Key.Key_B)
    after = round_trip(app, lambda: app.drag([(30, 30), (90, 100)]))
    assert approx_geometry(only(after, "box")["geometry"], [30, 30, 90, 100], TOL)
    after = round_trip(app, lambda: app.drag([(150, 20), (300, 200)]), how="ctrl+y")
    assert len(after["shapes"]) == 2


def test_undo_redo_of_moving_resizing_and_reshaping(app: Driver) -> None:
    box, polygon = add_shapes(app, ("box", BOX), ("polygon", POLYGON))
    app.key(Qt.Key.Key_V)

    # Move: press inside the box and drag it by (+30, +20).
    after = round_trip(app, lambda: app.drag([(90, 80), (105, 90), (120, 100)]))
    assert approx_geometry(only(after, "box")["geometry"], [70, 60, 170, 140], TOL)
    assert app.js("window.fieldmark.canvas.selectedId") == box["id"], "the moved box stays selected"

    # Resize: drag the bottom-right handle of the selected box.
    after = round_trip(app, lambda: app.drag([(170, 140), (195, 175)]), how="ctrl+y")
    assert approx_geometry(only(after, "box")["geometry"], [70, 60, 195, 175], TOL)

    # Reshape: select the polygon with a click, then drag its first vertex.
    app.click(240, 110)
    app.settle()
    assert app.js("window.fieldmark.canvas.selectedId") == polygon["id"]
    after = round_trip(app, lambda: app.drag([(180, 40), (170, 20)]))
    assert approx_geometry(only(after, "polygon")["geometry"], [[170, 20], *POLYGON[1:]], TOL)
    assert approx_geometry(only(after, "box")["geometry"], [70, 60, 195, 175], TOL), "the box was untouched"


def test_undo_redo_of_delete_and_class_key(app: Driver) -> None:
    for name in ("moth", "beetle"):
        app.call("classes.add", {"name": name})
    app.run("await window.fieldmark.actions.refreshClasses(); return 1;")
    (box,) = add_shapes(app, ("box", BOX))
    app.key(Qt.Key.Key_V)
    app.click(90, 80)
    app.settle()
    assert app.js("window.fieldmark.state.selectedId") == box["id"]

    after = round_trip(app, lambda: app.key(Qt.Key.Key_Delete))
    assert after["shapes"] == []

    app.key(Qt.Key.Key_Z, CTRL)  # bring it back (with its id) to give it a class
    app.settle()
    assert [s["id"] for s in snapshot(app)["shapes"]] == [box["id"]]
    app.click(90, 80)
    app.settle()
    assert app.js("window.fieldmark.state.selectedId") == box["id"]
    beetle = app.api.require_project().classes()[1]
    after = round_trip(app, lambda: app.key(Qt.Key.Key_2), how="ctrl+y")
    assert only(after, "box")["class_id"] == beetle["id"]
    assert [c[3] for c in after["classes"]] == [0, 1], "class counts follow the change"


def _class_row(app: Driver, class_id: int) -> str:
    return f'#classes .class-row[data-id="{class_id}"]'


def test_undo_redo_of_class_rename_and_delete(app: Driver) -> None:
    moth = app.call("classes.add", {"name": "moth"})["ok"]
    app.run("await window.fieldmark.actions.refreshClasses(); return 1;")
    app.key(Qt.Key.Key_B)
    app.drag([(30, 30), (120, 120)])  # drawn with the active class, moth
    app.settle()

    def rename() -> None:
        app.hover_element(_class_row(app, moth["id"]))
        app.click_element(f'{_class_row(app, moth["id"])} button[aria-label^="Rename"]')
        app.settle()
        assert app.js("document.activeElement && document.activeElement.value") == "moth"
        app.type_text("night moth")  # the editor selected the old name: typing replaces it
        app.key(Qt.Key.Key_Return)

    after = round_trip(app, rename)
    assert [c[1] for c in after["classes"]] == ["night moth"]

    def delete() -> None:
        app.hover_element(_class_row(app, moth["id"]))
        app.click_element(f'{_class_row(app, moth["id"])} button[aria-label^="Delete"]')
        app.settle()
        text = app.js("document.querySelector('.dialog .dialog-text').textContent")
        assert "night moth" in text and "1 shape stays" in text
        app.click_element(".dialog .btn-danger")

    after = round_trip(app, delete, how="ctrl+y")
    assert after["classes"] == []
    assert only(after, "box")["class_id"] is None, "the shape stays, without a class"


def test_ctrl_z_while_drawing_a_polygon_removes_its_last_point_only(app: Driver) -> None:
    (box,) = add_shapes(app, ("box", BOX))
    app.key(Qt.Key.Key_P)
    for x, y in [(200, 20), (300, 30), (280, 200), (210, 180)]:
        app.click(x, y)
    app.key(Qt.Key.Key_Z, CTRL)  # removes (210, 180), not the box
    app.key(Qt.Key.Key_Return)
    app.settle()
    shapes = app.store_shapes(app.current_id())
    assert [s["id"] for s in shapes if s["kind"] == "box"] == [box["id"]]
    (polygon,) = [s for s in shapes if s["kind"] == "polygon"]
    assert approx_geometry(polygon["geometry"], [[200, 20], [300, 30], [280, 200]], TOL)
