"""The Export and Import dialogs in the real page: real clicks, real jobs, files on disk.

The dialogs' wiring into the toolbar is the app's (docs/bridge.md, "Export and import"); here
each test wires them itself, so it depends only on the dialogs: the handlers are merged into the
window's Api, the stylesheet is linked, and the dialog module is imported by the page. The
native file dialogs are replaced by a function answering with the path a person would choose.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from backend.api import export_handlers
from tests.e2e.harness import Driver, Launcher
from tests.e2e.projects import make_project

pytestmark = pytest.mark.e2e

EVIL = '<img src=x onerror="window.__pwned=1">'


def wire(app: Driver, answer: Path | None) -> dict[str, Any]:
    """What the app's wiring does, plus a stand-in for the native dialogs answering ``answer``
    (change ``picks["path"]`` to answer something else)."""
    picks: dict[str, Any] = {"path": answer, "asked": []}

    def pick_path(kind: str, title: str, name_filter: str = "") -> str | None:
        picks["asked"].append(kind)
        return str(picks["path"]) if picks["path"] is not None else None

    app.api.methods.update(export_handlers.METHODS)
    app.api.pick_path = pick_path  # type: ignore[attr-defined]
    app.run("""const link = document.createElement('link');
        link.rel = 'stylesheet'; link.href = 'css/dialogs.css';
        const loaded = new Promise((r) => { link.onload = r; });
        document.head.appendChild(link); await loaded; return true;""")
    return picks


def open_dialog(app: Driver, module: str, function: str) -> None:
    app.run(f"""const m = await import(new URL('js/panels/{module}.js', location.href).href);
        window.__dialog = m.{function}();
        return true;""")
    app.wait_for("!!document.querySelector('.dialog-xfer .xfer-format.active')", what="the dialog")
    app.settle()


def labeled_project(tmp_path: Path) -> Path:
    folder = make_project(tmp_path / "field photos")
    return folder


def add_labels(app: Driver) -> None:
    project = app.api.require_project()
    moth = project.add_class("moth")["id"]
    evil = project.add_class(EVIL)["id"]
    ids = {im["name"]: im["id"] for im in project.images()}
    project.add_shape(ids["a_first.png"], "box", [10, 10, 60, 50], moth)
    project.add_shape(ids["a_first.png"], "point", [100, 100], moth)
    project.add_shape(ids["b_second.png"], "polygon", [[20, 20], [120, 30], [90, 110]], evil)


def text(app: Driver, selector: str) -> str:
    return str(app.js(f"document.querySelector({json.dumps(selector)}).textContent"))


def test_export_with_options_then_import_into_a_new_project(launcher: Launcher,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "exports"
    out.mkdir()
    app = launcher(labeled_project(tmp_path))
    add_labels(app)
    picks = wire(app, out)
    open_dialog(app, "exportdialog", "openExportDialog")
    # Every format is offered with its description; COCO (the default) offers mask options.
    assert app.js("document.querySelectorAll('.xfer-format').length") == 8
    assert "instance segmentation" in text(app, '.xfer-format[data-format="coco"] .xfer-format-desc')
    assert app.js("!!document.querySelector('[data-option=\"segmentation\"]')")
    assert app.js("document.querySelector('[data-action=\"export\"]').disabled"), "no folder yet"

    app.click_element('[data-action="choose-out"]')
    app.settle()
    assert picks["asked"] == ["folder"]
    assert text(app, ".xfer-target") == f"Writes {out / 'field photos-coco'}"
    # A split that does not add up is explained and blocks the export.
    app.click_element('[data-option="split"]')
    app.click_element('[data-option="test"]')
    app.settle()
    app.run("""const el = document.querySelector('[data-option="test"]');
        el.value = '25'; el.dispatchEvent(new Event('input')); return true;""")
    assert "add up to 100" in text(app, ".xfer-problem")
    assert app.js("document.querySelector('[data-action=\"export\"]').disabled")
    app.run("""const el = document.querySelector('[data-option="test"]');
        el.value = '10'; el.dispatchEvent(new Event('input')); return true;""")
    assert text(app, ".xfer-problem") == ""

    app.click_element('[data-action="export"]')
    app.settle()
    app.wait_for("!!document.querySelector('.xfer-done')", what="the export summary")
    target = out / "field photos-coco"
    assert "Exported 3 images and 2 shapes as COCO" in text(app, ".xfer-done")
    assert text(app, ".xfer-done .xfer-path") == str(target)
    # The point cannot be COCO: listed, grouped by its reason, with the image it is on.
    assert "COCO has no point annotations" in text(app, ".xfer-group-reason")
    app.click_element(".xfer-group summary")
    app.settle()
    assert "a_first.png" in text(app, ".xfer-items li")
    splits = {p.name for p in (target / "annotations").iterdir()}
    assert splits <= {"train.json", "val.json", "test.json"} and "train.json" in splits
    names = {c["name"] for c in json.loads((target / "annotations" / "train.json").read_text())["categories"]}
    assert names == {"moth", EVIL}
    app.click_element('[data-action="close"]')
    app.settle()
    assert app.js("document.querySelector('.dialog-xfer')") is None

    # The same images in a new project: import the export, see the report, see the labels.
    fresh = make_project(tmp_path / "fresh copy")
    other = launcher(fresh)
    picks = wire(other, target / "annotations" / "train.json")
    open_dialog(other, "importdialog", "openImportDialog")
    assert other.js("document.querySelectorAll('.xfer-format').length") == 5
    assert other.js("document.querySelector('[data-action=\"import\"]').disabled")
    other.click_element('[data-action="choose-source"]')
    other.settle()
    assert picks["asked"] == ["file"]
    other.click_element('[data-action="import"]')
    other.settle()
    other.wait_for("!!document.querySelector('.xfer-done')", what="the import report")
    train = json.loads((target / "annotations" / "train.json").read_text())
    added = len(train["annotations"])
    assert f"Added {added} shape" in text(other, ".xfer-done")
    assert EVIL in text(other, ".xfer-summary")          # the class name, as text
    assert other.js("typeof window.__pwned") == "undefined"
    assert other.js("document.querySelectorAll('.dialog-xfer img').length") == 0
    assert len(other.api.require_project().all_shapes(("accepted",))) == added
    # The page refreshed: the new classes are in the panel without reopening anything.
    assert other.js("window.fieldmark.state.classes.length") >= 1
    other.click_element('[data-action="close"]')
    other.settle()


def test_cancel_stops_the_export_and_leaves_nothing(launcher: Launcher, tmp_path: Path) -> None:
    out = tmp_path / "exports"
    out.mkdir()
    app = launcher(labeled_project(tmp_path))
    add_labels(app)
    wire(app, out)
    # Hold the job at its first image copy until the person has pressed Cancel.
    gate, held = threading.Event(), threading.Event()

    def hold(name: str, payload: Any) -> None:
        if name == "job.progress" and str(payload.get("message", "")).startswith("Copying") \
                and not held.is_set():
            held.set()
            gate.wait(20)
    app.api.listeners.append(hold)
    try:
        open_dialog(app, "exportdialog", "openExportDialog")
        app.click_element('[data-action="choose-out"]')
        app.settle()
        app.click_element('[data-action="export"]')
        app.wait_for("!!document.querySelector('.xfer-progress')", what="the progress view")
        app.wait_for("!!document.querySelector('.xfer-step').textContent.startsWith('Copying')",
                     what="progress reaching the image copies")
        assert held.is_set()
        app.click_element('[data-action="cancel-job"]')
        app.wait_for("!!document.querySelector('.xfer-step').textContent.startsWith('Stopping')",
                     what="the page asking to stop")
    finally:
        gate.set()
    app.wait_for("!!document.querySelector('.xfer-message')", what="the cancelled view")
    app.settle()
    assert "Export cancelled" in text(app, ".xfer-message")
    assert list(out.iterdir()) == [], "a cancelled export must leave nothing behind"
