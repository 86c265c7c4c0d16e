"""Uncaught exceptions: a log file in the user data folder and a dialog — never a silent exit.

A frozen, windowed app has no console: an exception that escapes to the top (at start, in a
Qt slot, in a worker thread) would otherwise end the process or vanish without a trace. The
handler installed by :func:`install` writes ``<user data>/logs/crash-<time>-<pid>.log`` (the
traceback plus version, platform and thread) and shows a dialog with the message and that path.
An exception in a Qt slot does not end the app (Qt carries on), so the dialog says that the work
is saved — every edit is committed when it happens — and that a restart is safest.

Qt is imported only when a dialog is shown, so the runtime hook and the CLI can import this
module cheaply. Hard crashes (segfaults in native code) go to ``logs/faults.log`` through
:mod:`faulthandler`.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import platform
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from backend import __version__, atomic

log = logging.getLogger(__name__)

KEEP_LOGS = 20  # crash logs kept; older ones are deleted when a new one is written
MAX_DIALOGS = 3  # per session: an exception raised on every repaint must not bury the screen
OUTPUT_LOG_MAX = 5_000_000  # output.log is rotated to output.log.1 past this size

DialogFn = Callable[[str, Path], None]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

_fault_file: IO[str] | None = None  # kept open for faulthandler for the life of the process


def log_dir() -> Path:
    """``<user data>/logs`` (created); a temp folder if the user data folder is not writable."""
    try:
        from backend.paths import user_data_dir

        d = user_data_dir() / "logs"
        d.mkdir(parents=True, exist_ok=True)
        return d
    except OSError:
        d = Path(tempfile.gettempdir()) / "fieldmark-logs"
        d.mkdir(parents=True, exist_ok=True)
        return d


def redirect_missing_stdio() -> Path | None:
    """In a windowed build ``sys.stdout``/``sys.stderr`` are None: send them to ``output.log``.

    Returns the log path, or None when both streams exist (console builds, from source).
    """
    if sys.stdout is not None and sys.stderr is not None:
        return None
    try:
        path = log_dir() / "output.log"
        if path.exists() and path.stat().st_size > OUTPUT_LOG_MAX:
            os.replace(path, path.with_name("output.log.1"))
        stream: IO[str] = open(path, "a", encoding="utf-8", errors="backslashreplace", buffering=1)  # noqa: SIM115
    except OSError:
        path, stream = None, open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    if sys.stdout is None:
        sys.stdout = stream
    if sys.stderr is None:
        sys.stderr = stream
    return path


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 600 else text[:600] + "…"


def write_crash_log(info: ExcInfo, *, thread: str | None = None, directory: Path | None = None) -> Path:
    """Write the traceback and what we know about the process; returns the log's path."""
    directory = directory or log_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = directory / f"crash-{stamp}-{os.getpid()}-{time.monotonic_ns() % 1_000_000:06d}.log"
    header = [
        f"Fieldmark {__version__} crashed at {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
        f"thread: {thread or threading.current_thread().name}",
        f"python: {sys.version.split()[0]}  platform: {platform.platform()}",
        f"frozen: {bool(getattr(sys, 'frozen', False))}  executable: {sys.executable}",
        f"argv: {sys.argv!r}", "",
    ]
    body = "".join(traceback.format_exception(*info))
    atomic.write_text(path, "\n".join(header) + body)
    _prune(directory)
    return path


def _prune(directory: Path) -> None:
    logs = sorted(directory.glob("crash-*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in logs[KEEP_LOGS:]:
        try:
            old.unlink()
        except OSError:
            pass


def dialog_text(message: str, log_path: Path) -> str:
    return (f"Fieldmark hit an unexpected error:\n\n{message}\n\n"
            "Your labels are safe: every edit is saved the moment you make it. If something "
            "looks wrong, restart Fieldmark.\n\n"
            f"The details were written to:\n{log_path}\n\nPlease attach this file to a bug report.")


def show_dialog(message: str, log_path: Path) -> None:
    """A modal error box; creates the QApplication if the crash came before it existed."""
    from PySide6.QtWidgets import QApplication, QMessageBox

    if QApplication.instance() is None:
        QApplication([sys.argv[0] if sys.argv else "fieldmark"])
    box = QMessageBox(QMessageBox.Icon.Critical, "Fieldmark — unexpected error", dialog_text(message, log_path))
    box.setTextInteractionFlags(box.textInteractionFlags() | _selectable())
    box.exec()


def _selectable() -> Any:
    from PySide6.QtCore import Qt

    return Qt.TextInteractionFlag.TextSelectableByMouse


class CrashHandler:
    """``sys.excepthook`` and ``threading.excepthook`` in one: log, then tell the person.

    ``show`` is the dialog (None: log only, e.g. the headless self-test). A dialog must run
    on the GUI thread, so a crash in another thread is relayed there through a queued Qt signal.
    """

    def __init__(self, show: DialogFn | None = show_dialog, directory: Path | None = None) -> None:
        self.show = show
        self.directory = directory
        self.logs: list[Path] = []
        self.dialogs = 0
        self._showing = False
        self._relay: Any = _make_relay(self._notify) if show is not None else None

    def __call__(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        self.handle((exc_type, exc, tb))

    def thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        self.handle((args.exc_type, args.exc_value, args.exc_traceback),
                    thread=args.thread.name if args.thread else None)

    def handle(self, info: ExcInfo, thread: str | None = None) -> Path | None:
        """Log the exception (never raises) and ask for the dialog; returns the log path."""
        try:
            path = write_crash_log(info, thread=thread, directory=self.directory)
        except OSError as exc:  # the disk is full or read-only: the dialog still tells the person
            path = Path(f"(could not write a crash log: {exc})")
        self.logs.append(path)
        if sys.stderr is not None:
            sys.stderr.write(f"Fieldmark: unexpected error, details in {path}\n")
            traceback.print_exception(*info, file=sys.stderr)
        message = describe(info[1])
        if threading.current_thread() is threading.main_thread() or self._relay is None:
            self._notify(message, str(path))
        else:
            self._relay.fire.emit(message, str(path))
        return path

    def _notify(self, message: str, path: str) -> None:
        if self.show is None or self._showing or self.dialogs >= MAX_DIALOGS:
            return
        self._showing, self.dialogs = True, self.dialogs + 1
        try:
            self.show(message, Path(path))
        except Exception:  # noqa: BLE001 — no display, no Qt: the log is already written
            log.exception("could not show the crash dialog; the log is %s", path)
        finally:
            self._showing = False


def _make_relay(callback: Callable[[str, str], None]) -> Any:
    """A QObject living on this (the GUI) thread whose signal calls ``callback`` there."""
    try:
        from PySide6.QtCore import QObject, Qt, Signal
    except ImportError:
        return None

    class Relay(QObject):
        fire = Signal(str, str)

    relay = Relay()
    relay.fire.connect(callback, Qt.ConnectionType.QueuedConnection)
    return relay


def install(show: DialogFn | None = show_dialog, directory: Path | None = None) -> CrashHandler:
    """Route uncaught exceptions of every thread to a :class:`CrashHandler`; call on the GUI thread."""
    global _fault_file
    handler = CrashHandler(show, directory)
    sys.excepthook = handler
    threading.excepthook = handler.thread_hook
    if _fault_file is None:
        try:
            _fault_file = open((directory or log_dir()) / "faults.log", "a", encoding="utf-8")  # noqa: SIM115
            faulthandler.enable(_fault_file)
        except OSError:
            log.warning("faulthandler not enabled: the log folder is not writable")
    return handler


def run_guarded(handler: CrashHandler, fn: Callable[..., int], *args: Any, **kwargs: Any) -> int:
    """Run ``fn``; an exception that escapes it is handled (log + dialog) and the exit code is 1.

    The frozen bootloader reports a top-level exception its own way (or not at all in a windowed
    build), so the app's entry point catches it here instead of relying on ``sys.excepthook``.
    """
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 — the last line of defence: log and tell the person
        handler.handle((type(exc), exc, exc.__traceback__))
        return 1
