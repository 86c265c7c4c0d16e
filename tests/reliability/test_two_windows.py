"""Two windows, one project: the second is refused with a message, never let in to corrupt it.

"Window" here is what a window holds: an ``Api`` (the window's backend), in this process or in
a child process (``sys.executable``), since the lock's guarantees are about processes. The page
side of the same story is in tests/e2e/test_project_access.py.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from backend.api.service import Api
from backend.api.settings import Settings
from backend.errors import ProjectLocked
from backend.store import Project
from tests.reliability.crash_state import integrity

ROOT = Path(__file__).resolve().parents[2]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL and fcntl")


def _folder(path: Path, n: int = 2) -> Path:
    path.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (16 + i, 12), (30 * i, 90, 20)).save(path / f"img{i}.png")
    return path


def _spellings(folder: Path, tmp_path: Path) -> list[str]:
    """Other names of ``folder``: a symlink to it, a trailing slash, a detour through ``..``."""
    link = tmp_path / "link-to-photos"
    link.symlink_to(folder, target_is_directory=True)
    return [str(link), str(link) + "/", str(folder) + "/", str(folder / ".." / folder.name),
            str(folder / "."), str(link / ".." / folder.name)]


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator:
    made: list[Api] = []

    def make(name: str) -> Api:
        api = Api(Settings(tmp_path / name / "settings.json"), demo_dir=tmp_path / name / "demo")
        made.append(api)
        return api

    yield make
    for api in made:
        api.shutdown()


def _add_box(api: Api) -> int:
    image = api.call("images.list", {})["ok"][0]["id"]
    answer = api.call("shapes.add", {"image_id": image, "kind": "box", "geometry": [1, 1, 5, 5]})
    assert "ok" in answer, answer
    return int(answer["ok"]["id"])


def _integrity(folder: Path) -> str:
    return integrity(folder / ".fieldmark" / "project.sqlite")


def test_two_windows_in_one_process_whatever_the_spelling(make_api, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    photos, other = _folder(tmp_path / "photos"), _folder(tmp_path / "other")
    first, second = make_api("first"), make_api("second")
    assert first.call("project.open", {"path": str(photos)})["ok"]["path"] == str(photos.resolve())
    box = _add_box(first)
    assert second.call("project.open", {"path": str(other)})["ok"]["path"] == str(other.resolve())

    spellings = _spellings(photos, tmp_path)
    monkeypatch.chdir(other)
    for spelling in [str(photos), *spellings, os.path.join("..", "photos")]:
        answer = second.call("project.open", {"path": spelling})
        assert answer["error"]["code"] == "project_locked", (spelling, answer)
        assert answer["error"]["message"] == (
            f"The project '{photos.resolve()}' is already open in another Fieldmark window "
            f"(pid {os.getpid()}). Close it there first.")
        # The refused window keeps its own project and goes on working.
        assert second.summary()["path"] == str(other.resolve())
        _add_box(second)
        # The first window's own re-open under another name is a rescan, not a lock conflict.
        assert first.call("project.open", {"path": spelling})["ok"]["path"] == str(photos.resolve())
    _add_box(first)

    first.close_project()  # the first window moves on: now the second may have the project
    assert second.call("project.open", {"path": spellings[0]})["ok"]
    shapes = second.call("shapes.list", {"image_id": second.call("images.list", {})["ok"][0]["id"]})["ok"]
    assert box in [s["id"] for s in shapes] and len(shapes) == 2
    second.close_project()
    assert _integrity(photos) == "ok"


def _child(code: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]


# A window in another process that keeps labeling: one box per edit, its id printed once saved.
KEEP_EDITING = """
import sys
from pathlib import Path
from backend.api.service import Api
from backend.api.settings import Settings
api = Api(Settings(Path(sys.argv[2]) / "settings.json"), demo_dir=Path(sys.argv[2]) / "demo")
assert "ok" in api.call("project.open", {"path": sys.argv[1]})
image = api.call("images.list", {})["ok"][0]["id"]
print("ready", flush=True)
i = 0
while True:
    answer = api.call("shapes.add", {"image_id": image, "kind": "box", "geometry": [i % 9, 1, 12, 9]})
    print(answer["ok"]["id"], flush=True)
    i += 1
"""


@posix_only
def test_a_window_in_another_process_is_refused_mid_write_and_freed_by_sigkill(
        make_api, tmp_path: Path) -> None:
    photos, other = _folder(tmp_path / "photos"), _folder(tmp_path / "other")
    spellings = _spellings(photos, tmp_path)
    writer = _child(KEEP_EDITING, str(photos), str(tmp_path / "writer-data"))
    saved: list[int] = []
    second = make_api("second")
    try:
        assert writer.stdout.readline().strip() == "ready", writer.stderr.read()  # type: ignore[union-attr]
        # Knock on the door over and over while the other window commits edit after edit.
        for attempt in range(30):
            line = writer.stdout.readline()  # type: ignore[union-attr]
            assert line.strip().isdigit(), writer.stderr.read()  # type: ignore[union-attr]
            saved.append(int(line))
            answer = second.call("project.open", {"path": spellings[attempt % len(spellings)]})
            assert answer["error"]["code"] == "project_locked", answer
            assert f"(pid {writer.pid})" in answer["error"]["message"]
            assert str(photos.resolve()) in answer["error"]["message"]
            assert second.project is None
        assert second.call("project.open", {"path": str(other)})["ok"]["image_count"] == 2
        _add_box(second)  # the refused window works on another folder meanwhile
    finally:
        _kill(writer)  # mid-write, and without closing: the lock file stays, with its pid
    assert (photos / ".fieldmark" / "lock").read_text().strip() == str(writer.pid)

    answer = second.call("project.open", {"path": str(photos)})
    assert answer["ok"]["path"] == str(photos.resolve()), answer
    stored = {s["id"] for s in second.call("shapes.list", {"image_id": _first_image(second)})["ok"]}
    assert set(saved) <= stored  # every edit the other window reported saved is there
    _add_box(second)
    second.close_project()
    assert _integrity(photos) == "ok"


def _first_image(api: Api) -> int:
    return int(api.call("images.list", {})["ok"][0]["id"])


TRY_OPEN = """
import json, sys
from pathlib import Path
from backend.api.service import Api
from backend.api.settings import Settings
api = Api(Settings(Path(sys.argv[1]) / "settings.json"), demo_dir=Path(sys.argv[1]) / "demo")
print(json.dumps([api.call("project.open", {"path": p}) for p in sys.argv[2:]]))
api.shutdown()
"""


@posix_only
def test_a_window_in_another_process_is_refused_whatever_the_spelling(make_api, tmp_path: Path) -> None:
    photos, other = _folder(tmp_path / "photos"), _folder(tmp_path / "other")
    first = make_api("first")
    first.call("project.open", {"path": str(photos)})
    spellings = _spellings(photos, tmp_path)
    out, err = _child(TRY_OPEN, str(tmp_path / "child-data"), *spellings, str(other)).communicate(timeout=60)
    *refused, opened = json.loads(out or "null") or pytest.fail(err)
    for spelling, answer in zip(spellings, refused, strict=True):
        assert answer["error"]["code"] == "project_locked", (spelling, answer)
        assert f"'{photos.resolve()}' is already open in another Fieldmark window (pid {os.getpid()})" \
            in answer["error"]["message"]
    assert opened["ok"]["path"] == str(other.resolve())
    _add_box(first)  # still ours


def _no_flock(monkeypatch: pytest.MonkeyPatch, *, lockf_too: bool = False, code: int = errno.ENOLCK) -> None:
    """The lock file lives on a drive without flock (some network shares and FUSE mounts)."""
    import fcntl

    def refuse(fd: int, op: int) -> None:
        if op & fcntl.LOCK_UN:
            return
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "flock", refuse)
    if lockf_too:
        monkeypatch.setattr(fcntl, "lockf", refuse)


NO_FLOCK_TRY_OPEN = """
import errno, fcntl, os
def refuse(fd, op):
    raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
fcntl.flock = refuse
""" + TRY_OPEN


@posix_only
def test_without_flock_the_record_lock_still_keeps_windows_apart(make_api, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    photos = _folder(tmp_path / "photos")
    _no_flock(monkeypatch)
    first = make_api("first")
    assert first.call("project.open", {"path": str(photos)})["ok"]
    out, err = _child(NO_FLOCK_TRY_OPEN, str(tmp_path / "child-data"), str(photos)).communicate(timeout=60)
    [answer] = json.loads(out or "null") or pytest.fail(err)
    assert answer["error"]["code"] == "project_locked", answer
    assert f"(pid {os.getpid()})" in answer["error"]["message"]
    _add_box(first)
    first.close_project()
    out, err = _child(NO_FLOCK_TRY_OPEN, str(tmp_path / "child-data"), str(photos)).communicate(timeout=60)
    assert "ok" in json.loads(out or "null")[0], err  # released on close


@posix_only
@pytest.mark.parametrize("code", [errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS])
def test_a_drive_without_any_file_lock_is_refused_clearly(make_api, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    photos, other = _folder(tmp_path / "photos"), _folder(tmp_path / "other")
    api = make_api("only")
    assert api.call("project.open", {"path": str(other)})["ok"]
    with monkeypatch.context() as patch:
        _no_flock(patch, lockf_too=True, code=code)
        answer = api.call("project.open", {"path": str(photos)})
    assert answer["error"]["code"] == "store_error", answer
    message = answer["error"]["message"]
    assert f"The drive holding the project '{photos.resolve()}' does not support file locks" in message
    assert "to a folder on this computer's own disk and open the copy" in message
    assert api.summary()["path"] == str(other.resolve())  # the open project was kept
    assert api.call("project.open", {"path": str(photos)})["ok"]  # nothing was left held


@posix_only
def test_a_failing_lock_call_is_an_error_for_a_person(make_api, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    photos = _folder(tmp_path / "photos")
    _no_flock(monkeypatch, code=errno.EIO)  # the drive went away under the lock call
    answer = make_api("only").call("project.open", {"path": str(photos)})
    assert answer["error"]["code"] == "store_error", answer
    assert answer["error"]["message"].startswith(f"Fieldmark could not lock the project '{photos.resolve()}'")
    assert "Check that the drive is still connected" in answer["error"]["message"]


def test_a_second_project_object_in_the_same_process_cannot_slip_past(tmp_path: Path) -> None:
    """Below the Api too: the store refuses a second open, and a refused open holds nothing."""
    photos = _folder(tmp_path / "photos")
    with Project.open(photos) as first:
        for spelling in _spellings(photos, tmp_path):
            with pytest.raises(ProjectLocked):
                Project.open(spelling)
        first.sync_images([("img0.png", 1, 1.0)])
    with Project.open(photos) as again:
        assert [im["name"] for im in again.images()] == ["img0.png"]


def test_two_plain_starts_share_the_demo_and_the_second_is_told_so(make_api, tmp_path: Path) -> None:
    """``python main.py`` twice: both windows go for the same demo copy in the user data folder."""
    first = make_api("first")
    second = Api(Settings(tmp_path / "second" / "settings.json"), demo_dir=first.demo_dir)
    try:
        assert first.open_demo()["demo"] is True
        with pytest.raises(ProjectLocked) as info:
            second.open_demo()
        assert info.value.message == (
            f"The demo project is already open in another Fieldmark window (pid {os.getpid()}). "
            "Open a folder of your own images here, or use the demo in that window.")
        assert second.project is None
        assert second.call("project.open", {"path": str(_folder(tmp_path / "mine"))})["ok"]
        _add_box(first)
    finally:
        second.shutdown()
