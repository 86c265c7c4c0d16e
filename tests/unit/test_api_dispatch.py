"""``Api.call``: every answer is ``{"ok": ...}`` or ``{"error": {code, message, detail}}``.

The method table is read from docs/bridge.md, so the contract the page is written against and
the code cannot drift apart unnoticed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from backend import paths
from backend.api.service import Api
from backend.api.settings import Settings
from backend.errors import StoreError

DOC = paths.resource("docs", "bridge.md")


def _doc_methods() -> list[str]:
    """Method names from the first column of the table under '## Methods' in docs/bridge.md."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Methods", 1)[1].split("\n## ", 1)[0]
    names: list[str] = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first_cell = line.split("|")[1]
        names += re.findall(r"`([a-z_]+\.[a-z_]+)`", first_cell)
    return names


def _doc_events() -> dict[str, set[str]]:
    """Event name -> payload keys from the table under '## Events' in docs/bridge.md."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Events", 1)[1].split("\n## ", 1)[0]
    events: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = line.split("|")
        if not line.startswith("| `") or len(cells) < 3:
            continue
        name = re.findall(r"`([a-z_]+\.[a-z_]+)`", cells[1])[0]
        events[name] = set(re.findall(r'"([a-z_]+)"', cells[2].split("—")[0]))
    return events


DOC_METHODS = _doc_methods()
DOC_EVENTS = _doc_events()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    api = Api(Settings(tmp_path / "settings.json"), demo_dir=tmp_path / "demo")
    yield api
    api.close_project()
    api.jobs.shutdown()


@pytest.fixture
def project(api: Api, tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (8, 6), "white").save(folder / "a.png")
    assert "ok" in api.call("project.open", {"path": str(folder)})
    return folder


def _is_envelope(answer: Any) -> bool:
    if not isinstance(answer, dict) or len(answer) != 1:
        return False
    if "ok" in answer:
        return True
    err = answer.get("error")
    return (isinstance(err, dict) and set(err) == {"code", "message", "detail"}
            and isinstance(err["code"], str) and isinstance(err["message"], str) and err["message"] != "")


# -- the doc and the code ----------------------------------------------------------------------

def test_doc_table_was_parsed() -> None:
    # Guards the parser: a reformatted table must not silently make the parity tests vacuous.
    assert len(DOC_METHODS) >= 20
    assert {"app.ping", "edit.undo", "edit.redo", "classes.merge"} <= set(DOC_METHODS)


@pytest.mark.parametrize("method", DOC_METHODS)
def test_documented_method_exists(api: Api, method: str) -> None:
    assert method in api.methods


def test_every_method_is_documented(api: Api) -> None:
    undocumented = sorted(set(api.methods) - set(DOC_METHODS))
    assert undocumented == [], f"add these to the Methods table in docs/bridge.md: {undocumented}"


@pytest.mark.parametrize("method", DOC_METHODS)
def test_documented_method_answers_an_envelope_for_empty_and_garbage_args(api: Api, project: Path,
                                                                          method: str) -> None:
    garbage = {"id": "x", "image_id": [1], "path": 5, "theme": {}, "status": 3, "kind": None,
               "geometry": "nope", "class_id": "one", "name": 7, "color": 1.5, "source": True,
               "target": -0.5, "query": 9}
    for args in ({}, garbage):
        answer = api.call(method, args)
        assert _is_envelope(answer), (method, args, answer)
        if "error" in answer:
            # Bad input is the caller's mistake, never a crash reported as a bug.
            assert answer["error"]["code"] != "internal", (method, args, answer)


def test_emitted_events_are_documented(api: Api, tmp_path: Path) -> None:
    assert {"job.progress", "job.done", "project.changed"} <= set(DOC_EVENTS)
    seen: list[tuple[str, Any]] = []
    api.listeners.append(lambda name, payload: seen.append((name, payload)))
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (8, 6)).save(folder / "a.png")
    api.call("project.open", {"path": str(folder)})  # project.changed, probe job events
    started, release = threading.Event(), threading.Event()

    def hold(ctx: Any) -> None:
        started.set()
        release.wait(10)

    def fail(ctx: Any) -> None:
        raise StoreError("disk full")

    jobs = [api.jobs.submit("hold", hold), api.jobs.submit("fail", fail), api.jobs.submit("later", lambda ctx: 1)]
    assert started.wait(10)
    api.jobs.cancel(jobs[2].id)
    release.set()
    for job in [*api.jobs.jobs.values()]:
        assert job.future is not None
        job.future.result(timeout=10)
    names = {name for name, _ in seen}
    assert {"project.changed", "images.changed", "job.progress", "job.done", "job.failed"} <= names
    for name, payload in seen:
        if name in DOC_EVENTS:
            assert DOC_EVENTS[name] <= set(payload), (name, payload)
    undocumented = sorted(names - set(DOC_EVENTS))
    # The page (web/js/bridge.js) settles a waiting job only on documented final events.
    assert undocumented == [], f"add these to the Events table in docs/bridge.md: {undocumented}"


# -- envelope and errors -----------------------------------------------------------------------

def test_ping_round_trip(api: Api) -> None:
    value = {"nested": [1, "two", None, 3.5], "ü": True}
    assert api.call("app.ping", {"value": value}) == {"ok": {"value": value}}


def test_none_args_mean_no_args(api: Api) -> None:
    assert api.call("app.ping", None) == {"ok": {"value": None}}
    assert "ok" in api.call("app.info", None)


def test_unknown_method(api: Api) -> None:
    answer = api.call("images.explode", {})
    assert _is_envelope(answer)
    assert answer["error"]["code"] == "unknown_method"
    assert "images.explode" in answer["error"]["message"]


@pytest.mark.parametrize("args", [[1, 2], "id=1", 3, True])
def test_args_must_be_an_object(api: Api, args: Any) -> None:
    answer = api.call("app.ping", args)
    assert answer["error"]["code"] == "invalid_argument"
    assert "'args'" in answer["error"]["message"]


def test_methods_needing_a_project_say_so(api: Api) -> None:
    for method, args in (("images.list", {}), ("image.get", {"id": 1}), ("shapes.list", {"image_id": 1}),
                         ("classes.list", {}), ("edit.undo", {}), ("edit.state", {})):
        answer = api.call(method, args)
        assert answer["error"]["code"] == "no_project", method
        assert "Open a folder" in answer["error"]["message"]


def test_missing_field_is_named(api: Api, project: Path) -> None:
    err = api.call("image.get", {})["error"]
    assert err["code"] == "invalid_argument"
    assert "'id' is required" in err["message"]
    assert err["detail"] == {"field": "id"}


@pytest.mark.parametrize("value", ["1", 1.0, True, None, [1]])
def test_ill_typed_field_is_named_with_its_value(api: Api, project: Path, value: Any) -> None:
    err = api.call("image.get", {"id": value})["error"]
    assert err["code"] == "invalid_argument"
    assert err["message"].startswith("'id' must be an integer")
    assert repr(value) in err["message"]


def test_long_values_are_shortened_in_messages(api: Api, project: Path) -> None:
    err = api.call("image.get", {"id": "x" * 10_000})["error"]
    assert len(err["message"]) < 200


def test_store_not_found_for_a_missing_id(api: Api, project: Path) -> None:
    err = api.call("image.get", {"id": 999})["error"]
    assert err["code"] == "not_found"
    assert "999" in err["message"]


def test_fieldmark_error_from_a_handler_keeps_code_and_detail(api: Api) -> None:
    def handler(api: Api, a: dict[str, Any]) -> None:
        raise StoreError("The disk is full. Free some space and try again.", detail={"file": "/x"})

    api.methods["test.store"] = handler
    assert api.call("test.store", {}) == {"error": {
        "code": "store_error", "message": "The disk is full. Free some space and try again.",
        "detail": {"file": "/x"}}}


def test_unexpected_exception_becomes_internal(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    def handler(api: Api, a: dict[str, Any]) -> None:
        {}["missing-key"]  # a bug

    api.methods["test.crash"] = handler
    answer = api.call("test.crash", {"x": 1})
    assert _is_envelope(answer)
    err = answer["error"]
    assert err["code"] == "internal"
    assert "KeyError" in err["message"] and "please report this" in err["message"]
    assert "labels are safe" in err["message"]
    assert "Traceback" in err["detail"]
    assert any(r.levelname == "ERROR" and "test.crash" in r.getMessage() for r in caplog.records)
    # The Api is still usable afterwards.
    assert api.call("app.ping", {"value": 1}) == {"ok": {"value": 1}}


# -- project.pick ------------------------------------------------------------------------------

def test_pick_without_a_dialog_is_unsupported(api: Api) -> None:
    assert api.call("project.pick", {})["error"]["code"] == "unsupported"


def test_pick_opens_the_chosen_folder(tmp_path: Path) -> None:
    folder = tmp_path / "chosen"
    folder.mkdir()
    Image.new("RGB", (4, 4)).save(folder / "x.jpg")
    calls: list[int] = []

    def pick() -> str:
        calls.append(1)
        return str(folder)

    api = Api(Settings(tmp_path / "s.json"), pick_folder=pick, demo_dir=tmp_path / "demo")
    try:
        summary = api.call("project.pick", {})["ok"]
        assert calls == [1]
        assert (summary["path"], summary["image_count"], summary["demo"]) == (str(folder.resolve()), 1, False)
        assert api.call("app.info", {})["ok"]["project"] == summary
    finally:
        api.close_project()
        api.jobs.shutdown()


def test_pick_cancelled_returns_null_and_keeps_the_project(tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    api = Api(Settings(tmp_path / "s.json"), pick_folder=lambda: None, demo_dir=tmp_path / "demo")
    try:
        api.open_project(folder)
        assert api.call("project.pick", {}) == {"ok": None}
        assert api.project is not None and api.project.folder == folder.resolve()
    finally:
        api.close_project()
        api.jobs.shutdown()
