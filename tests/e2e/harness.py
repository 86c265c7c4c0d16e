"""Drive the real Fieldmark window (QtWebEngine, offscreen) the way a person does.

``Driver`` wraps one ``MainWindow``: real mouse and keyboard input through ``QTest`` on the
view's render widget, page evaluation through ``window.fieldmark`` and a way to wait until the
page has handled what was sent and finished the work it started (``settle``).

Coordinates: ``mouse_*``/``click``/``drag`` take IMAGE pixels (as the store keeps them); they are
mapped to the page with ``fieldmark.canvas.imageToClient`` at the moment of the call. The view
has no zoom and the offscreen screen has devicePixelRatio 1 (both checked at launch), so CSS
pixels relative to the viewport are widget pixels of the render widget, 1:1.

Waiting: Chromium gets input asynchronously (IPC to the renderer) and ``runJavaScript`` travels
on another channel, so a page read right after ``QTest.mouseRelease`` may run before the release
was dispatched. The page counts pointerdown/pointerup and non-modifier keyup events (capture
phase on ``window``); ``settle`` waits until it has seen as many as were sent, then awaits
``fieldmark.idle()`` and one animation frame.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from backend.api.service import Api
from backend.gui.app import MainWindow
from backend.gui.waiting import run_async_js, run_js, spin, wait_page_ready, wait_until

INSTRUMENT = """(() => {
  if (window.__e2e) return true;
  const seen = {n: 0};
  const mods = new Set(['Control', 'Shift', 'Alt', 'Meta', 'AltGraph']);
  for (const t of ['pointerdown', 'pointerup']) addEventListener(t, () => { seen.n += 1; }, true);
  addEventListener('keyup', (e) => { if (!mods.has(e.key)) seen.n += 1; }, true);
  window.__e2e = seen;
  return true;
})()"""

Point = tuple[float, float]


class Driver:
    """One window on one project; see the module docstring for coordinates and waiting."""

    def __init__(self, window: MainWindow, api: Api, folder: Path | None) -> None:
        self.window = window
        self.api = api
        self.folder = folder
        self.sent = 0  # input events the page must count before it has seen all we sent
        self.expected_console: list[re.Pattern[str]] = []
        self.expected_blocked: list[re.Pattern[str]] = []
        self.expected_toasts: list[re.Pattern[str]] = []
        self.closed = False
        self.pixel_requests: list[tuple[str, str]] = []
        start = window.scheme._start_pixels

        def watched(job: Any, path: str, query: str) -> None:
            self.pixel_requests.append((path, query))
            start(job, path, query)

        window.scheme._start_pixels = watched  # type: ignore[method-assign]

    # -- page evaluation ----------------------------------------------------------------------
    def js(self, expr: str, timeout: float = 10.0) -> Any:
        """Value of a JS expression, through JSON (so objects and arrays come back as such)."""
        raw = run_js(self.window, f"JSON.stringify({{v: ({expr})}})", timeout)
        if not raw:
            raise RuntimeError(f"the page gave no answer for {expr[:80]!r}")
        return json.loads(raw).get("v")

    def run(self, body: str, timeout: float = 20.0) -> Any:
        """Run an async function body in the page and return its value."""
        return run_async_js(self.window, body, timeout)

    def call(self, method: str, args: dict[str, Any] | None = None) -> Any:
        """Call the bridge from the page; returns {"ok": ...} or {"error": {code, message}}."""
        payload = json.dumps(args or {})
        return self.run(f"""
            try {{ return {{ok: await window.fieldmark.api({json.dumps(method)}, {payload})}}; }}
            catch (e) {{ return {{error: {{code: e.code, message: e.message, detail: e.detail ?? null}}}}; }}""")

    def wait_for(self, expr: str, timeout: float = 10.0, what: str = "") -> Any:
        """Poll until ``expr`` is truthy in the page; returns its value."""
        box: dict[str, Any] = {}

        def check() -> bool:
            box["v"] = self.js(expr)
            return bool(box["v"])

        if not wait_until(check, timeout, step_ms=30):
            raise AssertionError(f"timed out waiting for {what or expr} (last value {box.get('v')!r})")
        return box["v"]

    def settle(self, timeout: float = 15.0) -> None:
        """Wait until the page has seen every input sent, then until it is idle and has drawn."""
        if not wait_until(lambda: self.js("window.__e2e ? window.__e2e.n : -1") >= self.sent, timeout):
            raise AssertionError(f"the page saw {self.js('window.__e2e.n')} of {self.sent} input events")
        self.run("""await window.fieldmark.idle();
            await new Promise((r) => requestAnimationFrame(() => r()));
            await window.fieldmark.idle(); return true;""", timeout)

    def call_job(self, method: str, args: dict[str, Any] | None = None, timeout: float = 120.0) -> Any:
        """Call a bridge method from the page and wait for its job (``apiJob``); returns its result
        (raises if the call or the job failed)."""
        payload = json.dumps(args or {})
        return self.run(f"return await window.fieldmark.apiJob({json.dumps(method)}, {payload});", timeout)

    # -- model packs (AI-assisted labeling) -----------------------------------------------------
    def install_pack(self, folder: Path) -> dict[str, Any]:
        """Install a pack folder through the page as a person does: ``models.pick_install`` (a
        job), with ``folder`` as what the native dialog returns; returns the pack."""
        self.api.pick_pack = lambda: str(folder)  # type: ignore[attr-defined]
        pack: dict[str, Any] = self.call_job("models.pick_install")
        return pack

    def activate_pack(self, task: str, pack_id: str | None) -> None:
        """Make ``pack_id`` (or none) the active ``task`` pack, and let the page know."""
        self.run(f"""await window.fieldmark.ai.models.activate({json.dumps(task)}, {json.dumps(pack_id)});
            return true;""")
        self.settle()

    def ai(self) -> Any:
        """The Api's AI services (``backend.ai.services.AiServices``): models, runs, caches."""
        from backend.api.ai_handlers import services

        return services(self.api)

    # -- state --------------------------------------------------------------------------------
    def page_shapes(self) -> list[dict[str, Any]]:
        """The current image's shapes as the page holds them, sorted by id."""
        return sorted(self.js("window.fieldmark.state.shapes.map(({id, image_id, kind, geometry, class_id}) =>"
                              " ({id, image_id, kind, geometry, class_id}))"), key=lambda s: s["id"])

    def drawn_count(self) -> int:
        """How many shapes the canvas holds to draw (its public frame stats)."""
        return int(self.js("window.fieldmark.canvas.stats.shapes"))

    def store_shapes(self, image_id: int) -> list[dict[str, Any]]:
        """The image's shapes as the project database holds them now."""
        project = self.api.require_project()
        return [{k: s[k] for k in ("id", "image_id", "kind", "geometry", "class_id")}
                for s in project.shapes(image_id)]

    def pixel_urls(self) -> list[str]:
        """``pixels/...?query`` requests the scheme handler received, in order (Resource Timing
        does not list custom-scheme loads, so the handler is watched from Python)."""
        return [f"{path.lstrip('/')}?{query}" for path, query in self.pixel_requests]

    def list_names(self) -> list[str]:
        """Names in the image list's rows as shown (DOM text), top to bottom."""
        return list(self.js("""[...document.querySelectorAll('#images .row')]
            .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
            .map((r) => r.querySelector('.row-name').textContent)"""))

    def current_id(self) -> int:
        return int(self.js("window.fieldmark.state.currentId"))

    def image_id(self, name: str) -> int:
        ids = [im["id"] for im in self.api.require_project().images() if im["name"] == name]
        if len(ids) != 1:
            raise LookupError(f"no single image named {name!r}")
        return ids[0]

    def current_name(self) -> str:
        return str(self.js("window.fieldmark.state.byId.get(window.fieldmark.state.currentId).name"))

    # -- mouse --------------------------------------------------------------------------------
    @property
    def target(self) -> QWidget:
        proxy = self.window.view.focusProxy()
        return proxy if proxy is not None else self.window.view

    def client_of(self, x: float, y: float) -> QPoint:
        """Widget point of image point (x, y) under the current view."""
        c = self.js(f"window.fieldmark.canvas.imageToClient({float(x)}, {float(y)})")
        return QPoint(round(c["x"]), round(c["y"]))

    def _button(self, button: str) -> Qt.MouseButton:
        return {"left": Qt.MouseButton.LeftButton, "right": Qt.MouseButton.RightButton,
                "middle": Qt.MouseButton.MiddleButton}[button]

    def mouse_move_client(self, p: QPoint) -> None:
        QTest.mouseMove(self.target, p)
        spin(8)

    def mouse_down_client(self, p: QPoint, button: str = "left",
                          mods: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        QTest.mousePress(self.target, self._button(button), mods, p)
        self.sent += 1
        spin(8)

    def mouse_up_client(self, p: QPoint, button: str = "left",
                        mods: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        QTest.mouseRelease(self.target, self._button(button), mods, p)
        self.sent += 1
        spin(8)

    def click_client(self, p: QPoint, button: str = "left") -> None:
        self.mouse_move_client(p)
        self.mouse_down_client(p, button)
        self.mouse_up_client(p, button)

    def click(self, x: float, y: float) -> None:
        """A click at image point (x, y)."""
        self.click_client(self.client_of(x, y))

    def drag(self, points: Sequence[Point], button: str = "left", steps: int = 6) -> None:
        """Press at the first image point, move through the others (``steps`` moves per leg), release.

        All points are mapped before the press, so a drag that pans keeps the hand-held path.
        """
        path = [self.client_of(x, y) for x, y in points]
        self.drag_client(path, button, steps)

    def drag_client(self, path: Sequence[QPoint], button: str = "left", steps: int = 6) -> None:
        self.mouse_move_client(path[0])
        self.mouse_down_client(path[0], button)
        for a, b in zip(path, path[1:], strict=False):
            for k in range(1, steps + 1):
                QTest.mouseMove(self.target, QPoint(a.x() + (b.x() - a.x()) * k // steps,
                                                    a.y() + (b.y() - a.y()) * k // steps))
                spin(8)
        self.mouse_up_client(path[-1], button)

    def element_center(self, selector: str) -> QPoint:
        """Centre of the first element matching ``selector`` (it must be laid out and visible)."""
        return self.element_center_js(f"document.querySelector({json.dumps(selector)})", selector)

    def element_center_js(self, element_expr: str, what: str = "") -> QPoint:
        """Centre of the element a JS expression evaluates to."""
        r = self.js(f"""(() => {{ const el = {element_expr};
            if (!el) return null; const r = el.getBoundingClientRect();
            return r.width && r.height ? {{x: r.left + r.width / 2, y: r.top + r.height / 2}} : null; }})()""")
        if r is None:
            raise AssertionError(f"no visible element for {what or element_expr!r}")
        return QPoint(round(r["x"]), round(r["y"]))

    def click_element(self, selector: str) -> None:
        """A real mouse click in the middle of an element."""
        self.click_client(self.element_center(selector))

    def click_text(self, selector: str, text: str) -> None:
        """A real click on the first element matching ``selector`` whose text is ``text``."""
        expr = (f"[...document.querySelectorAll({json.dumps(selector)})]"
                f".find((el) => el.textContent.trim() === {json.dumps(text)})")
        self.click_client(self.element_center_js(expr, f"{selector} with text {text!r}"))

    def hover_element(self, selector: str) -> None:
        self.mouse_move_client(self.element_center(selector))
        spin(30)

    # -- keyboard -----------------------------------------------------------------------------
    def key(self, key: Qt.Key, mods: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        QTest.keyClick(self.target, key, mods)
        self.sent += 1
        spin(8)

    def type_text(self, text: str) -> None:
        QTest.keyClicks(self.target, text)  # one press + release per character
        self.sent += len(text)
        spin(8)

    # -- expectations and teardown ------------------------------------------------------------
    def expect_console(self, pattern: str) -> None:
        """This test provokes console errors matching ``pattern`` (regex); they do not fail it."""
        self.expected_console.append(re.compile(pattern))

    def expect_blocked(self, pattern: str) -> None:
        self.expected_blocked.append(re.compile(pattern))

    def expect_toast(self, pattern: str) -> None:
        """An error toast ("code: message") matching ``pattern`` is part of this test."""
        self.expected_toasts.append(re.compile(pattern))

    def problems(self) -> list[str]:
        """Unexpected JS errors, blocked requests and error toasts, worded for a failure message."""
        out = [f"JS error {source}:{line}: {message}" for level, message, line, source in self.window.console
               if level >= 2 and not any(p.search(message) for p in self.expected_console)]
        out += [f"blocked request {url}" for url in self.window.blocked
                if not any(p.search(url) for p in self.expected_blocked)]
        try:
            toasts = self.js("window.fieldmark ? window.fieldmark.errors : []")
        except (TimeoutError, RuntimeError) as exc:
            return [*out, f"the page did not answer at the end: {exc}"]
        out += [f"error shown to the person: {t}" for t in toasts
                if not any(p.search(f"{t.get('code')}: {t.get('message')}") for p in self.expected_toasts)]
        return out

    def close(self) -> list[str]:
        """Close the window and its project; returns the problems the page had."""
        if self.closed:
            return []
        self.closed = True
        spin(30)  # late console lines (a failed load reported after the last check)
        problems = self.problems()
        window = self.window
        window.close()
        self.api.close_project()
        page, profile = window.page, window.profile
        window.view.setPage(None)  # type: ignore[arg-type]  # detach before deleting
        page.deleteLater()
        window.deleteLater()
        _flush_deletes()
        # The profile goes only after its page is gone (Qt: "Release of profile requested but
        # WebEnginePage still not deleted").
        wait_until(lambda: not shiboken6.isValid(page), 5.0)
        profile.deleteLater()
        _flush_deletes()
        return problems


def _flush_deletes() -> None:
    QApplication.processEvents()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()


# The ``launcher`` fixture: ``launcher(folder=None, settings=None) -> Driver``.
Launcher = Callable[..., Driver]


def launch(api: Api, folder: Path | None, size: tuple[int, int] = (1200, 800)) -> Driver:
    """Show a window on ``api`` (whose project, if any, is already open) and wait until usable."""
    window = MainWindow(api)
    window.resize(*size)
    window.show()  # hidden pages get no animation frames and never draw
    driver = Driver(window, api, folder)
    try:
        wait_page_ready(window)
        run_js(window, INSTRUMENT)
        geometry = driver.js("({dpr: devicePixelRatio, w: innerWidth, h: innerHeight})")
        if geometry["dpr"] != 1 or window.view.zoomFactor() != 1:
            raise RuntimeError(f"input mapping assumes dpr 1 and no zoom, got {geometry} "
                               f"zoom {window.view.zoomFactor()}")
        driver.settle()  # `ready` covers boot, which shows the first image; settle adds its frame
    except BaseException:
        problems = driver.close()
        if problems:
            print("page problems before the failure:", *problems, sep="\n  ")
        raise
    return driver


def approx_geometry(a: Any, b: Any, tol: float) -> bool:
    """Geometries equal within ``tol`` per coordinate (same nesting)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(approx_geometry(x, y, tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b)) <= tol
    return bool(a == b)


def without_ids(shapes: Iterable[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    return sorted((s["kind"], json.dumps(s["geometry"]), s["class_id"]) for s in shapes)


def close_checked(driver: Driver) -> None:
    """Close a window mid-test (to reopen its project) and fail now if its page had problems."""
    problems = driver.close()
    if problems:
        raise AssertionError("the page had problems:\n  " + "\n  ".join(problems))
