"""Small helpers to wait on the page from Python: used by the self-test, screenshots and tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from backend.gui.app import MainWindow


def spin(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_until(predicate: Callable[[], bool], timeout: float, step_ms: int = 20) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        QApplication.processEvents()
        if predicate():
            return True
        spin(step_ms)
    return predicate()


def run_js(window: MainWindow, script: str, timeout: float = 10.0) -> Any:
    """Evaluate ``script`` in the page and return its (JSON-able) value."""
    box: dict[str, Any] = {}
    window.page.runJavaScript(script, 0, lambda value: box.setdefault("v", value))
    if not wait_until(lambda: "v" in box, timeout):
        raise TimeoutError(f"page did not answer within {timeout}s: {script[:80]}")
    return box["v"]


def run_async_js(window: MainWindow, body: str, timeout: float = 20.0) -> Any:
    """Run an async JS function body; returns its resolved value (JSON round trip) or raises."""
    slot = f"__fm_async_{time.monotonic_ns()}"
    run_js(window, f"""window.{slot} = undefined;
        (async () => {{ {body} }})().then(
          v => {{ window.{slot} = JSON.stringify({{ok: v === undefined ? null : v}}); }},
          e => {{ window.{slot} = JSON.stringify({{error: String(e && (e.message || e))}}); }});
        true""")
    raw: dict[str, Any] = {}

    def done() -> bool:
        # PySide6 hands a JS null back as '' — treat every falsy answer as "not yet".
        value = run_js(window, f"window.{slot} === undefined ? null : window.{slot}")
        if value:
            raw["v"] = value
        return "v" in raw

    if not wait_until(done, timeout, step_ms=30):
        raise TimeoutError(f"async page script did not finish within {timeout}s")
    answer = json.loads(raw["v"])
    if "error" in answer:
        raise RuntimeError(answer["error"])
    return answer["ok"]


def wait_page_ready(window: MainWindow, timeout: float = 30.0) -> None:
    """Wait until the page loaded and its ``window.fieldmark.ready`` resolved (channel connected)."""
    if not wait_until(lambda: window.load_ok is not None, timeout):
        raise TimeoutError(f"the page did not load within {timeout}s")
    if not window.load_ok:
        raise RuntimeError("the page failed to load (web/index.html missing or unreadable?)")
    run_async_js(window, """
        const t0 = Date.now();
        while (!(window.fieldmark && window.fieldmark.ready)) {
          if (Date.now() - t0 > 20000) throw new Error('window.fieldmark.ready never appeared');
          await new Promise(r => setTimeout(r, 20));
        }
        await window.fieldmark.ready; return true;""", timeout)
