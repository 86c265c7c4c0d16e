"""Project lifecycle through the Api: open, reopen, switch, demo, recent list, background probe."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from backend.api import service
from backend.api.service import Api, demo_source
from backend.api.settings import MAX_RECENT, Settings
from backend.imaging import SUPPORTED_EXTENSIONS
from backend.store import Project

TIMEOUT = 10.0


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, name: str, payload: Any) -> None:
        with self._lock:
            self.items.append((name, payload))

    def named(self, name: str) -> list[Any]:
        with self._lock:
            return [p for n, p in self.items if n == name]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    api = Api(Settings(tmp_path / "data" / "settings.json"), demo_dir=tmp_path / "data" / "demo")
    yield api
    api.close_project()
    api.jobs.shutdown()


@pytest.fixture
def events(api: Api) -> Events:
    ev = Events()
    api.listeners.append(ev)
    return ev


def _image(path: Path, w: int = 30, h: int = 20) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), (10, 200, 30)).save(path)
    return path


def _folder(root: Path, name: str, n: int = 2) -> Path:
    folder = root / name
    folder.mkdir()
    for i in range(n):
        _image(folder / f"img{i}.png", 10 + i, 5 + i)
    return folder


def _wait_probes(api: Api) -> list[Any]:
    jobs = [j for j in list(api.jobs.jobs.values()) if j.kind == "probe"]
    for job in jobs:
        assert job.future is not None
        job.future.result(timeout=TIMEOUT)
    return jobs


def _by_name(api: Api) -> dict[str, dict[str, Any]]:
    return {im["name"]: im for im in api.call("images.list", {})["ok"]}


# -- open / reopen / switch --------------------------------------------------------------------

def test_open_returns_summary_and_updates_recent(api: Api, events: Events, tmp_path: Path) -> None:
    folder = _folder(tmp_path, "field trip", 3)
    (folder / "notes.txt").write_text("not an image", encoding="utf-8")
    summary = api.call("project.open", {"path": str(folder)})["ok"]
    assert summary == {"path": str(folder.resolve()), "name": "field trip", "demo": False, "image_count": 3}
    assert events.named("project.changed") == [{"project": summary}]
    info = api.call("app.info", {})["ok"]
    assert info["project"] == summary
    assert info["recent"] == [str(folder.resolve())]
    assert api.call("project.recent", {})["ok"] == [
        {"path": str(folder.resolve()), "name": "field trip", "exists": True}]
    assert (folder / ".fieldmark").is_dir()  # labels live next to the images


def test_recent_most_recent_first_deduplicated_and_capped(api: Api, tmp_path: Path) -> None:
    folders = [_folder(tmp_path, f"p{i:02d}", 0) for i in range(MAX_RECENT + 2)]
    for f in folders:
        assert "ok" in api.call("project.open", {"path": str(f)})
    # Reopen an old one through another spelling of its path: it moves to the front, once.
    other_spelling = folders[4] / ".." / folders[3].name
    assert "ok" in api.call("project.open", {"path": str(other_spelling)})
    recent = [r["path"] for r in api.call("project.recent", {})["ok"]]
    expected = [str(folders[3].resolve())] + [str(f.resolve()) for f in reversed(folders) if f != folders[3]]
    assert recent == expected[:MAX_RECENT]
    assert len(set(recent)) == len(recent)


def test_recent_reports_folders_that_are_gone(api: Api, tmp_path: Path) -> None:
    a, b = _folder(tmp_path, "a", 0), _folder(tmp_path, "b", 0)
    api.call("project.open", {"path": str(a)})
    api.call("project.open", {"path": str(b)})
    shutil.rmtree(a)
    recent = api.call("project.recent", {})["ok"]
    assert [(r["name"], r["exists"]) for r in recent] == [("b", True), ("a", False)]


def test_opening_the_same_folder_again_rescans(api: Api, events: Events, tmp_path: Path) -> None:
    folder = _folder(tmp_path, "photos", 2)
    api.call("project.open", {"path": str(folder)})
    _wait_probes(api)
    _image(folder / "sub" / "new.png", 40, 25)
    answer = api.call("project.open", {"path": str(folder) + "/"})
    assert "ok" in answer, answer  # not project_locked
    assert answer["ok"]["image_count"] == 3
    assert events.named("project.changed")[-1] == {"project": answer["ok"]}
    assert "sub/new.png" in {im["relpath"] for im in api.call("images.list", {})["ok"]}


def test_files_found_by_a_rescan_are_probed_too(api: Api, tmp_path: Path) -> None:
    folder = _folder(tmp_path, "photos", 1)
    api.call("project.open", {"path": str(folder)})
    _wait_probes(api)
    _image(folder / "later.png", 40, 25)
    api.call("project.open", {"path": str(folder)})
    _wait_probes(api)
    later = _by_name(api)["later.png"]
    assert (later["width"], later["height"], later["error"]) == (40, 25, None)


def test_open_a_non_folder(api: Api, tmp_path: Path) -> None:
    f = _image(tmp_path / "single.png")
    for path in (str(f), str(tmp_path / "nowhere"), "x" * 300, str(tmp_path / ("y" * 300))):
        err = api.call("project.open", {"path": path})["error"]
        assert err["code"] == "not_a_folder", (path[:40], err)
        assert "folder" in err["message"]
    assert api.project is None


def test_open_path_validation(api: Api) -> None:
    for args in ({}, {"path": ""}, {"path": "   "}, {"path": 3}, {"path": None}):
        err = api.call("project.open", args)["error"]
        assert err["code"] == "invalid_argument" and "'path'" in err["message"], args


def test_second_folder_closes_the_first(api: Api, events: Events, tmp_path: Path) -> None:
    first, second = _folder(tmp_path, "first", 1), _folder(tmp_path, "second", 2)
    api.call("project.open", {"path": str(first)})
    summary = api.call("project.open", {"path": str(second)})["ok"]
    assert (summary["name"], summary["image_count"]) == ("second", 2)
    assert [p["project"]["name"] for p in events.named("project.changed")] == ["first", "second"]
    with Project.open(first) as p:  # its lock was released
        assert len(p.images()) == 1
    with pytest.raises(Exception, match="open"):
        Project.open(second)  # the open one is still locked


def test_locked_folder_keeps_the_current_project(api: Api, tmp_path: Path) -> None:
    current, other = _folder(tmp_path, "current", 1), _folder(tmp_path, "other", 1)
    api.call("project.open", {"path": str(current)})
    with Project.open(other):
        err = api.call("project.open", {"path": str(other)})["error"]
    assert err["code"] == "project_locked"
    assert api.call("app.info", {})["ok"]["project"]["name"] == "current"
    assert len(api.call("images.list", {})["ok"]) == 1


def test_close_project(api: Api, tmp_path: Path) -> None:
    folder = _folder(tmp_path, "photos", 1)
    api.call("project.open", {"path": str(folder)})
    api.close_project()
    assert api.call("app.info", {})["ok"]["project"] is None
    assert api.call("images.list", {})["error"]["code"] == "no_project"
    Project.open(folder).close()
    api.close_project()  # twice is fine


def test_broken_listener_does_not_break_open(api: Api, tmp_path: Path) -> None:
    def broken(name: str, payload: Any) -> None:
        raise RuntimeError("page is gone")

    good = Events()
    api.listeners[:] = [broken, good]
    folder = _folder(tmp_path, "photos", 2)
    answer = api.call("project.open", {"path": str(folder)})
    assert "ok" in answer, answer
    _wait_probes(api)
    assert [p["project"]["name"] for p in good.named("project.changed")] == ["photos"]
    assert good.named("images.changed"), "later listeners still hear events"
    assert [j.state for j in api.jobs.jobs.values()] == ["done"]


# -- demo --------------------------------------------------------------------------------------

def test_open_demo_copies_once_and_keeps_labels(api: Api, tmp_path: Path) -> None:
    sources = sorted(p.name for p in demo_source().iterdir() if p.suffix.lower() in SUPPORTED_EXTENSIONS)
    assert sources, "the bundled demo images are missing"
    summary = api.open_demo()
    assert summary["demo"] is True and summary["image_count"] == len(sources)
    assert sorted(p.name for p in api.demo_dir.iterdir() if p.is_file()) == sources
    assert api.call("app.info", {})["ok"]["recent"] == []  # the demo is not a recent project
    cls = api.call("classes.add", {"name": "cat"})["ok"]
    first = api.call("images.list", {})["ok"][0]
    api.call("shapes.add", {"image_id": first["id"], "kind": "point", "geometry": [1, 2], "class_id": cls["id"]})
    api.close_project()
    # A changed copy is kept (the user's file, not ours to overwrite).
    victim = api.demo_dir / sources[0]
    victim.write_bytes(victim.read_bytes())
    os.utime(victim, (1_000_000, 1_000_000))
    summary = api.open_demo()
    assert summary["demo"] is True and summary["image_count"] == len(sources)
    assert victim.stat().st_mtime == 1_000_000
    assert [c["name"] for c in api.call("classes.list", {})["ok"]] == ["cat"]
    assert api.call("shapes.list", {"image_id": first["id"]})["ok"][0]["geometry"] == [1, 2]


# -- background probe --------------------------------------------------------------------------

def test_probe_fills_sizes_and_flags_unreadable_files(api: Api, events: Events, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    _image(folder / "good.png", 30, 20)
    _image(folder / "nested" / "good.jpg", 12, 34)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.png").write_text("hello, I am not a PNG\n", encoding="utf-8")
    summary = api.call("project.open", {"path": str(folder)})["ok"]
    assert summary["image_count"] == 4
    jobs = _wait_probes(api)
    assert len(jobs) == 1 and jobs[0].state == "done"
    assert jobs[0].result == {"probed": 4, "unreadable": 2}
    images = _by_name(api)
    assert (images["good.png"]["width"], images["good.png"]["height"], images["good.png"]["pages"]) == (30, 20, 1)
    assert (images["good.jpg"]["width"], images["good.jpg"]["height"]) == (12, 34)
    assert images["good.png"]["error"] is None and images["good.jpg"]["error"] is None
    for name in ("empty.jpg", "text.png"):
        assert images[name]["width"] is None
        assert isinstance(images[name]["error"], str) and name in images[name]["error"]
    changed = [i for p in events.named("images.changed") for i in p["ids"]]
    assert sorted(changed) == sorted(im["id"] for im in images.values())
    assert events.named("job.done")[0]["result"] == {"probed": 4, "unreadable": 2}
    # A reopen does not probe what is already known.
    api.close_project()
    api.call("project.open", {"path": str(folder)})
    assert len(_wait_probes(api)) == 1


def test_close_during_probe_stops_it_cleanly(api: Api, events: Events, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    folder = _folder(tmp_path, "many", 6)
    started = threading.Event()
    real_probe = service.probe

    def slow_probe(path: Path) -> Any:
        # Hold the first file until close_project asks the job to stop.
        if not started.is_set():
            started.set()
            job = next(j for j in api.jobs.jobs.values() if j.kind == "probe")
            assert job.cancel_event.wait(TIMEOUT)
        return real_probe(path)

    monkeypatch.setattr(service, "probe", slow_probe)
    api.call("project.open", {"path": str(folder)})
    assert started.wait(TIMEOUT)
    with caplog.at_level(logging.INFO):
        api.close_project()
    job = next(j for j in api.jobs.jobs.values() if j.kind == "probe")
    assert job.future is not None and job.future.done()
    assert job.state in ("done", "cancelled")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not events.named("job.failed")
    with Project.open(folder) as p:  # released, and the probe stopped after the first file
        assert sum(im["width"] is not None for im in p.images()) <= 1


# -- image.get ---------------------------------------------------------------------------------

def test_image_get_multichannel_16bit_tiff(api: Api, tmp_path: Path) -> None:
    folder = tmp_path / "scope"
    folder.mkdir()
    data = np.random.default_rng(0).integers(0, 60000, (3, 2, 40, 50), dtype=np.uint16)  # Z, C, Y, X
    tifffile.imwrite(folder / "stack.tif", data, imagej=True, metadata={"axes": "ZCYX"})
    api.call("project.open", {"path": str(folder)})
    image_id = api.call("images.list", {})["ok"][0]["id"]
    got = api.call("image.get", {"id": image_id})["ok"]
    assert (got["width"], got["height"], got["pages"], got["channels"], got["dtype"], got["error"]) == (
        50, 40, 3, 2, "uint16", None)
    assert got["name"] == "stack.tif"
    _wait_probes(api)
    listed = api.call("images.list", {})["ok"][0]
    assert (listed["width"], listed["height"], listed["pages"]) == (50, 40, 3)


def test_image_get_records_why_a_file_is_unreadable(api: Api, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    _image(folder / "fine.png")
    api.call("project.open", {"path": str(folder)})
    _wait_probes(api)
    image_id = api.call("images.list", {})["ok"][0]["id"]
    (folder / "fine.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # broken after the probe
    got = api.call("image.get", {"id": image_id})["ok"]
    assert got["channels"] is None and got["dtype"] is None
    assert "fine.png" in got["error"]
    assert _by_name(api)["fine.png"]["error"] == got["error"]
    # Repaired: the next look clears the error.
    _image(folder / "fine.png", 7, 9)
    got = api.call("image.get", {"id": image_id})["ok"]
    assert (got["error"], got["width"], got["height"], got["channels"], got["dtype"]) == (None, 7, 9, 3, "uint8")
