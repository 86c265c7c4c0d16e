"""Undo/redo of every edit kind, checked against full snapshots of what the user can see."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backend.errors import StoreError
from backend.store import Project, undo


def dump(p: Project) -> dict[str, Any]:
    """Everything a user can observe through the public interface."""
    images = p.images()
    return {"images": images, "classes": p.classes(),
            "shapes": {i["id"]: p.shapes(i["id"], ("accepted", "pending", "rejected"))
                       for i in images}}


@pytest.fixture
def project(tmp_path: Path):
    p = Project.open(tmp_path)
    p.sync_images([("a.jpg", 1, 1.0), ("b.jpg", 1, 1.0)])
    yield p
    p.close()


def _seed(p: Project) -> dict[str, int]:
    """Two classes, shapes on image a (one class each + one unassigned), then a clean history."""
    a, b = (i["id"] for i in p.images())
    moth, bee = p.add_class("moth"), p.add_class("bee")
    s1 = p.add_shape(a, "box", [0, 0, 10, 10], moth["id"])
    s2 = p.add_shape(a, "polygon", [[0, 0], [4, 0], [4, 4]], bee["id"], status="pending",
                     score=0.7, source="sam@1", prompt="click 2,2")
    p.add_shape(a, "point", [3, 3], moth["id"])
    with sqlite3.connect(p.db_path) as raw:  # start each case with an empty history
        raw.execute("DELETE FROM undo_log")
    return {"a": a, "b": b, "moth": moth["id"], "bee": bee["id"], "s1": s1["id"], "s2": s2["id"]}


EDITS: dict[str, tuple[Callable[[Project, dict[str, int]], Any], str, str | None]] = {
    # name: (edit, expected description, which image the step reports)
    "add_shape": (lambda p, k: p.add_shape(k["b"], "box", [1, 1, 2, 2], k["moth"]),
                  "Add box", "b"),
    "add_shapes": (lambda p, k: p.add_shapes(k["b"], [
        {"kind": "point", "geometry": [1, 1]},
        {"kind": "mask", "geometry": {"rle": {"counts": "x"}, "bbox": [0, 0, 1, 1]},
         "class_id": k["bee"], "status": "pending", "score": 0.4, "source": "sam@1"}]),
                   "Add 2 shapes", "b"),
    "move_shape": (lambda p, k: p.update_shape(k["s1"], geometry=[2, 2, 8, 8]), "Edit box", "a"),
    "reclass_shape": (lambda p, k: p.update_shape(k["s1"], class_id=k["bee"]),
                      "Change class of box", "a"),
    "unassign_shape": (lambda p, k: p.update_shape(k["s1"], class_id=None),
                       "Change class of box", "a"),
    "accept_proposal": (lambda p, k: p.update_shape(k["s2"], status="accepted"),
                        "Accept polygon", "a"),
    "reject_proposal": (lambda p, k: p.update_shape(k["s2"], status="rejected"),
                        "Reject polygon", "a"),
    "delete_shape": (lambda p, k: p.delete_shape(k["s2"]), "Delete polygon", "a"),
    "add_class": (lambda p, k: p.add_class("wasp", "#123456"), "Add class 'wasp'", None),
    "rename_class": (lambda p, k: p.rename_class(k["moth"], "Nachtfalter"),
                     "Rename class 'moth' to 'Nachtfalter'", None),
    "recolor_class": (lambda p, k: p.recolor_class(k["moth"], "#000000"),
                      "Change colour of class 'moth'", None),
    "delete_class": (lambda p, k: p.delete_class(k["moth"]), "Delete class 'moth'", None),
    "merge_classes": (lambda p, k: p.merge_classes(k["moth"], k["bee"]),
                      "Merge class 'moth' into 'bee'", None),
    "image_status": (lambda p, k: p.set_image_status(k["b"], "done"), "Mark 'b.jpg' done", "b"),
}


@pytest.mark.parametrize("name", list(EDITS))
def test_every_edit_kind_undoes_and_redoes_exactly(project: Project, name: str) -> None:
    keys = _seed(project)
    edit, description, image = EDITS[name]
    before = dump(project)
    edit(project, keys)
    after = dump(project)
    assert after != before
    assert project.undo_state() == {"can_undo": True, "can_redo": False,
                                    "undo": description, "redo": None}
    expected_step = {"image_id": keys[image] if image else None, "description": description}

    assert project.undo() == expected_step
    assert dump(project) == before
    assert project.undo_state() == {"can_undo": False, "can_redo": True,
                                    "undo": None, "redo": description}
    assert project.undo() is None

    assert project.redo() == expected_step
    assert dump(project) == after
    assert project.redo() is None
    assert project.undo() == expected_step
    assert dump(project) == before


def test_undo_of_class_delete_restores_id_and_links(project: Project) -> None:
    k = _seed(project)
    project.delete_class(k["moth"])
    project.add_class("new one")  # must not take the deleted id
    project.undo()
    project.undo()
    moth = next(c for c in project.classes() if c["name"] == "moth")
    assert moth["id"] == k["moth"] and moth["count"] == 2 and moth["key"] == "1"
    assert project.shape(k["s1"])["class_id"] == k["moth"]


def test_shape_edit_and_its_image_status_are_one_step(project: Project) -> None:
    a = project.images()[0]["id"]
    s = project.add_shape(a, "point", [1, 1])
    assert project.image(a)["status"] == "in_progress"
    project.set_image_status(a, "done")
    project.update_shape(s["id"], geometry=[2, 2])  # done stays done
    assert project.image(a)["status"] == "done"
    project.undo()
    project.undo()
    assert project.image(a)["status"] == "in_progress"
    project.undo()
    assert project.image(a)["status"] == "new" and project.shapes(a) == []


def test_no_op_edits_leave_no_step(project: Project) -> None:
    k = _seed(project)
    project.update_shape(k["s1"], geometry=[0, 0, 10, 10], class_id=k["moth"])
    project.update_shape(k["s1"])
    project.rename_class(k["moth"], "moth")
    project.set_image_status(k["b"], "new")
    project.add_shapes(k["a"], [])
    assert project.undo_state()["can_undo"] is False


def test_new_edit_clears_redo(project: Project) -> None:
    a = project.images()[0]["id"]
    for x in range(3):
        project.add_shape(a, "point", [x, x])
    project.undo()
    project.undo()
    assert project.undo_state()["can_redo"]
    project.add_class("x")
    assert project.undo_state() == {"can_undo": True, "can_redo": False,
                                    "undo": "Add class 'x'", "redo": None}
    assert project.redo() is None
    assert [s["geometry"] for s in project.shapes(a)] == [[0, 0]]


def test_history_is_capped(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(undo, "MAX_STEPS", 3)
    a = project.images()[0]["id"]
    for x in range(5):
        project.add_shape(a, "point", [x, x])
    undone = 0
    while project.undo() is not None:
        undone += 1
    assert undone == 3
    assert [s["geometry"] for s in project.shapes(a)] == [[0, 0], [1, 1]]


def test_edit_undo_cycles_do_not_push_old_steps_out(project: Project,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Each new edit after an undo drops the undone step, so the log holds two steps while the
    # step numbers keep growing: the cap counts steps, not numbers.
    monkeypatch.setattr(undo, "MAX_STEPS", 3)
    a = project.images()[0]["id"]
    project.add_class("leaf")
    for x in range(10):
        project.add_shape(a, "point", [x, x])
        project.undo()
    project.add_shape(a, "point", [9, 9])
    assert project.undo()["description"].startswith("Add")
    step = project.undo()
    assert step is not None and "leaf" in step["description"]
    assert project.classes() == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_interleavings_match_a_linear_history_model(tmp_path: Path, seed: int) -> None:
    """Reference model: a list of snapshots and a cursor; edits truncate what lies ahead."""
    rng = random.Random(seed)
    with Project.open(tmp_path) as p:
        p.sync_images([("a.jpg", 1, 1.0), ("b.jpg", 1, 1.0)])
        images = [i["id"] for i in p.images()]
        states, cursor = [dump(p)], 0

        def edit() -> bool:
            shapes = [s for i in images for s in p.shapes(i, ("accepted", "pending", "rejected"))]
            classes = [c["id"] for c in p.classes()]
            choice = rng.randrange(9)
            if choice == 0 or not shapes:
                p.add_shape(rng.choice(images), "box", [rng.random() * 9, 0, 10, 10],
                            rng.choice([None, *classes]))
            elif choice == 1:
                p.update_shape(rng.choice(shapes)["id"], geometry=[0, 0, rng.random(), 1])
            elif choice == 2:
                p.update_shape(rng.choice(shapes)["id"],
                               status=rng.choice(["accepted", "pending", "rejected"]))
            elif choice == 3:
                p.delete_shape(rng.choice(shapes)["id"])
            elif choice == 4 or len(classes) < 2:
                p.add_class(f"c{rng.randrange(10**6)}")
            elif choice == 5:
                p.update_shape(rng.choice(shapes)["id"], class_id=rng.choice(classes))
            elif choice == 6:
                p.delete_class(rng.choice(classes))
            elif choice == 7:
                src, dst = rng.sample(classes, 2)
                p.merge_classes(src, dst)
            else:
                p.set_image_status(rng.choice(images), rng.choice(["done", "skipped", "new"]))
            return True

        for _ in range(60):
            op = rng.choice(["edit", "edit", "undo", "redo"])
            if op == "edit":
                edit()
                now = dump(p)
                if now != states[cursor]:  # a no-op edit makes no step
                    states[cursor + 1:] = [now]
                    cursor += 1
            elif op == "undo":
                result = p.undo()
                assert (result is None) == (cursor == 0)
                cursor = max(cursor - 1, 0)
            else:
                result = p.redo()
                assert (result is None) == (cursor == len(states) - 1)
                cursor = min(cursor + 1, len(states) - 1)
            assert dump(p) == states[cursor]
            state = p.undo_state()
            assert (state["can_undo"], state["can_redo"]) == (cursor > 0, cursor < len(states) - 1)


def test_history_survives_close_and_reopen(tmp_path: Path) -> None:
    with Project.open(tmp_path) as p:
        p.sync_images([("a.jpg", 1, 1.0)])
        a = p.images()[0]["id"]
        c = p.add_class("moth")
        p.add_shape(a, "box", [0, 0, 1, 1], c["id"])
        p.add_shape(a, "point", [5, 5])
        p.undo()
        full = dump(p)
    with Project.open(tmp_path) as p:
        assert dump(p) == full
        assert p.undo_state() == {"can_undo": True, "can_redo": True,
                                  "undo": "Add box", "redo": "Add point"}
        assert p.redo() == {"image_id": a, "description": "Add point"}
        assert len(p.shapes(a)) == 2
        p.undo(), p.undo(), p.undo()
        assert p.classes() == [] and p.shapes(a) == []


def test_history_that_no_longer_fits_is_cleared_with_a_message(project: Project) -> None:
    a = project.images()[0]["id"]
    project.add_shape(a, "point", [1, 1])
    s = project.add_shape(a, "point", [2, 2])
    with sqlite3.connect(project.db_path) as raw:  # another program edits the file
        raw.execute("DELETE FROM shapes WHERE id = ?", (s["id"],))
    with pytest.raises(StoreError, match="undo history.*no longer matches") as info:
        project.undo()
    assert str(project.db_path) in info.value.message
    assert project.undo_state()["can_undo"] is False
    assert [x["geometry"] for x in project.shapes(a)] == [[1, 1]]
