"""Shapes, classes, image status and undo through ``Api.call`` against a real temporary project.

The store has its own thorough tests; these check the wiring (argument names, types, records
returned, errors surfaced as envelopes) of each documented method.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from backend.api.service import Api
from backend.api.settings import Settings


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("moth_01.png", "moth_02.png", "beetle.png"):
        Image.new("RGB", (40, 30), "gray").save(folder / name)
    api = Api(Settings(tmp_path / "settings.json"), demo_dir=tmp_path / "demo")
    assert "ok" in api.call("project.open", {"path": str(folder)})
    yield api
    api.close_project()
    api.jobs.shutdown()


def ok(api: Api, method: str, args: dict[str, Any] | None = None) -> Any:
    answer = api.call(method, args or {})
    assert "ok" in answer, (method, args, answer)
    return answer["ok"]


def err(api: Api, method: str, args: dict[str, Any]) -> dict[str, Any]:
    answer = api.call(method, args)
    assert "error" in answer, (method, args, answer)
    return answer["error"]


def image_id(api: Api, name: str = "moth_01.png") -> int:
    return next(im["id"] for im in ok(api, "images.list") if im["name"] == name)


# -- images ------------------------------------------------------------------------------------

def test_images_list_order_query_and_status(api: Api) -> None:
    assert [im["name"] for im in ok(api, "images.list")] == ["beetle.png", "moth_01.png", "moth_02.png"]
    assert [im["name"] for im in ok(api, "images.list", {"query": "MOTH"})] == ["moth_01.png", "moth_02.png"]
    done = ok(api, "image.set_status", {"id": image_id(api, "moth_02.png"), "status": "done"})
    assert done["status"] == "done"
    assert [im["name"] for im in ok(api, "images.list", {"status": "done"})] == ["moth_02.png"]
    assert [im["name"] for im in ok(api, "images.list", {"query": "moth", "status": "new"})] == ["moth_01.png"]


@pytest.mark.parametrize("args,field", [
    ({"status": "finished"}, "status"),
    ({"query": 5}, "query"),
    ({"query": ["moth"]}, "query"),
])
def test_images_list_bad_filters(api: Api, args: dict[str, Any], field: str) -> None:
    e = err(api, "images.list", args)
    assert e["code"] == "invalid_argument" and f"'{field}'" in e["message"]


def test_set_status_validation(api: Api) -> None:
    i = image_id(api)
    e = err(api, "image.set_status", {"id": i, "status": "finished"})
    assert e["code"] == "invalid_argument" and "'status'" in e["message"] and "skipped" in e["message"]
    assert "'status' is required" in err(api, "image.set_status", {"id": i})["message"]
    assert err(api, "image.set_status", {"id": 12345, "status": "done"})["code"] == "not_found"


# -- classes -----------------------------------------------------------------------------------

def test_classes_add_rename_recolor(api: Api) -> None:
    moth = ok(api, "classes.add", {"name": "moth"})
    assert (moth["name"], moth["count"], moth["key"]) == ("moth", 0, "1")
    assert moth["color"].startswith("#") and len(moth["color"]) == 7
    beetle = ok(api, "classes.add", {"name": "beetle", "color": "#AABBCC"})
    assert (beetle["color"], beetle["key"]) == ("#aabbcc", "2")
    assert ok(api, "classes.rename", {"id": moth["id"], "name": "Moth"})["name"] == "Moth"
    assert ok(api, "classes.recolor", {"id": moth["id"], "color": "#123456"})["color"] == "#123456"
    assert [(c["name"], c["color"]) for c in ok(api, "classes.list")] == [("Moth", "#123456"), ("beetle", "#aabbcc")]


@pytest.mark.parametrize("method,args,field", [
    ("classes.add", {}, "name"),
    ("classes.add", {"name": ""}, "name"),
    ("classes.add", {"name": 7}, "name"),
    ("classes.add", {"name": "x" * 201}, "name"),
    ("classes.add", {"name": "ok", "color": 123}, "color"),
    ("classes.add", {"name": "ok", "color": "#12345678"}, "color"),
    ("classes.rename", {"name": "x"}, "id"),
    ("classes.rename", {"id": True, "name": "x"}, "id"),
    ("classes.recolor", {"id": 1}, "color"),
    ("classes.merge", {"source": 1}, "target"),
    ("classes.merge", {"source": "1", "target": 2}, "source"),
    ("classes.delete", {"id": 1.0}, "id"),
])
def test_class_argument_errors_name_the_field(api: Api, method: str, args: dict[str, Any], field: str) -> None:
    e = err(api, method, args)
    assert e["code"] == "invalid_argument"
    assert field in e["message"]


def test_class_store_errors(api: Api) -> None:
    moth = ok(api, "classes.add", {"name": "moth"})
    e = err(api, "classes.add", {"name": "moth"})
    assert e["code"] == "invalid_argument" and "already used" in e["message"]
    e = err(api, "classes.recolor", {"id": moth["id"], "color": "red"})
    assert e["code"] == "invalid_argument" and "#rrggbb" in e["message"]
    assert err(api, "classes.rename", {"id": 999, "name": "x"})["code"] == "not_found"
    assert err(api, "classes.merge", {"source": moth["id"], "target": moth["id"]})["code"] == "invalid_argument"


# -- shapes ------------------------------------------------------------------------------------

def test_shapes_add_update_delete(api: Api) -> None:
    img = image_id(api)
    moth = ok(api, "classes.add", {"name": "moth"})
    box = ok(api, "shapes.add", {"image_id": img, "kind": "box", "geometry": [30, 20, 10, 5], "class_id": moth["id"]})
    assert (box["image_id"], box["kind"], box["class_id"], box["geometry"]) == (img, "box", moth["id"], [10, 5, 30, 20])
    assert (box["source"], box["status"]) == ("manual", "accepted")
    poly = ok(api, "shapes.add", {"image_id": img, "kind": "polygon", "geometry": [[0, 0], [5, 0], [5, 5]]})
    assert poly["class_id"] is None
    point = ok(api, "shapes.add", {"image_id": img, "kind": "point", "geometry": [1.5, 2.5], "class_id": None})
    assert [s["id"] for s in ok(api, "shapes.list", {"image_id": img})] == [box["id"], poly["id"], point["id"]]
    assert ok(api, "images.list", {"query": "moth_01"})[0]["shape_count"] == 3
    assert ok(api, "images.list", {"query": "moth_01"})[0]["status"] == "in_progress"  # work started
    assert ok(api, "classes.list")[0]["count"] == 1

    moved = ok(api, "shapes.update", {"id": box["id"], "geometry": [0, 0, 4, 4]})
    assert (moved["geometry"], moved["class_id"]) == ([0, 0, 4, 4], moth["id"])  # class untouched
    unassigned = ok(api, "shapes.update", {"id": box["id"], "class_id": None})
    assert (unassigned["class_id"], unassigned["geometry"]) == (None, [0, 0, 4, 4])
    assigned = ok(api, "shapes.update", {"id": poly["id"], "class_id": moth["id"]})
    assert assigned["class_id"] == moth["id"]

    assert ok(api, "shapes.delete", {"id": point["id"]}) == {"id": point["id"]}
    assert [s["id"] for s in ok(api, "shapes.list", {"image_id": img})] == [box["id"], poly["id"]]
    assert err(api, "shapes.delete", {"id": point["id"]})["code"] == "not_found"


def test_mask_geometry_round_trip(api: Api) -> None:
    geometry = {"rle": {"size": [30, 40], "counts": "abc"}, "bbox": [9, 8, 1, 2], "area": 12}
    shape = ok(api, "shapes.add", {"image_id": image_id(api), "kind": "mask", "geometry": geometry})
    assert shape["geometry"] == {**geometry, "bbox": [1, 2, 9, 8]}  # opaque RLE, normalized bbox
    assert ok(api, "shapes.list", {"image_id": image_id(api)})[0]["geometry"] == shape["geometry"]
    assert "geometry" in err(api, "shapes.add", {"image_id": image_id(api), "kind": "mask", "geometry": [1, 2]})["message"]


@pytest.mark.parametrize("args,field", [
    ({"kind": "box", "geometry": [0, 0, 1, 1]}, "image_id"),
    ({"image_id": True, "kind": "box", "geometry": [0, 0, 1, 1]}, "image_id"),
    ({"image_id": "1", "kind": "box", "geometry": [0, 0, 1, 1]}, "image_id"),
    ({"image_id": 1, "geometry": [0, 0, 1, 1]}, "kind"),
    ({"image_id": 1, "kind": "circle", "geometry": [0, 0, 1, 1]}, "kind"),
    ({"image_id": 1, "kind": "box"}, "geometry"),
    ({"image_id": 1, "kind": "box", "geometry": [0, 0, 1]}, "geometry"),
    ({"image_id": 1, "kind": "box", "geometry": [0, 0, 1, float("nan")]}, "geometry"),
    ({"image_id": 1, "kind": "polygon", "geometry": [[0, 0], [1, 1]]}, "geometry"),
    ({"image_id": 1, "kind": "point", "geometry": ["1", 2]}, "geometry"),
    ({"image_id": 1, "kind": "box", "geometry": [0, 0, 1, 1], "class_id": True}, "class_id"),
    ({"image_id": 1, "kind": "box", "geometry": [0, 0, 1, 1], "class_id": "2"}, "class_id"),
])
def test_shapes_add_argument_errors(api: Api, args: dict[str, Any], field: str) -> None:
    e = err(api, "shapes.add", args)
    assert e["code"] == "invalid_argument", e
    assert field in e["message"]
    assert ok(api, "shapes.list", {"image_id": 1}) == []


def test_shapes_add_to_missing_image_or_class(api: Api) -> None:
    assert err(api, "shapes.add", {"image_id": 999, "kind": "point", "geometry": [1, 1]})["code"] == "not_found"
    e = err(api, "shapes.add", {"image_id": image_id(api), "kind": "point", "geometry": [1, 1], "class_id": 999})
    assert e["code"] in ("not_found", "invalid_argument")
    assert "999" in e["message"]


def test_shapes_update_argument_errors(api: Api) -> None:
    shape = ok(api, "shapes.add", {"image_id": image_id(api), "kind": "box", "geometry": [0, 0, 2, 2]})
    e = err(api, "shapes.update", {"id": shape["id"]})
    assert e["code"] == "invalid_argument" and "geometry" in e["message"] and "class_id" in e["message"]
    assert "'id'" in err(api, "shapes.update", {"geometry": [0, 0, 1, 1]})["message"]
    assert "class_id" in err(api, "shapes.update", {"id": shape["id"], "class_id": False})["message"]
    assert "geometry" in err(api, "shapes.update", {"id": shape["id"], "geometry": [[0, 0], [1, 1], [2, 0]]})["message"]
    assert err(api, "shapes.update", {"id": shape["id"], "class_id": 999})["code"] == "not_found"
    assert err(api, "shapes.update", {"id": 999, "geometry": [0, 0, 1, 1]})["code"] == "not_found"
    assert ok(api, "shapes.list", {"image_id": image_id(api)})[0]["geometry"] == [0, 0, 2, 2]


def test_shapes_list_validation(api: Api) -> None:
    assert "'image_id' is required" in err(api, "shapes.list", {})["message"]
    assert "'image_id' must be an integer" in err(api, "shapes.list", {"image_id": "1"})["message"]


# -- classes and shapes together ---------------------------------------------------------------

def test_delete_class_keeps_its_shapes_unassigned(api: Api) -> None:
    img = image_id(api)
    moth = ok(api, "classes.add", {"name": "moth"})
    s = ok(api, "shapes.add", {"image_id": img, "kind": "point", "geometry": [1, 1], "class_id": moth["id"]})
    assert ok(api, "classes.delete", {"id": moth["id"]}) == {"id": moth["id"]}
    assert ok(api, "classes.list") == []
    assert [(x["id"], x["class_id"]) for x in ok(api, "shapes.list", {"image_id": img})] == [(s["id"], None)]
    assert err(api, "classes.delete", {"id": moth["id"]})["code"] == "not_found"


def test_merge_moves_shapes_to_the_target(api: Api) -> None:
    img = image_id(api)
    a = ok(api, "classes.add", {"name": "moth"})
    b = ok(api, "classes.add", {"name": "Moth"})
    for cls in (a, a, b):
        ok(api, "shapes.add", {"image_id": img, "kind": "point", "geometry": [1, 1], "class_id": cls["id"]})
    target = ok(api, "classes.merge", {"source": a["id"], "target": b["id"]})
    assert (target["id"], target["name"], target["count"]) == (b["id"], "Moth", 3)
    assert [c["id"] for c in ok(api, "classes.list")] == [b["id"]]
    assert {s["class_id"] for s in ok(api, "shapes.list", {"image_id": img})} == {b["id"]}


# -- undo / redo -------------------------------------------------------------------------------

def test_undo_redo_and_state(api: Api) -> None:
    img = image_id(api)
    assert ok(api, "edit.state") == {"can_undo": False, "can_redo": False, "undo": None, "redo": None}
    assert ok(api, "edit.undo") is None
    assert ok(api, "edit.redo") is None

    shape = ok(api, "shapes.add", {"image_id": img, "kind": "box", "geometry": [1, 1, 5, 5]})
    ok(api, "shapes.delete", {"id": shape["id"]})
    state = ok(api, "edit.state")
    assert (state["can_undo"], state["can_redo"]) == (True, False)
    assert "box" in state["undo"].lower()

    step = ok(api, "edit.undo")
    assert step["image_id"] == img and step["description"] == state["undo"]
    assert [s["id"] for s in ok(api, "shapes.list", {"image_id": img})] == [shape["id"]]
    assert ok(api, "edit.state")["redo"] == state["undo"]

    ok(api, "edit.undo")  # the add
    assert ok(api, "shapes.list", {"image_id": img}) == []
    assert ok(api, "images.list", {"query": "moth_01"})[0]["status"] == "new"

    ok(api, "edit.redo")
    assert [s["geometry"] for s in ok(api, "shapes.list", {"image_id": img})] == [[1, 1, 5, 5]]
    state = ok(api, "edit.state")
    assert (state["can_undo"], state["can_redo"]) == (True, True)


def test_class_edits_are_undoable(api: Api) -> None:
    moth = ok(api, "classes.add", {"name": "moth"})
    ok(api, "classes.rename", {"id": moth["id"], "name": "moths"})
    step = ok(api, "edit.undo")
    assert step["image_id"] is None
    assert [c["name"] for c in ok(api, "classes.list")] == ["moth"]
    ok(api, "classes.delete", {"id": moth["id"]})
    ok(api, "edit.undo")
    assert [(c["id"], c["name"]) for c in ok(api, "classes.list")] == [(moth["id"], "moth")]


def test_new_edit_clears_redo(api: Api) -> None:
    img = image_id(api)
    ok(api, "shapes.add", {"image_id": img, "kind": "point", "geometry": [1, 1]})
    ok(api, "edit.undo")
    assert ok(api, "edit.state")["can_redo"] is True
    ok(api, "image.set_status", {"id": img, "status": "skipped"})
    assert ok(api, "edit.state")["can_redo"] is False
