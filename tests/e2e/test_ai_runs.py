"""Batch runs from the real page with a tiny random OWLv2 pack: "Run on all images" goes through
every image, lists exactly the files that failed (and why) and goes on; pause, cancel and
resume — also after the window was closed and the project opened again — process every image
exactly once.

To stop a run at a known image without timing, the test holds the run's worker thread in the
event it sends after an image (``proposals.changed``) until the person's click has been sent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.gui.waiting import wait_until
from backend.store import Project
from tests.e2e.harness import Driver, Launcher, close_checked
from tests.e2e.projects import write_image

pytestmark = pytest.mark.e2e

SIZE = (48, 36)


def make_folder(folder: Path, n: int, broken: tuple[str, ...] = ()) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        write_image(folder / f"img_{i:02d}.png", *SIZE, seed=i)
    for name in broken:
        (folder / name).write_bytes(b"this is not an image, whatever its name says" * 4)
    with Project.open(folder) as store:
        cls = store.add_class("moth")
        store.set_class_prompts(cls["id"], ["moth"], 0.2)
    return folder


class Gate:
    """Records the images a run finished (in the order the run reports them) and can hold the
    run's thread after the n-th one until released."""

    def __init__(self) -> None:
        self.done: list[int] = []
        self.hold_at: int | None = None
        self.reached = threading.Event()
        self.release = threading.Event()

    def attach(self, app: Driver) -> None:
        app.api.listeners.append(self.listen)

    def listen(self, name: str, payload: Any) -> None:
        if name != "proposals.changed" or threading.current_thread() is threading.main_thread():
            return  # review and re-score events come from the GUI thread; runs from their job
        self.done.append(int(payload["image_id"]))
        if self.hold_at is not None and len(self.done) == self.hold_at:
            self.reached.set()
            self.release.wait(timeout=60)

    def hold(self, at: int) -> None:
        self.hold_at = at
        self.reached.clear()
        self.release.clear()

    def wait_reached(self) -> None:
        # wait_until keeps the Qt event loop (and so the page) going meanwhile.
        assert wait_until(self.reached.is_set, 60), f"the run never reached image {self.hold_at}"

    def open(self) -> None:
        self.hold_at = None
        self.release.set()


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.open()  # never leave a run thread waiting


def run_card(app: Driver) -> str:
    return str(app.js("document.querySelector('.run-slot').textContent"))


def stop_asked(app: Driver) -> None:
    """Wait until the page's pause / cancel reached the backend (the run is held meanwhile, so
    the page is not idle: no settle here)."""
    app.wait_for("window.fieldmark.state.ai.run && window.fieldmark.state.ai.run.stopAsked",
                 what="the stop request to be answered")


def wait_run_end(app: Driver) -> None:
    app.wait_for("window.fieldmark.state.ai.run === null && window.fieldmark.state.ai.lastRun !== null",
                 timeout=120, what="the run to end")
    app.settle()


def test_a_batch_lists_exactly_the_files_that_failed(ai_launcher: Launcher, tmp_path: Path) -> None:
    broken = ("broken_a.png", "broken_b.jpg")
    folder = make_folder(tmp_path / "batch", 18, broken)
    app = ai_launcher(folder)
    app.click_element("#tab-assist")
    app.settle()
    # What the run card said while the run went on (its progress and ETA lines).
    app.run("""window.__runText = new Set();
        new MutationObserver(() => window.__runText.add(document.querySelector('.run-slot').textContent))
          .observe(document.querySelector('.run-slot'), {subtree: true, childList: true, characterData: true});
        return true;""")
    app.click_text(".assist-actions .btn", "Run on all images")
    wait_run_end(app)

    (run,) = app.api.require_project().runs()
    assert run["state"] == "done" and run["total"] == 20 and run["done"] == 18 and run["failed"] == 2
    names = app.js("[...document.querySelectorAll('.run-slot .failure-name')].map((e) => e.textContent)")
    assert sorted(names) == sorted(broken)
    reasons = app.js("[...document.querySelectorAll('.run-slot .failure-reason')].map((e) => e.textContent)")
    assert len(reasons) == 2 and all(reasons)
    assert "Finished · 18 images" in run_card(app)
    seen = " | ".join(app.js("[...window.__runText]"))
    assert "of 20" in seen, "the card never showed the progress"
    items = app.api.require_project().run_items(run["run"])
    assert sorted(i["state"] for i in items) == ["done"] * 18 + ["failed"] * 2


def test_pause_cancel_restart_and_resume_process_each_image_once(
        ai_launcher: Launcher, launcher: Launcher, tmp_path: Path, gate: Gate) -> None:
    folder = make_folder(tmp_path / "resume", 12)
    app = ai_launcher(folder)
    gate.attach(app)
    ids = sorted(im["id"] for im in app.api.require_project().images())
    app.click_element("#tab-assist")
    app.settle()

    gate.hold(3)
    app.click_text(".assist-actions .btn", "Run on all images")
    gate.wait_reached()
    app.wait_for("window.fieldmark.state.ai.run && window.fieldmark.state.ai.run.run !== null",
                 what="the page to know the run")
    app.click_text(".run-card.live .btn", "Pause")
    stop_asked(app)
    gate.open()
    wait_run_end(app)
    (run,) = app.api.require_project().runs()
    assert run["state"] == "paused" and run["done"] == 3
    assert "paused · 3 of 12" in run_card(app)

    gate.hold(7)
    app.click_text(".run-resumable .btn", "Resume")
    gate.wait_reached()
    app.click_text(".run-card.live .btn", "Cancel")
    stop_asked(app)
    gate.open()
    wait_run_end(app)
    (run,) = app.api.require_project().runs()
    assert run["state"] == "cancelled" and run["done"] == 7
    assert len(gate.done) == 7

    # Close the window and open the project again: the run is still there to resume.
    close_checked(app)
    again = launcher(folder)
    gate.attach(again)
    again.click_element("#tab-assist")
    again.settle()
    assert "cancelled · 7 of 12" in run_card(again)
    again.click_text(".run-resumable .btn", "Resume")
    wait_run_end(again)

    (run,) = again.api.require_project().runs()
    assert run["state"] == "done" and run["done"] == 12 and run["failed"] == 0
    assert sorted(gate.done) == ids, "every image exactly once, over three jobs and a restart"
    items = again.api.require_project().run_items(run["run"])
    assert [i["state"] for i in items] == ["done"] * 12
    assert "Finished · 12 images" in run_card(again)
    assert again.js("document.querySelectorAll('.run-resumable').length") == 0
