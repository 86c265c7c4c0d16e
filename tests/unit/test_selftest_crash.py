"""Crash handling (backend/gui/crash.py): an uncaught exception leaves a log and tells the person.

The hooks are driven with real exceptions (raised, caught, handed to the hook as Python would,
or escaping a real thread); the log files are read back from disk. The dialog is the real
QMessageBox, read and closed by a timer on the offscreen platform.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from backend.gui import crash


def _qapp() -> object:
    """The app's own QApplication (offscreen); the e2e tests share the same instance."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from backend.gui.app import make_application

    return make_application([sys.argv[0]])


def _raise(message: str) -> BaseException:
    try:
        raise ValueError(message)
    except ValueError as exc:
        return exc


def test_excepthook_writes_a_log_and_asks_for_the_dialog(tmp_path: Path) -> None:
    shown: list[tuple[str, Path]] = []
    handler = crash.CrashHandler(show=lambda msg, path: shown.append((msg, path)), directory=tmp_path)
    exc = _raise("the pack manifest is a list")
    handler(type(exc), exc, exc.__traceback__)

    (log,) = tmp_path.glob("crash-*.log")
    text = log.read_text(encoding="utf-8")
    assert "ValueError: the pack manifest is a list" in text
    assert "Traceback (most recent call last)" in text and "in _raise" in text
    assert "Fieldmark" in text and "thread: MainThread" in text
    assert shown == [("ValueError: the pack manifest is a list", log)]


def test_exception_in_a_thread_is_logged_and_the_dialog_runs_on_the_gui_thread(tmp_path: Path) -> None:
    app = _qapp()
    shown: list[tuple[str, str]] = []

    def show(msg: str, path: Path) -> None:
        shown.append((msg, threading.current_thread().name))

    handler = crash.CrashHandler(show=show, directory=tmp_path)
    old = threading.excepthook
    threading.excepthook = handler.thread_hook
    try:
        t = threading.Thread(target=lambda: 1 / 0, name="decoder-7")
        t.start()
        t.join()
    finally:
        threading.excepthook = old
    (log,) = tmp_path.glob("crash-*.log")
    text = log.read_text(encoding="utf-8")
    assert "thread: decoder-7" in text and "ZeroDivisionError" in text
    assert shown == []  # queued for the GUI thread, not shown from the worker
    for _ in range(100):
        app.processEvents()
        if shown:
            break
    assert shown == [("ZeroDivisionError: division by zero", threading.main_thread().name)]


def test_run_guarded_turns_an_escaping_exception_into_exit_code_1(tmp_path: Path) -> None:
    shown: list[str] = []
    handler = crash.CrashHandler(show=lambda msg, path: shown.append(msg), directory=tmp_path)

    def app() -> int:
        raise RuntimeError("window could not be created")

    assert crash.run_guarded(handler, app) == 1
    assert shown == ["RuntimeError: window could not be created"]
    assert len(list(tmp_path.glob("crash-*.log"))) == 1
    assert crash.run_guarded(handler, lambda: 0) == 0


def test_dialogs_are_capped_but_every_crash_is_logged(tmp_path: Path) -> None:
    shown: list[str] = []
    handler = crash.CrashHandler(show=lambda msg, path: shown.append(msg), directory=tmp_path)
    for i in range(crash.MAX_DIALOGS + 2):
        exc = _raise(f"repaint {i}")
        handler(type(exc), exc, exc.__traceback__)
    assert len(shown) == crash.MAX_DIALOGS
    assert len(list(tmp_path.glob("crash-*.log"))) == crash.MAX_DIALOGS + 2


def test_old_logs_are_pruned(tmp_path: Path) -> None:
    handler = crash.CrashHandler(show=None, directory=tmp_path)
    for i in range(crash.KEEP_LOGS + 3):
        exc = _raise(f"crash {i}")
        handler(type(exc), exc, exc.__traceback__)
    assert len(list(tmp_path.glob("crash-*.log"))) == crash.KEEP_LOGS


def test_missing_stdio_goes_to_the_output_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDMARK_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    path = crash.redirect_missing_stdio()
    assert path == tmp_path / "logs" / "output.log"
    print("hello from a windowed build")
    sys.stderr.write("a warning\n")
    sys.stdout.flush()
    stream = sys.stdout
    monkeypatch.undo()
    stream.close()
    assert path.read_text(encoding="utf-8") == "hello from a windowed build\na warning\n"


def test_the_real_dialog_shows_the_message_and_the_log_path(tmp_path: Path) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    _qapp()
    seen: list[str] = []

    def read_and_close() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            box.done(0)
        else:
            QTimer.singleShot(20, read_and_close)

    QTimer.singleShot(20, read_and_close)
    log = tmp_path / "crash-x.log"
    crash.show_dialog("KeyError: 'classes'", log)
    assert len(seen) == 1
    assert "KeyError: 'classes'" in seen[0] and str(log) in seen[0]
    assert "every edit is saved" in seen[0]
