"""Who may open a project, as a person sees it: a second app on the same folder, a read-only folder.

The other window is a real ``python main.py FOLDER`` process with its own user data folder; this
process's window is driven through the page. What the refused window shows is checked on the
page (toast, welcome screen); what the app process did, through its log and exit status.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from backend.api.service import Api
from backend.api.settings import Settings
from backend.errors import FieldmarkError
from backend.gui.waiting import wait_until
from backend.store import Project
from tests.e2e.harness import Driver, Launcher, close_checked, launch
from tests.e2e.projects import DEFAULT_IMAGES, make_project
from tests.reliability.crash_state import integrity

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL, POSIX permissions")]
REPO = Path(__file__).resolve().parents[2]
TOASTS = "[...document.querySelectorAll('.toast-message')].map((e) => e.textContent)"


def _app_process(tmp_path: Path, folder: Path, *extra: str) -> subprocess.Popen:
    """``python main.py FOLDER`` offscreen, with its own user data folder; log in ``app.log``."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "FIELDMARK_DATA_DIR": str(tmp_path / "app-data"),
           "QTWEBENGINE_CHROMIUM_FLAGS": "--no-sandbox --disable-gpu", "PYTHONDONTWRITEBYTECODE": "1"}
    log = (tmp_path / "app.log").open("w")
    try:
        return subprocess.Popen([sys.executable, str(REPO / "main.py"), str(folder), *extra],
                                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _integrity(folder: Path) -> str:
    return integrity(folder / ".fieldmark" / "project.sqlite")


def _with_recent(tmp_path: Path, *folders: Path) -> Path:
    settings = tmp_path / "user" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"recent": [str(f.resolve()) for f in folders]}), encoding="utf-8")
    return settings


def _click_recent(driver: Driver, folder: Path) -> None:
    driver.click_element(f".recent-item[title={json.dumps(str(folder.resolve()))}]")


def test_a_second_app_on_the_same_folder_is_refused_while_this_window_keeps_editing(
        launcher: Launcher, project: Path, tmp_path: Path) -> None:
    first = launcher(project)
    report = tmp_path / "second-ready.json"
    second = _app_process(tmp_path, project, "--startup-report", str(report))
    try:
        first.key(Qt.Key.Key_B)  # the first window draws while the second one starts
        first.drag([(30, 30), (90, 90)])
        first.settle()
        assert wait_until(lambda: second.poll() is not None, 120), "the second app never became usable"
    finally:
        _stop(second)
    log = (tmp_path / "app.log").read_text(errors="replace")
    assert second.returncode == 0 and report.exists(), log[-3000:]  # its window opened, usable
    assert (f"The project '{project.resolve()}' is already open in another Fieldmark window "
            f"(pid {os.getpid()}). Close it there first.") in log

    first.drag([(120, 40), (200, 150)])
    first.settle()
    image = first.current_id()
    assert len(first.store_shapes(image)) == 2
    assert first.page_shapes() == first.store_shapes(image)
    close_checked(first)
    assert _integrity(project) == "ok"
    with Project.open(project) as store:
        assert len(store.shapes(image)) == 2


@contextlib.contextmanager
def _window_started_on(folder: Path, settings: Path, demo: Path) -> Iterator[Driver]:
    """A window as ``python main.py FOLDER`` makes it when FOLDER does not open (backend.gui.run)."""
    api = Api(Settings(settings), demo_dir=demo)
    try:
        api.open_project(folder)
    except FieldmarkError as exc:
        api.startup_error = exc.to_dict()
    else:
        api.shutdown()
        pytest.fail(f"{folder} opened, but another app holds it")
    driver = launch(api, None)
    try:
        yield driver
    finally:
        problems = driver.close()
        api.shutdown()
    assert not problems, problems


def test_a_window_started_on_a_folder_another_app_holds_explains_and_goes_on(
        qapp: object, project: Path, tmp_path: Path) -> None:
    other = make_project(tmp_path / "other")
    with Project.open(project) as store:  # labels made earlier, which nothing may damage
        store.sync_images([(name, 1, 1.0) for name in DEFAULT_IMAGES])
        first_image = store.images()[0]["id"]
        box = store.add_shape(first_image, "box", [10, 10, 60, 50])
    holder = _app_process(tmp_path, project)
    lock = project / ".fieldmark" / "lock"
    try:
        assert wait_until(lambda: lock.read_text().strip() == str(holder.pid) or holder.poll() is not None, 60)
        assert holder.poll() is None, (tmp_path / "app.log").read_text(errors="replace")[-3000:]
        settings = _with_recent(tmp_path, project, other)
        with _window_started_on(project, settings, tmp_path / "demo") as window:
            refusal = (f"The project '{project.resolve()}' is already open in another Fieldmark "
                       f"window (pid {holder.pid}). Close it there first.")
            window.expect_toast("^project_locked: " + refusal.replace("(", r"\(").replace(")", r"\)"))
            assert window.wait_for(TOASTS + ".length") == 1
            assert window.js(TOASTS) == [refusal]
            assert window.js("window.fieldmark.state.project") is None
            assert window.js("!!document.querySelector('.welcome')")

            _click_recent(window, project)  # trying again is refused again, the same way
            window.settle()
            assert window.wait_for(TOASTS + ".length >= 2")
            assert window.js(TOASTS) == [refusal, refusal]

            _click_recent(window, other)  # ...and another folder opens as usual
            window.settle()
            window.wait_for(f"window.fieldmark.state.project?.path === {json.dumps(str(other.resolve()))}")
            assert window.list_names() == list(DEFAULT_IMAGES)

            _stop(holder)  # the holder dies without closing: its lock file stays, with its pid
            assert lock.read_text().strip() == str(holder.pid)
            assert "ok" in window.call("project.open", {"path": str(project)})
            window.wait_for(f"window.fieldmark.state.project?.path === {json.dumps(str(project.resolve()))}")
            window.settle()
            assert window.current_id() == first_image
            assert [s["id"] for s in window.page_shapes()] == [box["id"]]
    finally:
        _stop(holder)
    assert _integrity(project) == "ok"


@contextlib.contextmanager
def _as_a_user_permissions_apply_to() -> Iterator[None]:
    """Root writes into read-only folders; for a while, this process acts as 'nobody'."""
    if os.geteuid() != 0:
        yield
        return
    try:
        os.seteuid(65534)
    except PermissionError as exc:
        pytest.skip(f"cannot act as an unprivileged user here: {exc}")
    try:
        yield
    finally:
        os.seteuid(0)


def test_a_read_only_folder_gets_a_clear_message_and_the_window_goes_on(
        launcher: Launcher, tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="fieldmark-e2e-ro-"))  # tmp_path is private to its owner
    photos = base / "photos"
    try:
        base.chmod(0o755)
        other = make_project(tmp_path / "other")
        make_project(photos)
        photos.chmod(0o555)
        window = launcher(None, _with_recent(tmp_path, photos, other))
        with _as_a_user_permissions_apply_to():
            _click_recent(window, photos)
            window.settle()
            window.wait_for(TOASTS + ".length")
        [message] = window.js(TOASTS)
        window.expect_toast("^store_error: The folder '.*' is read-only")
        assert message.startswith(f"The folder '{photos.resolve()}' is read-only, so Fieldmark cannot "
                                  "keep its labels there")
        assert "Copy the images to a folder you can write to" in message
        assert window.js("window.fieldmark.state.project") is None
        assert window.js("!!document.querySelector('.welcome')")
        assert not (photos / ".fieldmark").exists()

        _click_recent(window, other)
        window.settle()
        window.wait_for(f"window.fieldmark.state.project?.path === {json.dumps(str(other.resolve()))}")
        assert window.list_names() == list(DEFAULT_IMAGES)
        close_checked(window)
    finally:
        photos.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)
