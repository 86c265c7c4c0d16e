"""The Models dialog in the real page: with no pack it says how to add one (and that smart select
works without); with packs it lists them, switches the active detector and segmenter, shows the
device and why, and unloads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import TINY_PACKS
from tests.e2e.harness import Driver, Launcher

pytestmark = pytest.mark.e2e


def open_models(app: Driver) -> None:
    app.click_element(".models-btn")
    app.wait_for("!!document.querySelector('.dialog-models .device-line')", what="the Models dialog")
    app.settle()


def dialog_text(app: Driver) -> str:
    return str(app.js("document.querySelector('.dialog-models').textContent"))


def test_without_packs_the_app_says_how_to_add_one(launcher: Launcher, project: Path, ai_env: Path) -> None:
    app = launcher(project)
    assert "No model packs installed yet" in app.js("document.querySelector('#pane-assist').textContent")
    open_models(app)
    text = dialog_text(app)
    assert "No model packs are installed" in text and "models install" in text
    assert "smart select" in text and str(ai_env) in text
    assert app.js("document.querySelectorAll('.dialog-models .pack-row[data-pack]:not([data-pack=\"\"])').length") == 0
    assert app.js("document.querySelector('.dialog-models .models-install .btn-primary').disabled") is False


def test_packs_are_listed_chosen_and_unloaded(ai_launcher: Launcher, project: Path) -> None:
    app = ai_launcher(project)
    detector, segmenter = TINY_PACKS["detector"][1], TINY_PACKS["segmenter"][1]
    open_models(app)
    rows = app.js("""[...document.querySelectorAll('.dialog-models .pack-row')].map((r) => [r.dataset.pack,
        r.querySelector('input').checked, r.querySelector('.pack-meta') && r.querySelector('.pack-meta').textContent,
        r.querySelector('.pack-size') && r.querySelector('.pack-size').textContent])""")
    by_id = {r[0]: r for r in rows}
    assert set(by_id) == {"", detector, segmenter}
    assert by_id[detector][1] and by_id[segmenter][1], "both tiny packs are active"
    assert by_id[detector][2] == f"owlv2 · 0.0.1 · {detector}" and by_id[detector][3].endswith("KB")
    assert "CPUExecutionProvider" in dialog_text(app) and "threads" in dialog_text(app)

    # "None" for the detector: the backend forgets the choice, the page follows.
    app.click_element('.dialog-models .pack-list[aria-label="Detector"] .pack-row[data-pack=""]')
    app.wait_for("window.fieldmark.state.ai.models.active.detector === null", what="no detector")
    assert app.ai().models.active("detector") is None
    assert app.ai().models.active("segmenter").id == segmenter
    app.click_element(f'.dialog-models .pack-list[aria-label="Detector"] .pack-row[data-pack="{detector}"]')
    app.wait_for(f"window.fieldmark.state.ai.models.active.detector === '{detector}'", what="the detector back")

    app.ai().models.detector()  # loaded now (as the first detection would)
    app.run("await window.fieldmark.ai.models.refreshModels(); return 1")
    app.settle()
    assert app.js("window.fieldmark.state.ai.models.memory_bytes") > 0
    app.click_element('.dialog-models .models-section .btn-ghost')  # Unload (the detector comes first)
    app.wait_for("window.fieldmark.state.ai.models.packs.every((p) => !p.loaded)", what="the detector unloaded")
    assert app.ai().models.loaded() == []
