"""A project folder Fieldmark cannot write: a clear refusal that names the folder, never a crash.

Decision: such a project is refused, not shown read-only. Every part of a window writes to the
project (the file scan, probed image sizes, thumbnails, undo history), so a view-only mode would
be a second app; the message says how to get a writable copy, labels included.

Root ignores permission bits, and CI runs as root: there each check runs in a forked child that
has become 'nobody' (forked, so the child needs no access to where Python is installed). The
folders live in a directory 'nobody' can reach.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from backend.api.service import Api
from backend.api.settings import Settings
from backend.errors import FieldmarkError
from backend.store import Project
from tests.reliability.crash_state import integrity
from tests.unprivileged import NOBODY, as_unprivileged

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions and fork")


@pytest.fixture
def base() -> Iterator[Path]:
    """A folder every user may enter (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="fieldmark-ro-"))
    path.chmod(0o777)
    yield path
    for root, dirs, _ in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
    shutil.rmtree(path, ignore_errors=True)


def _folder(path: Path, n: int = 2) -> Path:
    path.mkdir()
    for i in range(n):
        Image.new("RGB", (16 + i, 12), (30 * i, 90, 20)).save(path / f"img{i}.png")
    return path


def _give_away(path: Path) -> None:
    """Make everything under ``path`` belong to the user the checks run as."""
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), NOBODY, NOBODY)
    os.chown(path, NOBODY, NOBODY)


def _read_only(path: Path) -> None:
    for root, dirs, files in os.walk(path):
        for name in files:
            os.chmod(os.path.join(root, name), 0o444)
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o555)
    path.chmod(0o555)


def _open_then_open(base: Path, folder: Path, fallback: Path | None = None) -> dict[str, Any]:
    """A window tries ``folder``, then (the person's next step) a writable ``fallback``."""
    def work() -> dict[str, Any]:
        api = Api(Settings(base / "user" / "settings.json"), demo_dir=base / "user" / "demo")
        try:
            answer = {"first": api.call("project.open", {"path": str(folder)}), "project": api.summary()}
            if fallback is not None:
                answer["then"] = api.call("project.open", {"path": str(fallback)})
                image = api.call("images.list", {})["ok"][0]["id"]
                answer["edit"] = api.call("shapes.add", {"image_id": image, "kind": "point", "geometry": [1, 1]})
            return answer
        finally:
            api.shutdown()

    (base / "user").mkdir(exist_ok=True)
    _give_away(base / "user")
    return as_unprivileged(work)


def _labelled(folder: Path) -> int:
    with Project.open(folder) as p:
        p.sync_images([("img0.png", 1, 1.0)])
        return int(p.add_shape(p.images()[0]["id"], "box", [1, 1, 8, 8])["id"])


def _labels_intact(folder: Path, shape: int) -> None:
    db = folder / ".fieldmark" / "project.sqlite"
    assert integrity(db) == "ok"
    raw = sqlite3.connect(db)
    try:
        assert raw.execute("SELECT id FROM shapes").fetchall() == [(shape,)]
    finally:
        raw.close()


def test_a_new_project_in_a_read_only_folder_is_refused_and_the_window_goes_on(base: Path) -> None:
    photos, writable = _folder(base / "photos"), _folder(base / "writable")
    _give_away(writable)
    _read_only(photos)
    answer = _open_then_open(base, photos, writable)
    error = answer["first"]["error"]
    assert error["code"] == "store_error", answer
    assert error["message"].startswith(f"The folder '{photos.resolve()}' is read-only")
    assert "Copy the images to a folder you can write to" in error["message"]
    assert answer["project"] is None
    assert answer["then"]["ok"]["path"] == str(writable.resolve())
    assert "ok" in answer["edit"], answer
    assert not (photos / ".fieldmark").exists()


def test_an_existing_project_made_read_only_is_refused_and_its_labels_kept(base: Path) -> None:
    photos = _folder(base / "photos")
    shape = _labelled(photos)
    _give_away(photos)
    _read_only(photos)
    error = _open_then_open(base, photos)["first"]["error"]
    assert error["code"] == "store_error", error
    message = error["message"]
    assert message.startswith(f"The project folder '{photos.resolve()}' is read-only")
    assert "Copy the images, together with the hidden '.fieldmark' folder that holds the labels" in message
    _labels_intact(photos, shape)


def test_a_read_only_project_database_is_refused_by_name(base: Path) -> None:
    photos = _folder(base / "photos")
    shape = _labelled(photos)
    _give_away(photos)
    (photos / ".fieldmark" / "project.sqlite").chmod(0o444)
    error = _open_then_open(base, photos)["first"]["error"]
    assert error["code"] == "store_error", error
    assert f"The project database '{photos.resolve() / '.fieldmark' / 'project.sqlite'}' cannot be " \
           "written: the file or its folder is read-only" in error["message"]
    _labels_intact(photos, shape)


def test_read_only_images_with_a_writable_project_folder_just_work(base: Path) -> None:
    """Images on a folder the person may not change are fine once '.fieldmark' is theirs."""
    photos = _folder(base / "photos")
    _labelled(photos)
    _give_away(photos)
    for image in photos.glob("*.png"):
        image.chmod(0o444)
    photos.chmod(0o555)
    answer = _open_then_open(base, photos, photos)
    assert answer["first"]["ok"]["image_count"] == 2, answer
    assert "ok" in answer["edit"], answer


def test_a_file_where_the_project_folder_should_be(base: Path) -> None:
    photos = _folder(base / "photos")
    (photos / ".fieldmark").write_text("not a folder")
    api = Api(Settings(base / "settings.json"), demo_dir=base / "demo")
    try:
        error = api.call("project.open", {"path": str(photos)})["error"]
    finally:
        api.shutdown()
    assert error == {"code": "store_error", "detail": error["detail"], "message": (
        f"Fieldmark keeps the labels of '{photos.resolve()}' in a folder named '.fieldmark' inside "
        f"it, but '{photos.resolve() / '.fieldmark'}' is a file. Rename or move that file, then "
        "open the project again.")}


def test_a_folder_where_the_lock_file_should_be(base: Path) -> None:
    photos = _folder(base / "photos")
    (photos / ".fieldmark" / "lock").mkdir(parents=True)
    with pytest.raises(FieldmarkError) as info:
        Project.open(photos)
    assert info.value.code == "store_error"
    assert info.value.message.startswith(
        f"Fieldmark cannot use its lock file '{photos.resolve() / '.fieldmark' / 'lock'}'")
    assert "move it out of the way, then open the project again" in info.value.message


def test_a_write_that_cannot_grow_the_database_is_explained_and_loses_nothing(base: Path) -> None:
    """'Disk full', as near as a test gets without a tiny file system: a file-size limit.

    SQLite sees its write fail part way, as on a full disk; every edit before it must be kept.
    """
    photos = _folder(base / "photos")
    _labelled(photos)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        saved: list[int] = []
        try:
            os.close(read)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
            size = (photos / ".fieldmark" / "project.sqlite").stat().st_size
            resource.setrlimit(resource.RLIMIT_FSIZE, (size + 64 * 1024, resource.RLIM_INFINITY))
            p = Project.open(photos)
            image = p.images()[0]["id"]
            try:
                for n in range(10_000):
                    batch = [{"kind": "point", "geometry": [n, k]} for k in range(50)]
                    saved += [s["id"] for s in p.add_shapes(image, batch)]
                result: dict[str, Any] = {"never_failed": True}
            except FieldmarkError as exc:
                result = {"code": exc.code, "message": exc.message, "saved": saved}
            os.write(write, json.dumps(result).encode())
        except BaseException as exc:  # noqa: BLE001
            os.write(write, json.dumps({"crash": repr(exc)}).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        result = json.loads(fh.read())
    os.waitpid(pid, 0)
    assert result.get("code") == "store_error", result
    assert str(photos.resolve() / ".fieldmark" / "project.sqlite") in result["message"]
    assert "free space" in result["message"]
    assert result["saved"]
    with Project.open(photos) as p:
        stored = {s["id"] for s in p.shapes(p.images()[0]["id"])}
    assert set(result["saved"]) <= stored
    assert integrity(photos / ".fieldmark" / "project.sqlite") == "ok"
