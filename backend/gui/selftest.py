"""``--self-test``: start the real app offscreen and prove the essential paths work.

Checks: the page loads, a call goes page → bridge → page, a temporary project opens, a shape
written from the page is read back from disk after the project is closed. Exit 0 only if all
passed; the JSON report says what failed and why.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend import __version__, atomic


class Report:
    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []

    def check(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            detail = fn()
            self.checks.append({"name": name, "ok": True, "detail": detail,
                                "seconds": round(time.perf_counter() - t0, 3)})
            return detail
        except Exception as exc:  # noqa: BLE001 — a failed check is reported, not raised
            self.checks.append({"name": name, "ok": False, "detail": f"{type(exc).__name__}: {exc}",
                                "trace": traceback.format_exc(limit=6),
                                "seconds": round(time.perf_counter() - t0, 3)})
            return None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c["ok"] for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "version": __version__, "python": sys.version.split()[0],
                "platform": platform.platform(), "frozen": bool(getattr(sys, "frozen", False)),
                "checks": self.checks}


def _make_project(root: Path) -> Path:
    import numpy as np
    from PIL import Image

    folder = root / "project with spaces"
    folder.mkdir()
    yy, xx = np.mgrid[0:120, 0:160]
    img = np.stack([xx * 255 // 160, yy * 255 // 120, (xx + yy) % 255], axis=-1).astype("uint8")
    Image.fromarray(img).save(folder / "sample.png")
    return folder


def run_self_test(report_path: Path | None = None, timeout: float = 60.0) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    report = Report()
    with tempfile.TemporaryDirectory(prefix="fieldmark-selftest-") as tmp:
        root = Path(tmp)
        os.environ["FIELDMARK_DATA_DIR"] = str(root / "data")
        _run_checks(report, root, timeout)
    text = json.dumps(report.to_dict(), indent=2, default=str)
    if report_path:
        atomic.write_text(Path(report_path), text + "\n")
    for c in report.checks:
        print(f"{'ok  ' if c['ok'] else 'FAIL'} {c['name']} ({c['seconds']} s)"
              + ("" if c["ok"] else f": {c['detail']}"))
    print("self-test passed" if report.ok else "self-test FAILED")
    return 0 if report.ok else 1


def _run_checks(report: Report, root: Path, timeout: float) -> None:
    state: dict[str, Any] = {}

    def start_app() -> str:
        from backend.gui.app import make_application

        state["app"] = make_application([sys.argv[0]])
        return "QApplication started"

    if report.check("start Qt application", start_app) is None:
        return

    from backend.api.service import Api
    from backend.api.settings import Settings
    from backend.gui.app import MainWindow
    from backend.gui.waiting import run_async_js, wait_page_ready
    from backend.store import Project

    folder = _make_project(root)
    api = Api(Settings(root / "data" / "settings.json"), demo_dir=root / "demo")

    def open_project() -> dict[str, Any]:
        summary = api.open_project(folder)
        if summary["image_count"] != 1:
            raise RuntimeError(f"expected 1 image, found {summary['image_count']}")
        return summary

    if report.check("open a temporary project", open_project) is None:
        return
    window = MainWindow(api)
    window.show()  # a hidden page gets no animation frames, so it would never finish drawing
    state["window"] = window

    if report.check("load the page and connect the bridge",
                    lambda: wait_page_ready(window, timeout) or "page ready") is None:
        return
    nonce = secrets.token_hex(8)

    def ping() -> str:
        got = run_async_js(window, f"return (await window.fieldmark.api('app.ping', {{value: '{nonce}'}})).value;")
        if got != nonce:
            raise RuntimeError(f"sent {nonce!r}, got back {got!r}")
        return "page → bridge → page round trip"

    report.check("bridge round trip", ping)

    def write_shape() -> dict[str, Any]:
        return run_async_js(window, """
            const api = window.fieldmark.api;
            const [img] = await api('images.list', {});
            const cls = await api('classes.add', {name: 'selftest'});
            const s = await api('shapes.add', {image_id: img.id, kind: 'box', geometry: [10, 20, 60, 80], class_id: cls.id});
            const back = await api('shapes.list', {image_id: img.id});
            if (!back.some(x => x.id === s.id)) throw new Error('shape not listed after add');
            return {image_id: img.id, shape_id: s.id};""")

    written = report.check("write a shape from the page", write_shape)

    def read_back() -> str:
        if not written:
            raise RuntimeError("no shape was written")
        api.close_project()
        with Project.open(folder) as project:
            shapes = project.shapes(written["image_id"])
        match = [s for s in shapes if s["id"] == written["shape_id"]]
        if not match or match[0]["geometry"] != [10, 20, 60, 80]:
            raise RuntimeError(f"shape not found on disk after reopening: {shapes}")
        return "shape read back from the project database"

    report.check("read the shape back after reopening", read_back)

    def page_clean() -> str:
        errors = [c for c in window.console if c[0] >= 2]
        if errors or window.blocked:
            raise RuntimeError(f"JS errors: {errors[:3]}; blocked requests: {window.blocked[:3]}")
        return f"{len(window.console)} console lines, no errors, no blocked requests"

    report.check("no JavaScript errors or blocked requests", page_clean)
    window.close()
