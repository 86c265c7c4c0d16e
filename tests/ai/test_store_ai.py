"""The store's side of AI labeling: class prompts, proposals, review, runs (no models needed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from backend.errors import InvalidArgument, NotFound
from backend.store import Project, schema
from backend.store.runs import AlreadyProcessed

SRC = "owl-test@1.0"


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Project.open(tmp_path) as p:
        p.sync_images([("a.jpg", 1, 1.0), ("b.jpg", 1, 1.0), ("c.jpg", 1, 1.0)])
        yield p


def _box(x: float, y: float, s: float = 10, class_id: int | None = None,
         score: float = 0.5, prompt: str = "a moth") -> dict[str, Any]:
    return {"kind": "box", "geometry": [x, y, x + s, y + s], "class_id": class_id,
            "score": score, "prompt": prompt}


def test_a_1_2_project_migrates_and_keeps_its_classes(tmp_path: Path) -> None:
    db = tmp_path / ".fieldmark" / "project.sqlite"
    db.parent.mkdir()
    raw = sqlite3.connect(db, isolation_level=None)
    for statement in schema.BASE_1_0:
        raw.execute(statement)
    schema.MIGRATIONS[(1, 0)](raw)
    schema.MIGRATIONS[(1, 1)](raw)
    raw.execute("INSERT INTO classes (name, color, position) VALUES ('moth', '#ff0000', 0)")
    raw.execute(f"PRAGMA user_version = {schema.encode(1, 2)}")
    raw.close()
    with Project.open(tmp_path) as p:
        assert p.schema_version == (1, 3)
        moth = p.classes()[0]
        assert (moth["name"], moth["prompts"], moth["threshold"]) == ("moth", [], 0.1)
        assert p.runs() == []


def test_class_prompts_are_cleaned_and_undoable(store: Project) -> None:
    c = store.add_class("moth")
    got = store.set_class_prompts(c["id"], ["  a   moth ", "moth", "a moth"], 0.25)
    assert (got["prompts"], got["threshold"]) == (["a moth", "moth"], 0.25)
    assert store.undo_state()["undo"] == "Set prompts of class 'moth'"
    store.undo()
    assert (store.classes()[0]["prompts"], store.classes()[0]["threshold"]) == ([], 0.1)
    store.redo()
    assert store.classes()[0]["prompts"] == ["a moth", "moth"]
    # A deleted class comes back with its prompts.
    store.delete_class(c["id"])
    store.undo()
    assert store.classes()[0]["prompts"] == ["a moth", "moth"]


@pytest.mark.parametrize("prompts, threshold, field", [
    ("moth", 0.1, "prompts"), ([""], 0.1, "prompts[0]"), (["ok", 3], 0.1, "prompts[1]"),
    (["a\x00b"], 0.1, "prompts[0]"), (["x"], 1.5, "threshold"), (["x"], float("nan"), "threshold"),
    (["x"], True, "threshold")])
def test_bad_prompts_are_refused_by_name(store: Project, prompts: Any, threshold: Any,
                                         field: str) -> None:
    c = store.add_class("moth")
    with pytest.raises(InvalidArgument, match=field.replace("[", r"\[").replace("]", r"\]")):
        store.set_class_prompts(c["id"], prompts, threshold)


def test_replace_proposals_is_not_undoable_and_replaces_only_its_own(store: Project) -> None:
    c = store.add_class("moth")["id"]
    state = store.undo_state()
    first = store.replace_proposals(1, SRC, [_box(0, 0, class_id=c), _box(50, 50, class_id=c)])
    other = store.replace_proposals(1, "sam-test@1", [_box(100, 100, class_id=c)])
    assert [s["status"] for s in first] == ["pending", "pending"]
    assert {s["source"] for s in first} == {SRC} and first[0]["prompt"] == "a moth"
    assert store.undo_state() == state, "model output is not an undo step"
    again = store.replace_proposals(1, SRC, [_box(20, 20, class_id=c)])
    live = store.proposals(1)
    assert {s["id"] for s in live} == {again[0]["id"], other[0]["id"]}
    assert store.image(1)["status"] == "new", "proposals alone do not start an image"


def test_rejected_and_accepted_places_are_not_proposed_again(store: Project) -> None:
    moth, leaf = store.add_class("moth")["id"], store.add_class("leaf")["id"]
    a, b = store.replace_proposals(1, SRC, [_box(0, 0, class_id=moth), _box(50, 50, class_id=moth)])
    store.set_status_many([a["id"]], "rejected")
    store.set_status_many([b["id"]], "accepted")
    redo = store.replace_proposals(1, SRC, [
        _box(0.5, 0.5, class_id=moth),      # IoU 0.82 with the rejected one: dropped
        _box(50, 50, class_id=moth),        # on the accepted one: dropped
        _box(0.5, 0.5, class_id=leaf),      # another class at the rejected place: kept
        _box(5, 5, class_id=moth),          # IoU 0.14: a different place, kept
    ])
    assert [(s["geometry"][0], s["class_id"]) for s in redo] == [(0.5, leaf), (5, moth)]
    # Another pack may still propose the place this pack's proposal was rejected at.
    assert len(store.replace_proposals(1, "other@2", [_box(0, 0, class_id=moth)])) == 1


def test_new_proposals_of_one_class_do_not_stack(store: Project) -> None:
    got = store.replace_proposals(1, SRC, [_box(0, 0, score=0.9), _box(0.2, 0.2, score=0.8)])
    assert len(got) == 1 and got[0]["score"] == 0.9


def test_proposals_the_history_refers_to_are_kept(store: Project) -> None:
    (p,) = store.replace_proposals(1, SRC, [_box(0, 0)])
    store.set_status_many([p["id"]], "accepted")
    store.undo()                          # pending again; the redo step names it
    store.replace_proposals(1, SRC, [_box(60, 60)])
    assert store.shape(p["id"])["status"] == "pending"
    store.redo()
    assert store.shape(p["id"])["status"] == "accepted"


def test_auto_accept_stores_confident_proposals_accepted(store: Project) -> None:
    got = store.replace_proposals(1, SRC, [_box(0, 0, score=0.95), _box(40, 40, score=0.4)],
                                  auto_accept=0.9)
    assert [s["status"] for s in got] == ["accepted", "pending"]


def test_review_many_is_one_undo_step(store: Project) -> None:
    shapes = store.replace_proposals(1, SRC, [_box(0, 0), _box(30, 30), _box(60, 60)])
    ids = [s["id"] for s in shapes]
    assert store.set_status_many(ids, "accepted") == ids
    assert store.image(1)["status"] == "in_progress"
    assert store.undo_state()["undo"] == "Accept 3 shapes"
    store.undo()
    assert [store.shape(i)["status"] for i in ids] == ["pending"] * 3
    assert store.image(1)["status"] == "new"
    with pytest.raises(NotFound):
        store.set_status_many([ids[0], 999], "rejected")
    assert store.shape(ids[0])["status"] == "pending", "nothing changes when one id is bad"


def test_review_queue_is_lowest_score_first_across_images(store: Project) -> None:
    store.replace_proposals(1, SRC, [_box(0, 0, score=0.7), _box(40, 40, score=0.2)])
    store.replace_proposals(2, SRC, [_box(0, 0, score=0.5)])
    queue = store.pending_queue(10)
    assert [(s["score"], s["image_name"]) for s in queue] == [
        (0.2, "a.jpg"), (0.5, "b.jpg"), (0.7, "a.jpg")]
    assert len(store.pending_queue(2)) == 2


def test_convert_shapes_keeps_id_class_status_and_undoes(store: Project) -> None:
    c = store.add_class("moth")["id"]
    box = store.add_shape(1, "box", [0, 0, 10, 10], c)
    (poly,) = store.convert_shapes(1, [{"id": box["id"], "kind": "polygon",
                                        "geometry": [[0, 0], [10, 0], [5, 9]],
                                        "source": "sam-test@1", "score": 0.8,
                                        "prompt": "box"}], "Segment 1 box")
    assert (poly["id"], poly["kind"], poly["class_id"], poly["status"]) == (box["id"], "polygon", c,
                                                                           "accepted")
    store.undo()
    assert store.shape(box["id"])["kind"] == "box"


def test_run_items_finish_exactly_once(store: Project) -> None:
    run = store.create_run("detect", [3, 1, 2, 1], {"detector": SRC})
    assert (run["total"], run["state"]) == (3, "running")
    assert store.run_todo(run["run"]) == [3, 1, 2]
    store.replace_proposals(3, SRC, [_box(0, 0)], run_id=run["run"])
    with pytest.raises(AlreadyProcessed):
        store.replace_proposals(3, SRC, [_box(50, 50)], run_id=run["run"])
    assert [s["geometry"][0] for s in store.proposals(3)] == [0], "the second write was undone"
    store.fail_run_item(run["run"], 1, "not an image")
    with pytest.raises(AlreadyProcessed):
        store.fail_run_item(run["run"], 1, "again")
    assert store.run_todo(run["run"]) == [2]
    rec = store.run(run["run"])
    assert (rec["done"], rec["failed"], rec["total"]) == (1, 1, 3)
    assert store.run_failures(run["run"]) == [{"image_id": 1, "name": "a.jpg",
                                               "reason": "not an image"}]
    assert store.set_run_state(run["run"], "paused")["state"] == "paused"
