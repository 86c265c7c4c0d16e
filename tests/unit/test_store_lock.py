"""One window per project, lock release on process death, read-only folders, kill -9 safety.

These start real child processes (``sys.executable``), because the guarantees are about
processes: an OS lock that dies with its holder, and commits that survive SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from backend.errors import ProjectLocked, StoreError
from backend.store import Project
from tests.unprivileged import as_unprivileged

ROOT = Path(__file__).resolve().parents[2]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL and chmod")


def _child(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]


HOLD = """
import sys, time
from backend.store import Project
p = Project.open(sys.argv[1])
print("ready", flush=True)
time.sleep(120)
"""

TRY_OPEN = """
import json, sys
from backend.errors import FieldmarkError
from backend.store import Project
try:
    Project.open(sys.argv[1]).close()
    print(json.dumps({"ok": True}))
except FieldmarkError as exc:
    print(json.dumps({"code": exc.code, "message": exc.message}))
"""


def test_second_open_in_the_same_process_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    with Project.open(tmp_path):
        with pytest.raises(ProjectLocked) as info:
            Project.open(tmp_path / "sub" / "..")
        assert info.value.message == (
            f"The project '{tmp_path.resolve()}' is already open in another Fieldmark window "
            f"(pid {os.getpid()}). Close it there first.")
    Project.open(tmp_path).close()  # released on close


@posix_only
def test_lock_held_by_another_process_is_refused_then_freed_by_sigkill(tmp_path: Path) -> None:
    holder = _child(HOLD, str(tmp_path))
    try:
        assert holder.stdout.readline().strip() == "ready", holder.stderr.read()  # type: ignore[union-attr]
        with pytest.raises(ProjectLocked, match=rf"already open in another Fieldmark window "
                                                rf"\(pid {holder.pid}\)\. Close it there first"):
            Project.open(tmp_path)
    finally:
        _kill(holder)
    # The lock file is still there, with the dead pid in it: it must not block.
    assert (tmp_path / ".fieldmark" / "lock").read_text().strip() == str(holder.pid)
    with Project.open(tmp_path) as p:
        assert p.images() == []


@posix_only
def test_another_process_is_refused_while_we_hold_the_lock(tmp_path: Path) -> None:
    with Project.open(tmp_path):
        out, err = _child(TRY_OPEN, str(tmp_path)).communicate(timeout=60)
        result = json.loads(out)
        assert result["code"] == "project_locked", err
        assert f"(pid {os.getpid()})" in result["message"]
    out, err = _child(TRY_OPEN, str(tmp_path)).communicate(timeout=60)
    assert json.loads(out) == {"ok": True}, err


KEEP_ADDING = """
import sys
from backend.store import Project
p = Project.open(sys.argv[1])
p.sync_images([("a.jpg", 1, 1.0)])
image = p.images()[0]["id"]
i = 0
while True:
    batch = [{"kind": "point", "geometry": [i, k]} for k in range(int(sys.argv[2]))]
    ids = [s["id"] for s in p.add_shapes(image, batch)]
    print(" ".join(map(str, ids)), flush=True)
    i += 1
"""


@posix_only
def test_sigkill_loses_no_committed_shape(tmp_path: Path) -> None:
    batch = 7
    child = _child(KEEP_ADDING, str(tmp_path), str(batch))
    reported: list[int] = []
    try:
        while len(reported) < 40 * batch:
            line = child.stdout.readline()  # type: ignore[union-attr]
            assert line, child.stderr.read()  # type: ignore[union-attr]
            reported += [int(x) for x in line.split()]
    finally:
        _kill(child)
    with Project.open(tmp_path) as p:
        image = p.images()[0]["id"]
        stored = {s["id"] for s in p.shapes(image)}
        assert set(reported) <= stored
        # Each batch is one transaction: all of it or none of it, never a part.
        assert len(stored) % batch == 0
        steps = 0
        while p.undo() is not None:  # ...and one undo step per committed batch
            steps += 1
        assert steps == len(stored) // batch
        assert p.shapes(image) == []
    raw = sqlite3.connect(p.db_path)
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    raw.close()


def _open_as_unprivileged_user(folder: Path) -> dict:
    """Project.open(folder) as 'nobody' (root ignores permissions)."""
    def work() -> dict:
        try:
            Project.open(folder).close()
            return {"ok": True}
        except StoreError as exc:
            return {"code": exc.code, "message": exc.message}
        except PermissionError as exc:
            return {"skip": str(exc)}
    return as_unprivileged(work)


@posix_only
def test_read_only_folder_is_explained(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        folder = Path(tempfile.mkdtemp(prefix="fieldmark-ro-"))  # in /tmp: 'nobody' can reach it
        try:
            (folder / "img.jpg").write_bytes(b"x")
            folder.chmod(0o555)
            result = _open_as_unprivileged_user(folder)
        finally:
            folder.chmod(0o755)
            (folder / "img.jpg").unlink()
            folder.rmdir()
        if "skip" in result:
            pytest.skip(result["skip"])
        assert result.get("code") == "store_error", result
        message = result["message"]
    else:
        (tmp_path / "img.jpg").write_bytes(b"x")
        tmp_path.chmod(0o555)
        try:
            with pytest.raises(StoreError) as info:
                Project.open(tmp_path)
        finally:
            tmp_path.chmod(0o755)
        folder, message = tmp_path, info.value.message
    assert f"The folder '{folder.resolve()}' is read-only" in message
    assert "Copy the images to a folder you can write to" in message
