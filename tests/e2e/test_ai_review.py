"""Reviewing proposals in the real page: Tab walks them, Enter accepts, Esc rejects (and the
store agrees, undo included), Enter while drawing finishes the polygon instead, "accept all",
the project-wide queue (lowest score first) and the provenance shown for a selection.

Proposals are written straight into the store, as a detector's run would, so these tests need
no model.
"""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt

from tests.e2e.harness import Driver

pytestmark = pytest.mark.e2e

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
SOURCE = "owlv2-review@1.0"
# (box, score) on the first image (320 x 240): apart from each other, so none is suppressed.
BOXES = [([20.0, 20.0, 90.0, 80.0], 0.91), ([120.0, 30.0, 200.0, 100.0], 0.62),
         ([220.0, 140.0, 300.0, 220.0], 0.35)]


def seed(app: Driver, image_id: int, boxes: list[tuple[list[float], float]], prompt: str = "moth") -> list[int]:
    """Write proposals as a model would, then show them (the page re-reads the image)."""
    project = app.api.require_project()
    classes = project.classes() or [project.add_class("moth")]
    added = project.replace_proposals(image_id, SOURCE, [
        {"kind": "box", "geometry": box, "class_id": classes[0]["id"], "score": score, "prompt": prompt}
        for box, score in boxes])
    app.run(f"""await window.fieldmark.actions.refreshClasses();
        await window.fieldmark.actions.selectImage({app.current_id()});
        await window.fieldmark.ai.review.loadQueue(); return true;""")
    app.settle()
    return [s["id"] for s in added]


def statuses(app: Driver, ids: list[int]) -> list[str]:
    project = app.api.require_project()
    return [project.shape(i)["status"] for i in ids]


def selected(app: Driver) -> Any:
    return app.js("window.fieldmark.state.selectedId")


def test_tab_enter_esc_review_the_proposals_and_undo_reverts(app: Driver) -> None:
    high, mid, low = seed(app, app.current_id(), BOXES)
    assert app.drawn_count() == 3

    app.key(Qt.Key.Key_Tab)
    app.settle()
    assert selected(app) == high, "Tab starts at the highest score"
    card = app.js("document.querySelector('.selection-card').textContent")
    assert "Proposal" in card and SOURCE in card and "0.910" in card and "moth" in card

    app.key(Qt.Key.Key_Return)
    app.settle()
    assert statuses(app, [high, mid, low]) == ["accepted", "pending", "pending"]
    assert selected(app) == mid, "after Enter the next proposal is selected"
    assert app.js(f"window.fieldmark.state.shapes.find((s) => s.id === {high}).status") == "accepted"

    app.key(Qt.Key.Key_Escape)
    app.settle()
    assert statuses(app, [high, mid, low]) == ["accepted", "rejected", "pending"]
    assert selected(app) == low
    assert app.drawn_count() == 2, "a rejected proposal is not drawn"
    assert [e["id"] for e in app.js("window.fieldmark.state.ai.queue")] == [low]

    app.key(Qt.Key.Key_Tab, SHIFT)  # one proposal left: Shift+Tab stays on it
    app.settle()
    assert selected(app) == low

    app.key(Qt.Key.Key_Z, CTRL)
    app.settle()
    assert statuses(app, [high, mid, low]) == ["accepted", "pending", "pending"], "undo brings the rejected one back"
    assert app.drawn_count() == 3
    app.key(Qt.Key.Key_Z, CTRL)
    app.settle()
    assert statuses(app, [high, mid, low]) == ["pending", "pending", "pending"]
    assert sorted(e["id"] for e in app.js("window.fieldmark.state.ai.queue")) == sorted([high, mid, low])


def test_enter_finishes_a_polygon_before_it_accepts_a_proposal(app: Driver) -> None:
    image_id = app.current_id()
    high, _, _ = seed(app, image_id, BOXES)
    app.key(Qt.Key.Key_Tab)
    app.settle()
    assert selected(app) == high

    app.key(Qt.Key.Key_P)
    for x, y in [(150, 150), (200, 150), (180, 200)]:
        app.click(x, y)
    app.key(Qt.Key.Key_Return)
    app.settle()
    polygons = [s for s in app.store_shapes(image_id) if s["kind"] == "polygon"]
    assert len(polygons) == 1, "Enter finished the polygon"
    assert statuses(app, [high]) == ["pending"], "the Enter that finished the polygon accepted nothing"

    app.key(Qt.Key.Key_P)  # a polygon being drawn, then Esc: the drawing goes, the proposal stays
    app.click(30, 200)
    app.click(60, 210)
    app.key(Qt.Key.Key_Escape)
    app.settle()
    assert app.js("window.fieldmark.canvas.isDrawing") is False
    assert statuses(app, [high]) == ["pending"] and selected(app) == high

    app.key(Qt.Key.Key_Return)  # nothing being drawn now: Enter is for the proposal
    app.settle()
    assert statuses(app, [high]) == ["accepted"]


def test_accept_all_is_one_step_and_the_queue_spans_the_project(app: Driver) -> None:
    first = app.current_id()
    ids_first = seed(app, first, BOXES)
    second = app.image_id("b_second.png")
    ids_second = seed(app, second, [([10.0, 10.0, 60.0, 60.0], 0.2), ([100.0, 100.0, 180.0, 180.0], 0.75)])

    app.click_element("#tab-review")
    app.settle()
    rows = app.js("""[...document.querySelectorAll('.queue-item')].map((r) =>
        [Number(r.dataset.id), r.querySelector('.queue-image').textContent, r.querySelector('.queue-score').textContent])""")
    scores = {**dict(zip(ids_first, [0.91, 0.62, 0.35], strict=True)), **dict(zip(ids_second, [0.2, 0.75], strict=True))}
    assert [r[0] for r in rows] == sorted(scores, key=scores.get), "lowest score first"
    assert rows[0][1] == "b_second.png" and rows[0][2] == "0.20"
    assert app.js("document.querySelector('#tab-review .tab-count').textContent") == "5"

    # The lowest entry lives on the second image: a click there shows it with the proposal selected.
    app.click_element(f'.queue-item[data-id="{ids_second[0]}"]')
    app.settle()
    assert app.current_id() == second and selected(app) == ids_second[0]

    app.click_text(".review-here .btn", "Accept all")
    app.settle()
    assert statuses(app, ids_second) == ["accepted", "accepted"]
    assert statuses(app, ids_first) == ["pending"] * 3, "accept all only touches this image"
    assert sorted(e["id"] for e in app.js("window.fieldmark.state.ai.queue")) == sorted(ids_first)
    assert app.js("document.querySelector('.review-count').textContent") == "No proposals on this image"

    app.key(Qt.Key.Key_Z, CTRL)
    app.settle()
    assert statuses(app, ids_second) == ["pending", "pending"], "one undo step undoes accept all"

    app.key(Qt.Key.Key_Return, CTRL)  # the shortcut does the same
    app.settle()
    assert statuses(app, ids_second) == ["accepted", "accepted"]


def test_provenance_of_manual_and_model_shapes(app: Driver) -> None:
    image_id = app.current_id()
    (proposal,) = seed(app, image_id, [([30.0, 30.0, 100.0, 90.0], 0.5)], prompt="pale <b>moth</b>")
    app.key(Qt.Key.Key_B)
    app.drag([(150, 120), (250, 200)])
    app.settle()
    app.key(Qt.Key.Key_V)
    app.click(200, 160)
    app.settle()
    card = app.js("document.querySelector('.selection-card').textContent")
    assert "Drawn by hand" in card and "Proposal" not in card and "Score" not in card

    app.click(65, 60)
    app.settle()
    assert selected(app) == proposal
    rows = app.js("[...document.querySelectorAll('.prov-row')].map((r) => r.textContent)")
    assert rows == [f"Source{SOURCE}", "Promptpale <b>moth</b>", "Score0.500"]
    assert app.js("document.querySelector('.selection-card b')") is None, "a prompt is text, never markup"
