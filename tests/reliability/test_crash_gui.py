"""SIGKILL the real app (window, page, bridge, QtWebEngine helper processes) while its page adds
shapes and the app probes image headers, writes settings and thumbnails: the project reopens,
the lock is free, every shape the page was told about is there, and undo works.

The app runs as ``tests/reliability/crash_gui.py`` (``main.main([PROJECT])`` with the page
driven; see there) in a process group of its own, and the whole group is killed so that no
QtWebEngineProcess outlives it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.errors import FieldmarkError
from backend.store import Project
from tests.ai.conftest import make_photos
from tests.reliability.crash_state import integrity, read_log

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL of a process group")]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("crash_gui.py")
TRIALS, AT_START = 5, 2
BASE_SEED = 7_000
FIRST_ACK_TIMEOUT_S = 120.0  # a loaded machine; the test never waits for a fixed time


def _env(data: Path) -> dict[str, str]:
    flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
    for flag in ("--no-sandbox", "--disable-gpu"):
        if flag not in flags.split():
            flags = f"{flags} {flag}".strip()
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1",
            "QT_QPA_PLATFORM": "offscreen", "QTWEBENGINE_CHROMIUM_FLAGS": flags,
            "FIELDMARK_DATA_DIR": str(data), "FIELDMARK_PACKS_DIR": str(data / "packs")}


def _run_and_kill(folder: Path, log: Path, data: Path, delay: float, out: Path, *,
                  at_start: bool) -> None:
    """Start the app; SIGKILL its process group ``delay`` seconds after it created the project
    database (``at_start``) or after the first acknowledged shape."""
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, str(SCRIPT), str(folder), str(log)], cwd=ROOT,
                                env=_env(data), stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        end = time.monotonic() + FIRST_ACK_TIMEOUT_S
        database = folder / ".fieldmark" / "project.sqlite"
        while not (database.exists() if at_start else read_log(log)):
            if proc.poll() is not None:
                raise AssertionError(f"the app exited ({proc.returncode}) before it was killed:\n"
                                     + out.read_text(errors="replace")[-3000:])
            if time.monotonic() > end:
                raise AssertionError("the app opened no project or its page added no shape:\n"
                                     + out.read_text(errors="replace")[-3000:])
            time.sleep(0.01)
        time.sleep(delay)  # the random moment of the kill
        assert proc.poll() is None, out.read_text(errors="replace")[-3000:]
    finally:
        with_group = proc.poll() is None
        if with_group:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(60)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_killed_app_reopens_with_every_acknowledged_shape(tmp_path: Path, trial: int) -> None:
    folder = tmp_path / "photos"
    make_photos(folder, 30)
    data, log = tmp_path / "data", tmp_path / "acks.jsonl"
    seed = BASE_SEED + trial
    # The first trials kill the app while it starts: creating the project's tables, scanning
    # the folder, probing headers, saving the recent-projects list.
    at_start = trial < AT_START
    delay = random.Random(seed).uniform(0, 1.5)
    when = f"{delay:.2f} s after {'the project was created' if at_start else 'the first shape'}"
    _run_and_kill(folder, log, data, delay, tmp_path / "app.txt", at_start=at_start)

    acks = read_log(log)
    assert not [a for a in acks if "error" in a], acks[-1]
    try:
        project = Project.open(folder)  # the kill freed the folder lock
    except FieldmarkError as exc:
        pytest.fail(f"seed {seed} (killed {when}): the project did not reopen: {exc.message}")
    with project:
        assert integrity(project.db_path) == "ok"
        if not acks:
            settings = data / "settings.json"
            assert not settings.exists() or json.loads(settings.read_text(encoding="utf-8"))
            print(f"\nGUI crash trial {trial}: killed {when}, before the page added a shape")
            return
        stored = {s["id"]: s for s in project.all_shapes()}
        missing = [a for a in acks if a["id"] not in stored]
        assert not missing, (f"seed {seed}: {len(missing)} of {len(acks)} acknowledged shapes "
                             f"lost, first {missing[0]}")
        changed = [a for a in acks if (stored[a["id"]]["image_id"], stored[a["id"]]["geometry"])
                   != (a["image_id"], a["geometry"])]
        assert not changed, f"seed {seed}: stored differently: {changed[:3]}"
        extra = [i for i in stored if i <= acks[-1]["id"] and i not in {a["id"] for a in acks}]
        assert not extra, f"seed {seed}: shapes nobody added: {extra[:5]}"
        newest = max(stored)
        assert project.undo_state()["undo"] == "Add box"
        project.undo()
        assert newest not in {s["id"] for s in project.all_shapes()}
        project.redo()
        assert project.shape(newest)["geometry"] == stored[newest]["geometry"]
    settings = json.loads((data / "settings.json").read_text(encoding="utf-8"))
    assert str(folder.resolve()) in settings["recent"]
    print(f"\nGUI crash trial {trial}: killed {when}, {len(acks)} acknowledged shapes, "
          f"{len(stored)} stored")
