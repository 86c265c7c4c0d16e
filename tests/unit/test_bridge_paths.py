"""Bridge arguments that name files stay where the person chose (ARCHITECTURE.md, "The web page
is untrusted territory"), and ids from the page are checked before they reach the store.

Every method in docs/bridge.md whose arguments hold a path is listed in ``PATH_METHODS``; a new
one fails the first test until its rules are tested here. Paths the page may use:

- ``project.open`` from the page (``handlers.page_refusal``, applied by the bridge): a recent
  project or the open one. The CLI, the self-test and a folder dropped on the window call the
  Api directly with a path the person typed or dropped.
- ``export.target`` / ``export.run``: only a folder returned by ``export.pick_out`` (native dialog).
- ``import.run``: a path returned by ``import.pick`` (native dialog) or inside the open project,
  never its ``.fieldmark`` store.
- ``models.install``: never from the page (it installs through ``models.pick_install``, where the
  native dialog supplies the path); the CLI and the shell may name any pack, which is copied only
  once it verifies.

Traversal (``..``), symlinks, relative paths and NUL bytes are all judged on the resolved path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.api import handlers
from backend.api.service import Api
from backend.api.settings import Settings
from tests.e2e.projects import make_project

REPO = Path(__file__).resolve().parents[2]
PATH_METHODS = {"project.open": "path", "models.install": "path", "export.target": "out",
                "export.run": "out", "import.run": "path"}


def documented_path_methods() -> dict[str, str]:
    """Methods (under "## Methods" in docs/bridge.md) whose args name a ``path`` or ``out``."""
    text = (REPO / "docs" / "bridge.md").read_text(encoding="utf-8").split("## Methods", 1)[1]
    found: dict[str, str] = {}
    for row in re.finditer(r"^\| `([a-z_]+\.[a-z_]+)`(?: / `[a-z_.]+`)? \| ([^|]*) \|", text, re.M):
        arg = re.search(r'"(path|out)"', row.group(2))
        if arg:
            found[row.group(1)] = arg.group(1)
    return found


class Picker:
    """Stands in for the native dialogs: answers ``path`` (what the person chose)."""

    def __init__(self) -> None:
        self.path: Path | None = None

    def __call__(self, kind: str, title: str, name_filter: str = "") -> str | None:
        return str(self.path) if self.path is not None else None


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    api = Api(Settings(tmp_path / "settings.json"), demo_dir=tmp_path / "demo")
    api.pick_path = Picker()  # type: ignore[attr-defined]
    api.open_project(make_project(tmp_path / "photos", {"a.png": (40, 30), "b.png": (30, 40)}))
    yield api
    api.close_project()
    api.jobs.shutdown()


def refused(answer: dict[str, Any], code: str, *names: str) -> str:
    assert "error" in answer, answer
    assert answer["error"]["code"] == code, answer
    for name in names:
        assert name in answer["error"]["message"], (name, answer["error"]["message"])
    return str(answer["error"]["message"])


def transfer_jobs(api: Api) -> list[str]:
    """Export and import jobs started so far (the probe of a new project is one too)."""
    return [j.kind for j in api.jobs.jobs.values() if j.kind in ("export", "import")]


def wait_job(api: Api, answer: dict[str, Any]) -> Any:
    assert "ok" in answer, answer
    job = api.jobs.jobs[answer["ok"]["job"]]
    assert job.future is not None
    job.future.result(timeout=30)
    return job


def test_every_documented_path_argument_is_covered_here() -> None:
    assert documented_path_methods() == PATH_METHODS


# -- export: only into a folder picked in the native dialog -------------------------------------

@pytest.fixture
def picked_out(api: Api, tmp_path: Path) -> Path:
    out = tmp_path / "exports"
    (out / "sub").mkdir(parents=True)
    api.pick_path.path = out  # type: ignore[attr-defined]
    assert api.call("export.pick_out", {}) == {"ok": {"folder": str(out)}}
    return out


def test_export_without_a_picked_folder_is_refused(api: Api) -> None:
    for method in ("export.target", "export.run"):
        refused(api.call(method, {"format": "coco"}), "no_output", "Choose a folder")
    assert transfer_jobs(api) == []


@pytest.mark.parametrize("method", ["export.target", "export.run"])
def test_export_out_must_be_the_picked_folder(api: Api, picked_out: Path, tmp_path: Path,
                                              method: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "link-out").symlink_to(elsewhere, target_is_directory=True)
    for out in (str(elsewhere), f"{picked_out}/../elsewhere", str(picked_out / "sub"),
                str(tmp_path / "link-out"), "exports", "/", str(api.require_project().folder)):
        message = refused(api.call(method, {"format": "coco", "out": out}), "not_picked",
                          "was not chosen as an export folder")
        assert str(Path(out).resolve()) in message, "the message names the folder it refused"
    refused(api.call(method, {"format": "coco", "out": f"{picked_out}\x00"}), "invalid_argument",
            "'out'", "NUL")
    assert transfer_jobs(api) == [], "nothing was started"
    assert list(elsewhere.iterdir()) == [] and list(picked_out.iterdir()) == [picked_out / "sub"]


def test_the_picked_folder_is_known_by_its_real_path(api: Api, picked_out: Path,
                                                     tmp_path: Path) -> None:
    (tmp_path / "link-to-exports").symlink_to(picked_out, target_is_directory=True)
    want = {"path": str(picked_out / "photos-coco")}
    for out in (str(picked_out), f"{picked_out}/sub/..", f"{picked_out}/./",
                str(tmp_path / "link-to-exports")):
        assert api.call("export.target", {"format": "coco", "out": out}) == {"ok": want}, out


# -- import: a picked source, or a file inside the project ---------------------------------------

LABELME = {"version": "5.0.0", "flags": {}, "imagePath": "a.png", "imageHeight": 30,
           "imageWidth": 40, "imageData": None,
           "shapes": [{"label": "moth", "points": [[1, 1], [20, 20]], "shape_type": "rectangle",
                       "flags": {}, "group_id": None}]}


def test_import_reads_only_picked_sources_or_the_project(api: Api, tmp_path: Path) -> None:
    project = api.require_project().folder
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.json").write_text(json.dumps(LABELME), encoding="utf-8")
    (outside / "other.json").write_text(json.dumps(LABELME), encoding="utf-8")
    (project / "escape").symlink_to(outside, target_is_directory=True)
    for path in (str(outside), str(outside / "a.json"), f"{project}/../outside",
                 str(project / "escape"), str(project / "escape" / "a.json"),
                 str(project / ".fieldmark"), str(project / ".fieldmark" / "project.db"),
                 "photos", "/"):
        message = refused(api.call("import.run", {"format": "labelme", "path": path}),
                          "not_picked", "was not chosen for import")
        assert str(Path(path).resolve()) in message
    refused(api.call("import.run", {"format": "labelme", "path": f"{project}\x00"}),
            "invalid_argument", "'path'", "NUL")
    assert transfer_jobs(api) == [] and api.require_project().classes() == []

    # Picking the folder allows that folder only, not a file beside or inside it by another name.
    api.pick_path.path = outside  # type: ignore[attr-defined]
    assert api.call("import.pick", {"format": "labelme"})["ok"] == {"path": str(outside), "kind": "folder"}
    refused(api.call("import.run", {"format": "labelme", "path": str(outside / "other.json")}),
            "not_picked")
    job = wait_job(api, api.call("import.run", {"format": "labelme", "path": f"{project}/escape"}))
    assert job.state == "done", job.error
    assert [c["name"] for c in api.require_project().classes()] == ["moth"]


def test_a_labelme_file_inside_the_project_imports_without_a_dialog(api: Api) -> None:
    project = api.require_project().folder
    (project / "a.json").write_text(json.dumps(LABELME), encoding="utf-8")
    job = wait_job(api, api.call("import.run", {"format": "labelme", "path": str(project)}))
    assert job.state == "done", job.error
    assert len(api.require_project().all_shapes(("accepted",))) == 1


# -- project.open from the page: recent projects and the open one only ---------------------------

def page_open(api: Api, path: str) -> dict[str, Any]:
    """``project.open`` as the bridge runs it for the page."""
    args = {"path": path}
    return handlers.page_refusal(api, "project.open", args) or api.call("project.open", args)


def test_the_page_cannot_open_a_folder_the_person_never_chose(api: Api, tmp_path: Path) -> None:
    photos = api.require_project().folder
    stranger = tmp_path / "someone else's folder"
    stranger.mkdir()
    (tmp_path / "link").symlink_to(stranger, target_is_directory=True)
    for path in (str(stranger), f"{photos}/../someone else's folder", str(tmp_path / "link"),
                 str(tmp_path), "/"):
        message = refused(page_open(api, path), "not_picked", "not one of your recent projects",
                          "Ctrl+O")
        assert str(Path(path).resolve()) in message
    assert not (stranger / ".fieldmark").exists() and not (tmp_path / ".fieldmark").exists()
    assert api.require_project().folder == photos, "the open project stays open"
    # Not a folder at all: project.open's own answer, naming the path.
    refused(page_open(api, str(photos / "a.png")), "not_a_folder", str(photos / "a.png"))
    refused(page_open(api, f"{photos}\x00"), "invalid_argument", "'path'")
    # The shell (a dropped folder) and the CLI call the Api itself: the person named the path.
    assert api.call("project.open", {"path": str(stranger)})["ok"]["name"] == "someone else's folder"


def test_the_page_reopens_recent_projects_and_the_open_one(api: Api, tmp_path: Path) -> None:
    photos = api.require_project().folder
    other = make_project(tmp_path / "other", {"c.png": (20, 20)})
    assert api.call("project.open", {"path": str(other)})["ok"]["name"] == "other"  # e.g. dropped
    (tmp_path / "to-photos").symlink_to(photos, target_is_directory=True)
    for path, name in ((str(photos), "photos"), (f"{other}/../photos/", "photos"),
                       (str(other), "other"), (str(tmp_path / "to-photos"), "photos")):
        assert page_open(api, path)["ok"]["name"] == name, path


# -- models.install ------------------------------------------------------------------------------

def test_models_install_refuses_what_is_not_a_pack_and_copies_nothing(
        api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI and the shell may name any pack path here: nothing is copied before the pack
    verifies. The page may not name one at all."""
    from backend.api.ai_handlers import services

    packs = tmp_path / "packs"
    monkeypatch.setenv("FIELDMARK_PACKS_DIR", str(packs))
    monkeypatch.setenv("FIELDMARK_DATA_DIR", str(tmp_path / "data"))
    not_a_pack = tmp_path / "<b>not a pack<i>"
    not_a_pack.mkdir()
    (not_a_pack / "notes.txt").write_text("hello", encoding="utf-8")
    ai = services(api)
    try:
        page = handlers.page_refusal(api, "models.install", {"path": str(not_a_pack)})
        refused(page, "not_picked", "Install from file or folder")
        refused(api.call("models.install", {"path": str(tmp_path / "missing")}), "not_found",
                str(tmp_path / "missing"))
        refused(api.call("models.install", {"path": f"{not_a_pack}\x00"}), "invalid_argument", "NUL")
        job = ai.jobs.jobs[api.call("models.install", {"path": str(not_a_pack)})["ok"]["job"]]
        assert job.future is not None
        job.future.result(timeout=30)
        assert job.state == "failed" and job.error is not None
        assert str(not_a_pack) in job.error["message"] and "manifest.json" in job.error["message"]
        assert [p.name for p in packs.glob("*") if not p.name.startswith(".")] == []
    finally:
        ai.shutdown()


# -- ids ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [1 << 63, -(1 << 63) - 1, 10**30, "1", "../1", 1.5, True, None, [1]])
def test_ids_from_the_page_are_refused_before_the_store(api: Api, bad: Any) -> None:
    for method, args, field in (("image.get", {"id": bad}, "id"),
                                ("shapes.list", {"image_id": bad}, "image_id"),
                                ("shapes.delete", {"id": bad}, "id"),
                                ("classes.rename", {"id": bad, "name": "x"}, "id"),
                                ("shapes.add", {"image_id": 1, "kind": "box", "geometry": [0, 0, 1, 1],
                                                "class_id": bad}, "class_id")):
        if bad is None and field == "class_id":
            continue  # no class is allowed
        answer = api.call(method, args)
        assert answer["error"]["code"] == "invalid_argument", (method, bad, answer)
        assert f"'{field}'" in answer["error"]["message"]
    assert api.call("image.get", {"id": (1 << 63) - 1})["error"]["code"] == "not_found"
