"""Undo of class prompts and thresholds: a dragged slider is one step, not one per value.

Time is a fake clock (``undo.clock``) moved on by each test, so "a pause longer than the merge
window" needs no sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.store import Project, undo
from backend.store.proposals import PROMPTS_MERGE_S


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(undo, "clock", fake)
    return fake


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    p = Project.open(tmp_path)
    p.sync_images([("a.jpg", 1, 1.0)])
    yield p
    p.close()


def prompts_of(p: Project, class_id: int) -> tuple[list[str], float]:
    record = next(c for c in p.classes() if c["id"] == class_id)
    return record["prompts"], record["threshold"]


def drag(p: Project, clock: Clock, class_id: int, phrases: list[str],
         values: list[float], step_s: float) -> None:
    """A slider drag: one set_prompts per value, ``step_s`` apart."""
    for value in values:
        clock.advance(step_s)
        p.set_class_prompts(class_id, phrases, value)


def undo_descriptions(p: Project) -> list[str]:
    """The Edit menu's Undo entries from newest to oldest (undoes everything)."""
    out = []
    while (done := p.undo()) is not None:
        out.append(done["description"])
    return out


def test_a_drag_is_one_undo_step_back_to_the_value_before_it(project: Project,
                                                             clock: Clock) -> None:
    moth = project.add_class("moth")["id"]
    project.set_class_prompts(moth, ["a moth"], 0.2)
    clock.advance(10 * PROMPTS_MERGE_S)
    values = [0.21 + 0.03 * i for i in range(10)]
    # Ten moves, each well inside the window; the whole drag lasts longer than one window.
    drag(project, clock, moth, ["a moth"], values, PROMPTS_MERGE_S / 3)

    assert prompts_of(project, moth) == (["a moth"], pytest.approx(values[-1]))
    assert project.undo_state()["undo"] == "Set prompts of class 'moth'"
    assert project.undo() is not None
    assert prompts_of(project, moth) == (["a moth"], 0.2), "back to before the drag"
    assert project.redo() is not None
    assert prompts_of(project, moth) == (["a moth"], pytest.approx(values[-1]))
    assert project.redo() is None
    assert undo_descriptions(project) == ["Set prompts of class 'moth'",
                                          "Set prompts of class 'moth'", "Add class 'moth'"]


def test_typing_phrases_then_dragging_restores_both(project: Project, clock: Clock) -> None:
    moth = project.add_class("moth")["id"]
    clock.advance(10 * PROMPTS_MERGE_S)
    drag(project, clock, moth, ["a moth"], [0.1], 0.1)  # only the phrases change
    drag(project, clock, moth, ["a moth", "a night moth"], [0.1], 0.1)
    drag(project, clock, moth, ["a moth", "a night moth"], [0.3, 0.5], 0.1)  # then the slider

    project.undo()
    assert prompts_of(project, moth) == ([], 0.1)
    assert project.undo_state()["undo"] == "Add class 'moth'"
    project.redo()
    assert prompts_of(project, moth) == (["a moth", "a night moth"], 0.5)


def test_another_edit_between_makes_two_steps(project: Project, clock: Clock) -> None:
    image = project.images()[0]["id"]
    moth = project.add_class("moth")["id"]
    clock.advance(10 * PROMPTS_MERGE_S)
    drag(project, clock, moth, ["a moth"], [0.3, 0.4], 0.1)
    clock.advance(0.1)
    shape = project.add_shape(image, "box", [0, 0, 5, 5], moth)
    drag(project, clock, moth, ["a moth"], [0.5, 0.6], 0.1)

    project.undo()
    assert prompts_of(project, moth) == (["a moth"], 0.4)
    assert [s["id"] for s in project.shapes(image)] == [shape["id"]]
    project.undo()
    assert project.shapes(image) == []
    project.undo()
    assert prompts_of(project, moth) == ([], 0.1)


def test_another_class_between_makes_separate_steps(project: Project, clock: Clock) -> None:
    moth, bee = project.add_class("moth")["id"], project.add_class("bee")["id"]
    clock.advance(10 * PROMPTS_MERGE_S)
    drag(project, clock, moth, ["a moth"], [0.3], 0.1)
    drag(project, clock, bee, ["a bee"], [0.6], 0.1)
    drag(project, clock, moth, ["a moth"], [0.4], 0.1)

    project.undo()
    assert (prompts_of(project, moth), prompts_of(project, bee)) == \
        ((["a moth"], 0.3), (["a bee"], 0.6))
    project.undo()
    assert (prompts_of(project, moth), prompts_of(project, bee)) == \
        ((["a moth"], 0.3), ([], 0.1))
    project.undo()
    assert prompts_of(project, moth) == ([], 0.1)
    assert project.undo_state()["undo"] == "Add class 'bee'"


def test_a_pause_longer_than_the_window_starts_a_new_step(project: Project,
                                                          clock: Clock) -> None:
    moth = project.add_class("moth")["id"]
    clock.advance(10 * PROMPTS_MERGE_S)
    drag(project, clock, moth, ["a moth"], [0.3, 0.35], 0.1)
    drag(project, clock, moth, ["a moth"], [0.5, 0.55], PROMPTS_MERGE_S * 1.5)

    project.undo()
    assert prompts_of(project, moth) == (["a moth"], 0.5), "only the last move is its own step"
    project.undo()
    assert prompts_of(project, moth) == (["a moth"], 0.35)
    project.undo()
    assert prompts_of(project, moth) == ([], 0.1)
    for expected in (0.35, 0.5, 0.55):
        project.redo()
        assert prompts_of(project, moth) == (["a moth"], expected)


def test_a_drag_after_an_undo_does_not_fold_into_the_undone_step(project: Project,
                                                                 clock: Clock) -> None:
    moth = project.add_class("moth")["id"]
    clock.advance(10 * PROMPTS_MERGE_S)
    drag(project, clock, moth, ["a moth"], [0.3, 0.4], 0.1)
    project.undo()
    drag(project, clock, moth, ["a moth"], [0.7], 0.1)

    assert project.undo_state()["can_redo"] is False
    project.undo()
    assert prompts_of(project, moth) == ([], 0.1)
    assert project.undo_state()["undo"] == "Add class 'moth'"


def test_a_drag_back_to_the_start_leaves_nothing_to_undo(project: Project,
                                                         clock: Clock) -> None:
    moth = project.add_class("moth")["id"]
    project.set_class_prompts(moth, ["a moth"], 0.2)
    clock.advance(10 * PROMPTS_MERGE_S)
    drag(project, clock, moth, ["a moth"], [0.3, 0.4, 0.3, 0.2], 0.1)

    assert prompts_of(project, moth) == (["a moth"], 0.2)
    project.undo()
    assert prompts_of(project, moth) == ([], 0.1), "the undo is the edit before the drag"


def test_the_merged_step_survives_a_reopen(tmp_path: Path, clock: Clock) -> None:
    with Project.open(tmp_path) as p:
        moth = p.add_class("moth")["id"]
        clock.advance(10 * PROMPTS_MERGE_S)
        drag(p, clock, moth, ["a moth"], [0.15, 0.25, 0.35, 0.45], 0.1)
    with Project.open(tmp_path) as p:
        state: dict[str, Any] = p.undo_state()
        assert state["undo"] == "Set prompts of class 'moth'"
        p.undo()
        assert prompts_of(p, moth) == ([], 0.1)
        p.redo()
        assert prompts_of(p, moth) == (["a moth"], 0.45)
        p.undo()
        assert p.undo_state()["undo"] == "Add class 'moth'"
