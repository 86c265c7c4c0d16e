"""Batch runs: failures listed and skipped, pause/cancel/resume, and resume after a kill, with
every image processed exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.ai.runs import RunBusy, RunControl, RunStopped
from backend.imaging import SUPPORTED_EXTENSIONS
from backend.store import Project
from tests.ai.conftest import Packs, make_photos

pytestmark = pytest.mark.models
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ai(ai_services: Any, packs: Packs) -> Any:
    ai_services.models.install(packs.detector)
    ai_services.models.install(packs.segmenter)
    return ai_services


@pytest.fixture
def batch(tmp_path: Path) -> Iterator[Project]:
    folder = tmp_path / "batch"
    make_photos(folder, 20, corrupt=(4, 13))
    with Project.open(folder) as p:
        p.scan(SUPPORTED_EXTENSIONS)
        disc = p.add_class("disc")["id"]
        p.set_class_prompts(disc, ["a round disc"], 0.2)
        yield p


def _items(project: Project, run_id: int) -> dict[int, dict[str, Any]]:
    return {i["image_id"]: i for i in project.run_items(run_id)}


def test_a_batch_with_two_corrupt_files_finishes_and_lists_exactly_those(ai: Any,
                                                                         batch: Project) -> None:
    run = ai.runs.create(batch, "detect")
    seen: list[tuple[int, int, float | None]] = []
    result = ai.runs.execute(batch, run["run"], lambda d, t, m, eta: seen.append((d, t, eta)))
    assert sorted(f["name"] for f in result["failed"]) == ["img05.jpg", "img14.jpg"]
    assert all(f["name"] in f["reason"] for f in result["failed"]), "the reason names the file"
    assert (result["done"], result["state"]) == (18, "done")
    assert seen[-1][:2] == (20, 20) and all(eta is None or eta >= 0 for _, _, eta in seen)
    assert ai.models.detector().encoder_runs == 18
    items = _items(batch, run["run"])
    assert {i["state"] for i in items.values()} == {"done", "failed"}
    for image in batch.images():
        shapes = batch.proposals(image["id"])
        assert len(shapes) == items[image["id"]]["shapes"]


def test_cancel_then_resume_processes_every_image_exactly_once(ai: Any, batch: Project) -> None:
    run_id = ai.runs.create(batch, "detect")["run"]
    control = RunControl()

    def progress(done: int, total: int, message: str, eta: float | None) -> None:
        if done == 7:
            control.request("cancelled")

    with pytest.raises(RunStopped):
        ai.runs.execute(batch, run_id, progress, control)
    assert ai.runs.record(batch, run_id)["state"] == "cancelled"
    before = {k: v for k, v in _items(batch, run_id).items() if v["state"] != "todo"}
    assert len(before) == 7
    ai.runs.prepare_resume(batch, run_id)
    result = ai.runs.execute(batch, run_id)
    assert result["state"] == "done" and result["done"] == 18
    after = _items(batch, run_id)
    assert all(after[k] == v for k, v in before.items()), "finished images were not redone"
    assert ai.models.detector().encoder_runs == 18, "each readable image encoded once in all"


def test_a_run_that_is_not_going_can_be_paused_and_only_one_runs_at_a_time(
        ai: Any, batch: Project) -> None:
    run_id = ai.runs.create(batch, "detect")["run"]
    assert ai.runs.record(batch, run_id)["state"] == "interrupted", "nothing is running it"
    assert ai.runs.stop(batch, run_id, "paused")["state"] == "paused"
    assert [r["state"] for r in ai.runs.records(batch)] == ["paused"]
    refused: list[str] = []

    def progress(*args: Any) -> None:
        if not refused:
            try:
                ai.runs.create(batch, "detect")
            except RunBusy as exc:
                refused.append(exc.message)

    ai.runs.prepare_resume(batch, run_id)
    ai.runs.execute(batch, run_id, progress)
    assert refused and "still going" in refused[0]
    assert [r["state"] for r in ai.runs.records(batch)] == ["done"]


def test_segment_boxes_run_turns_every_box(ai: Any, batch: Project) -> None:
    ids = [im["id"] for im in batch.images() if im["error"] is None][:3]
    for image_id in ids:
        batch.add_shape(image_id, "box", [20, 20, 90, 80])
    run = ai.runs.create(batch, "segment_boxes", ids)
    result = ai.runs.execute(batch, run["run"])
    assert result["done"] == 3 and result["shapes"] == 3
    assert all(s["kind"] in ("polygon", "mask") for i in ids for s in batch.shapes(i))


def test_a_killed_run_resumes_and_processes_every_image_once(packs: Packs, tmp_path: Path,
                                                             data_dir: Path, ai: Any) -> None:
    folder = tmp_path / "killed"
    make_photos(folder, 40, corrupt=(2,), size=(480, 640))
    env = {**os.environ, "FIELDMARK_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "autolabel", str(folder), "--detector",
         str(packs.detector), "--prompt", "disc=a round disc", "--threshold", "0.2",
         "--threads", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = folder / ".fieldmark" / "project.sqlite"
    try:
        finished = _wait_items(db, proc, at_least=5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    before = {r[0]: r for r in _read(db, "SELECT image_id, state, shapes, finished FROM run_items "
                                          "WHERE state != 'todo'")}
    assert len(before) >= finished and len(before) < 40, "killed mid-way"
    with Project.open(folder) as project:  # the kill released the folder lock
        (run,) = ai.runs.records(project)
        assert run["state"] == "interrupted"
        todo = project.run_todo(run["run"])
        ai.runs.prepare_resume(project, run["run"])
        result = ai.runs.execute(project, run["run"])
        assert result["state"] == "done" and [f["name"] for f in result["failed"]] == ["img03.jpg"]
        items = _items(project, run["run"])
        assert all(items[k]["finished"] == v[3] for k, v in before.items()), "not redone"
        assert set(todo) == set(items) - set(before)
        readable = [i for i in todo if items[i]["state"] == "done"]
        assert ai.models.detector().encoder_runs == len(readable)
        for image_id, item in items.items():
            shapes = project.proposals(image_id)
            assert len(shapes) == item["shapes"], image_id
            assert len({s["created"] for s in shapes}) <= 1, "written once, in one transaction"


def _read(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _wait_items(db: Path, proc: subprocess.Popen[bytes], at_least: int,
                timeout: float = 180.0) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"autolabel ended (exit {proc.returncode}) before it was killed")
        try:
            n = _read(db, "SELECT COUNT(*) FROM run_items WHERE state != 'todo'")[0][0]
        except sqlite3.Error:
            n = 0  # not created yet
        if n >= at_least:
            return int(n)
        time.sleep(0.01)
    raise AssertionError("autolabel made no progress")
