"""Export and import through ``Api.call``, as the page drives them (docs/bridge.md, "Export and
import"): jobs with progress, paths only where the person chose, cancel leaving nothing behind.

The handlers are merged into a plain ``Api`` here, as the app merges them; the native dialogs are
replaced by a function returning the path a person would have chosen.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.api import export_handlers
from backend.api.service import Api
from backend.api.settings import Settings
from tests.formats.conftest import LEAF, MOTH, build_rich, copy_images


class Picker:
    """Stands in for the native dialogs: answers with ``path``, and records what was asked."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.asked: list[tuple[str, str, str]] = []

    def __call__(self, kind: str, title: str, name_filter: str = "") -> str | None:
        self.asked.append((kind, title, name_filter))
        return str(self.path) if self.path is not None else None


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.hooks: list[Any] = []

    def __call__(self, name: str, payload: Any) -> None:
        self.seen.append((name, payload))
        for hook in self.hooks:
            hook(name, payload)


@pytest.fixture
def rich_folder(tmp_path: Path) -> Path:
    rich = build_rich(tmp_path / "moths ü")
    rich.project.close()
    return tmp_path / "moths ü"


@pytest.fixture
def api(tmp_path: Path, rich_folder: Path) -> Iterator[Api]:
    api = Api(Settings(tmp_path / "settings.json"), demo_dir=tmp_path / "demo")
    api.methods.update(export_handlers.METHODS)
    api.pick_path = Picker()  # type: ignore[attr-defined]
    api.events = Events()  # type: ignore[attr-defined]
    api.listeners.append(api.events)  # type: ignore[attr-defined]
    api.open_project(rich_folder)
    yield api
    api.close_project()
    api.jobs.shutdown()


def ok(answer: dict[str, Any]) -> Any:
    assert "ok" in answer, answer
    return answer["ok"]


def finish(api: Api, answer: dict[str, Any]) -> Any:
    """The job's final state and result (or error)."""
    job = api.jobs.jobs[ok(answer)["job"]]
    assert job.future is not None
    job.future.result(timeout=60)
    return job


def pick_out(api: Api, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    api.pick_path.path = folder  # type: ignore[attr-defined]
    return str(ok(api.call("export.pick_out", {}))["folder"])


def test_formats_say_what_each_holds_and_which_options_it_honours(api: Api) -> None:
    formats = {f["id"]: f for f in ok(api.call("export.formats", {}))}
    assert set(formats) == {"coco", "yolo", "yolo-seg", "voc", "labelme", "masks", "cvat",
                            "labelstudio"}
    for f in formats.values():
        assert f["available"] and f["title"] and f["description"] and f["holds"]
        assert {"include_pending", "split", "resize", "copy_images"} <= set(f["options"])
    assert {k for k, f in formats.items() if "segmentation" in f["options"]} == {"coco", "labelme"}
    assert {k for k, f in formats.items() if f["can_import"]} == {"coco", "yolo", "yolo-seg",
                                                                    "voc", "labelme"}
    assert formats["coco"]["import_source"] == "file"
    assert formats["masks"]["import_source"] is None


def test_export_runs_as_a_job_into_a_new_folder_of_the_picked_one(api: Api, tmp_path: Path
                                                                  ) -> None:
    folder = pick_out(api, tmp_path / "exports")
    target = ok(api.call("export.target", {"format": "coco"}))["path"]
    assert target == str(Path(folder) / "moths ü-coco")
    job = finish(api, api.call("export.run", {"format": "coco", "out": folder,
                                              "options": {"split": [0.5, 0.5]}}))
    assert job.state == "done", job.error
    result = job.result
    assert result["out"] == target
    data = json.loads((Path(target) / "annotations" / "train.json").read_text())
    assert {c["name"] for c in data["categories"]} == {MOTH, LEAF}
    assert result["images"] == 6 and result["shapes"] == 6
    # The point cannot be COCO; the shape without a class neither: listed, with the reason.
    reasons = " | ".join(s["reason"] for s in result["skipped"])
    assert "point" in reasons and "no class" in reasons
    assert result["skipped_count"] == len(result["skipped"]) == 2
    progress = [p for n, p in api.events.seen if n == "job.progress" and p["job"] == job.id]  # type: ignore[attr-defined]
    assert progress and all(p["total"] >= p["done"] >= 0 for p in progress)
    # The next export of the same format never touches the first: it gets its own name.
    again = finish(api, api.call("export.run", {"format": "coco"}))
    assert again.result["out"] == target + "-2"
    assert data == json.loads((Path(target) / "annotations" / "train.json").read_text())


def test_resize_exports_into_a_zip(api: Api, tmp_path: Path) -> None:
    folder = pick_out(api, tmp_path / "exports")
    job = finish(api, api.call("export.run", {"format": "yolo", "out": folder,
                                              "options": {"resize": 32}}))
    assert job.state == "done", job.error
    assert job.result["out"].endswith("moths ü-yolo.zip") and Path(job.result["out"]).is_file()


def test_export_goes_only_where_the_person_chose(api: Api, tmp_path: Path,
                                                 rich_folder: Path) -> None:
    answer = api.call("export.run", {"format": "coco"})
    assert answer["error"]["code"] == "no_output"
    pick_out(api, tmp_path / "exports")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    answer = api.call("export.run", {"format": "coco", "out": str(elsewhere)})
    assert answer["error"]["code"] == "not_picked"
    assert not any(elsewhere.iterdir())
    # A project's own data folder is refused when picked.
    api.pick_path.path = rich_folder / ".fieldmark"  # type: ignore[attr-defined]
    answer = api.call("export.pick_out", {})
    assert answer["error"]["code"] == "invalid_argument" and ".fieldmark" in answer["error"]["message"]
    api.pick_path.path = None  # type: ignore[attr-defined]
    assert ok(api.call("export.pick_out", {})) is None          # the dialog was cancelled


def test_bad_options_and_formats_are_refused_by_name(api: Api, tmp_path: Path) -> None:
    folder = pick_out(api, tmp_path / "exports")
    answer = api.call("export.run", {"format": "coco", "out": folder, "options": {"resize": 3}})
    assert answer["error"]["code"] == "invalid_argument" and "resize" in answer["error"]["message"]
    answer = api.call("export.run", {"format": "coco", "out": folder, "options": {"colour": 1}})
    assert "colour" in answer["error"]["message"]
    answer = api.call("export.run", {"format": "tiff", "out": folder})
    assert answer["error"]["code"] == "invalid_argument" and "format" in answer["error"]["message"]
    answer = api.call("import.pick", {"format": "masks"})
    assert answer["error"]["code"] == "invalid_argument" and "not import" in answer["error"]["message"]
    assert not any(Path(folder).iterdir())


def cancel_when(api: Api, phase: str, by_id: bool = True) -> None:
    """Cancel the running export/import job when its progress first reports ``phase`` (naming
    the job, or as the page does before it knows the id: every job of the kind)."""
    def hook(name: str, payload: Any) -> None:
        if name == "job.progress" and payload["message"].startswith(phase):
            kind = payload["job"].split("-", 1)[0]       # "export-3" / "import-4"
            args = {"job": payload["job"]} if by_id else {}
            assert ok(api.call(f"{kind}.cancel", args))["cancelled"]
    api.events.hooks.append(hook)  # type: ignore[attr-defined]


def test_a_cancelled_export_leaves_nothing_behind(api: Api, tmp_path: Path) -> None:
    folder = pick_out(api, tmp_path / "exports")
    cancel_when(api, "Copying")          # between two images, after some were copied
    job = finish(api, api.call("export.run", {"format": "coco", "out": folder}))
    assert job.state == "cancelled"
    assert list(Path(folder).iterdir()) == []      # no export, no staging folder
    cancelled = [p for n, p in api.events.seen if n == "job.cancelled"]  # type: ignore[attr-defined]
    assert [p["job"] for p in cancelled] == [job.id]


def test_a_cancelled_zip_export_leaves_nothing_behind(api: Api, tmp_path: Path) -> None:
    folder = pick_out(api, tmp_path / "exports")
    cancel_when(api, "Writing the ZIP", by_id=False)
    job = finish(api, api.call("export.run", {"format": "voc", "out": folder,
                                              "options": {"resize": 64}}))
    assert job.state == "cancelled"
    assert list(Path(folder).iterdir()) == []


def test_import_round_trip_through_the_bridge(api: Api, tmp_path: Path, rich_folder: Path
                                              ) -> None:
    folder = pick_out(api, tmp_path / "exports")
    exported = finish(api, api.call("export.run", {"format": "coco", "out": folder})).result
    before = api.require_project().all_shapes(("accepted",))
    # A new project with the same images, then the export back in.
    fresh = copy_images(rich_folder, tmp_path / "fresh")
    ok(api.call("project.open", {"path": str(fresh)}))
    source = Path(exported["out"]) / "annotations.json"
    api.pick_path.path = source  # type: ignore[attr-defined]
    picked = ok(api.call("import.pick", {"format": "coco"}))
    assert picked == {"path": str(source.resolve()), "kind": "file"}
    assert api.pick_path.asked[-1][0] == "file"  # type: ignore[attr-defined]
    job = finish(api, api.call("import.run", {"format": "coco", "path": picked["path"]}))
    assert job.state == "done", job.error
    report = job.result
    assert report["shapes_added"] == exported["shapes"] == 6
    assert set(report["classes_added"]) == {MOTH, LEAF}
    assert report["skipped_count"] == 0
    after = api.require_project().all_shapes(("accepted",))
    assert sorted(s["kind"] for s in after) == sorted(
        s["kind"] for s in before if s["kind"] != "point" and s["class_id"] is not None)
    # One undo step takes the whole import away.
    ok(api.call("edit.undo", {}))
    assert api.require_project().all_shapes(("accepted",)) == []


def test_import_reads_only_what_was_picked_or_lies_in_the_project(api: Api, tmp_path: Path
                                                                   ) -> None:
    outside = tmp_path / "other.json"
    outside.write_text("{}")
    answer = api.call("import.run", {"format": "coco", "path": str(outside)})
    assert answer["error"]["code"] == "not_picked"
    hidden = api.require_project().folder / ".fieldmark" / "project.db"
    answer = api.call("import.run", {"format": "coco", "path": str(hidden)})
    assert answer["error"]["code"] == "not_picked"
    # A labelme file next to the images is inside the project: no need to pick it.
    inside = api.require_project().folder / "notes.json"
    inside.write_text(json.dumps({"version": "5.5.0", "flags": {}, "shapes": [],
                                  "imagePath": "plain.png", "imageData": None,
                                  "imageHeight": 48, "imageWidth": 64}))
    job = finish(api, api.call("import.run", {"format": "labelme", "path": str(inside)}))
    assert job.state == "done", job.error


def test_a_cancelled_import_adds_nothing(api: Api, tmp_path: Path, rich_folder: Path) -> None:
    folder = pick_out(api, tmp_path / "exports")
    exported = finish(api, api.call("export.run", {"format": "labelme", "out": folder})).result
    fresh = copy_images(rich_folder, tmp_path / "fresh")
    ok(api.call("project.open", {"path": str(fresh)}))
    api.pick_path.path = Path(exported["out"])  # type: ignore[attr-defined]
    path = ok(api.call("import.pick", {"format": "labelme"}))["path"]
    cancel_when(api, "Reading")
    job = finish(api, api.call("import.run", {"format": "labelme", "path": path}))
    assert job.state == "cancelled"
    assert api.require_project().all_shapes(("accepted", "pending", "rejected")) == []
    assert api.require_project().classes() == []


def test_cancel_touches_only_jobs_of_its_kind(api: Api) -> None:
    release = threading.Event()
    other = api.jobs.submit("detect", lambda ctx: release.wait(10))
    answer = api.call("export.cancel", {"job": other.id})
    assert answer["error"]["code"] == "no_job"
    assert ok(api.call("import.cancel", {})) == {"jobs": [], "cancelled": False}
    release.set()
    assert other.future is not None
    other.future.result(timeout=10)
    assert other.state == "done"


def test_every_handler_is_documented_and_answers_garbage_with_a_clear_error(api: Api) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "bridge.md").read_text("utf-8")
    section = text.split("### Export and import", 1)[1].split("\n## ", 1)[0]
    documented = {m for line in section.splitlines() if line.startswith("| `")
                  for m in re.findall(r"`([a-z_]+\.[a-z_]+)`", line.split("|")[1])}
    assert documented == set(export_handlers.METHODS)
    garbage = {"format": 5, "out": [1], "options": "all", "path": {}, "job": None}
    for method in export_handlers.METHODS:
        for args in ({}, garbage):
            answer = api.call(method, args)
            assert set(answer) in ({"ok"}, {"error"}), (method, args, answer)
            if "error" in answer:
                assert answer["error"]["code"] != "internal", (method, args, answer)
