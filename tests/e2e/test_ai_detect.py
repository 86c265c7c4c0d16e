"""Detect from text in the real page with a tiny random OWLv2 pack: prompts typed in the Assist
tab yield proposals; a threshold or phrase change re-scores from the cached encoding (no
encoder pass); auto-accept (off by default) accepts what scores high enough.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from backend.store import Project
from tests.e2e.harness import Driver, Launcher

pytestmark = pytest.mark.e2e

DETECTOR = "owlv2-tiny-e2e@0.0.1"


def add_class(folder: Path, name: str, prompts: list[str] | None = None, threshold: float = 0.1) -> int:
    """A class in the project on disk (before the window opens), with phrases if given."""
    with Project.open(folder) as store:
        cls = store.add_class(name)
        if prompts is not None:
            store.set_class_prompts(cls["id"], prompts, threshold)
        return int(cls["id"])


def proposals_in_store(app: Driver, image_id: int) -> list[dict[str, Any]]:
    return sorted(app.api.require_project().shapes(image_id, ("pending",)), key=lambda s: s["id"])


def proposals_in_page(app: Driver) -> list[dict[str, Any]]:
    return sorted(app.js("window.fieldmark.state.shapes.filter((s) => s.status === 'pending')"),
                  key=lambda s: s["id"])


def signature(shapes: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """What identifies a proposal across a re-score (ids change): box, score, class, prompt."""
    return {(tuple(round(v, 2) for v in s["geometry"]), round(s["score"], 6), s["class_id"], s["prompt"])
            for s in shapes}


def open_assist(app: Driver) -> None:
    app.click_element("#tab-assist")
    app.settle()
    assert app.js("document.querySelector('#pane-assist').hidden") is False


def try_here(app: Driver) -> None:
    """Press T (try the prompts on this image) and wait for the detection job to finish."""
    app.key(Qt.Key.Key_T)
    app.wait_for("!window.fieldmark.state.ai.busy.detect", timeout=60, what="the detection job")
    app.settle()


def test_a_typed_prompt_yields_proposals(ai_launcher: Launcher, project: Path) -> None:
    moth = add_class(project, "moth")
    app = ai_launcher(project)
    image_id = app.current_id()
    open_assist(app)
    card = f'.prompt-card[data-id="{moth}"]'
    # The class name is offered, not put in: the store has no phrase until the person gives one.
    assert app.api.require_project().classes()[0]["prompts"] == []
    assert app.js(f"document.querySelector('{card} .suggest-name').textContent") == "moth"
    assert app.js("document.querySelector('.assist-actions .btn-primary').disabled") is True

    app.click_element(f"{card} .add-phrase")
    app.settle()
    app.type_text("small moth")
    app.key(Qt.Key.Key_Return)  # leaves the field
    app.settle()
    app.wait_for("window.fieldmark.state.classes[0].prompts.length === 1", what="the phrase to be saved")
    (cls,) = app.api.require_project().classes()
    assert cls["prompts"] == ["small moth"]

    app.click_text(".assist-actions .btn", "Try on this image")
    app.wait_for("!window.fieldmark.state.ai.busy.detect", timeout=60, what="the detection job")
    app.settle()

    store = proposals_in_store(app, image_id)
    assert store, "the tiny detector proposed nothing at threshold 0.1"
    assert all(s["source"] == DETECTOR and s["class_id"] == moth and s["prompt"] == "small moth"
               and s["status"] == "pending" and s["score"] >= cls["threshold"] for s in store)
    page = proposals_in_page(app)
    assert [(s["id"], s["geometry"]) for s in page] == [(s["id"], s["geometry"]) for s in store]
    assert app.drawn_count() == len(store)
    assert app.js("window.fieldmark.state.ai.queue.length") == len(store)  # the review queue knows


def test_threshold_and_phrase_changes_rescore_without_an_encoder_pass(ai_launcher: Launcher, project: Path) -> None:
    moth = add_class(project, "moth", ["moth"], threshold=0.1)
    app = ai_launcher(project)
    image_id = app.current_id()
    open_assist(app)
    try_here(app)
    detector = app.ai().models.detector()
    encodes = detector.encoder_runs
    first = proposals_in_store(app, image_id)
    assert first and encodes >= 1

    # Keyboard on the slider: PageUp is +0.1 on a 0..1 range; the app's own keys stay quiet.
    slider = f'.prompt-card[data-id="{moth}"] input.threshold'
    app.run(f"document.querySelector('{slider}').focus(); return true;")
    app.key(Qt.Key.Key_PageUp)
    app.key(Qt.Key.Key_PageUp)
    app.wait_for(f"document.querySelector('{slider}').value === '0.3'", what="the slider at 0.3")
    app.wait_for("window.fieldmark.state.shapes.filter((s) => s.status === 'pending')"
                 ".every((s) => s.score >= 0.3)", what="the re-scored proposals")
    app.settle()
    assert app.current_id() == image_id, "PageUp on the slider must not change the image"
    assert app.api.require_project().classes()[0]["threshold"] == pytest.approx(0.3)
    higher = proposals_in_store(app, image_id)
    assert signature(higher) == {s for s in signature(first) if s[1] >= 0.3}
    assert len(higher) < len(first), "no proposal of the tiny model scored below 0.3; pick other images"
    assert signature(proposals_in_page(app)) == signature(higher)

    app.key(Qt.Key.Key_PageDown)
    app.key(Qt.Key.Key_PageDown)
    app.wait_for(f"window.fieldmark.state.shapes.filter((s) => s.status === 'pending').length === {len(first)}",
                 what="the proposals back at 0.1")
    app.settle()
    assert signature(proposals_in_store(app, image_id)) == signature(first)

    # A new phrase: its text is encoded (small), the image is not encoded again.
    phrase = f'.prompt-card[data-id="{moth}"] .phrase-input'
    app.click_element(phrase)
    app.key(Qt.Key.Key_End)
    app.type_text(" wing")
    app.wait_for("window.fieldmark.state.shapes.some((s) => s.status === 'pending' && s.prompt === 'moth wing')",
                 what="proposals for the edited phrase")
    app.key(Qt.Key.Key_Escape)  # leaves the field
    app.settle()
    edited = proposals_in_store(app, image_id)
    assert edited and {s["prompt"] for s in edited} == {"moth wing"}
    assert signature(proposals_in_page(app)) == signature(edited)
    assert detector.encoder_runs == encodes, "a re-score ran the image encoder"


def test_auto_accept_is_off_until_set_and_then_accepts_high_scores(ai_launcher: Launcher, project: Path) -> None:
    add_class(project, "moth", ["moth"], threshold=0.1)
    app = ai_launcher(project)
    image_id = app.current_id()
    app.click_element("#tab-review")
    app.settle()
    box = ".auto-accept input[type=checkbox]"
    assert app.js(f"document.querySelector('{box}').checked") is False
    assert app.call("ai.settings")["ok"] == {"auto_accept": None}
    try_here(app)
    assert app.api.require_project().shapes(image_id, ("accepted",)) == [], "nothing is accepted unasked"
    scores = sorted(s["score"] for s in proposals_in_store(app, image_id))
    cut = round(scores[len(scores) // 2], 2)  # about half the proposals score at least this

    app.run(f"const n = document.querySelector('.auto-accept input[type=number]'); n.value = '{cut}'; return true;")
    app.click_element(box)
    app.wait_for("window.fieldmark.state.ai.settings.auto_accept !== null", what="auto-accept on")
    assert app.call("ai.settings")["ok"] == {"auto_accept": pytest.approx(cut)}

    # Trying again replaces the image's proposals; the new ones at or above the cut are
    # accepted as they are written, the others wait for review.
    try_here(app)
    accepted = app.api.require_project().shapes(image_id, ("accepted",))
    pending = proposals_in_store(app, image_id)
    assert accepted and pending
    assert all(s["score"] >= cut and s["source"] == DETECTOR for s in accepted)
    assert all(s["score"] < cut for s in pending)
    assert sorted(round(s["score"], 6) for s in accepted + pending) == [round(x, 6) for x in scores]


def test_find_more_like_this_proposes_the_class_of_the_example(ai_launcher: Launcher, project: Path) -> None:
    moth = add_class(project, "moth", ["moth"], threshold=0.0)
    app = ai_launcher(project)
    image_id = app.current_id()
    try_here(app)
    app.key(Qt.Key.Key_Tab)  # the highest-scoring proposal, kept as the example
    app.key(Qt.Key.Key_Return)
    app.settle()
    (example,) = app.api.require_project().shapes(image_id, ("accepted",))
    app.run(f"window.fieldmark.actions.selectShape({example['id']}); window.fieldmark.canvas.select({example['id']}); return 1")
    app.run("""const ids = window.fieldmark.state.shapes.filter((s) => s.status === 'pending').map((s) => s.id);
        await window.fieldmark.api('review.set', {ids, status: 'rejected'}); return ids.length;""")
    app.settle()
    assert proposals_in_store(app, image_id) == []

    app.key(Qt.Key.Key_M)
    app.wait_for("!window.fieldmark.state.ai.busy.similar", timeout=60, what="the similar-objects job")
    app.settle()
    found = proposals_in_store(app, image_id)
    assert found, "the tiny detector found nothing like the example"
    assert all(s["class_id"] == moth and s["source"] == DETECTOR for s in found)
    assert all(s["geometry"] != example["geometry"] for s in found), "the example itself is not proposed"
    assert signature(proposals_in_page(app)) == signature(found)
    assert app.js("document.querySelector('.sb-message').textContent").startswith(f"{len(found)} similar object")


def test_find_more_like_this_on_all_images_is_a_run_over_every_image(ai_launcher: Launcher,
                                                                     project: Path) -> None:
    moth = add_class(project, "moth", ["moth"], threshold=0.0)
    app = ai_launcher(project)
    image_id = app.current_id()
    try_here(app)
    app.key(Qt.Key.Key_Tab)
    app.key(Qt.Key.Key_Return)  # accept the best proposal: it is the example
    app.settle()
    (example,) = app.api.require_project().shapes(image_id, ("accepted",))
    app.run(f"window.fieldmark.actions.selectShape({example['id']}); window.fieldmark.canvas.select({example['id']}); return 1")
    app.settle()

    app.click_text("button", "…on all images")
    app.wait_for("window.fieldmark.state.ai.run === null && window.fieldmark.state.ai.lastRun !== null",
                 timeout=120, what="the similar run to end")
    app.settle()
    project_store = app.api.require_project()
    others = [im["id"] for im in project_store.images() if im["id"] != image_id]
    found = [s for i in others for s in project_store.shapes(i, ("pending",))]
    assert found, "the run proposed nothing on the other images"
    assert all(s["class_id"] == moth and s["source"] == DETECTOR for s in found)
    assert all(s["prompt"] == f"similar to shape #{example['id']}" for s in found)
    runs = app.call("runs.list", {})["ok"]
    assert runs[0]["kind"] == "similar" and runs[0]["state"] == "done"
