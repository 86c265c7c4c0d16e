"""SIGKILL an editing process at random moments: the project always reopens and keeps every
edit that was acknowledged, and undo still works.

Each trial forks a worker (tests/reliability/crash_writer.py) that opens a project through the
app's API and edits it without pause: small edits, undo and redo, class changes, and big
transactions (hundreds of shapes in one step, a model's proposals, an import, accept-all). The
worker is SIGKILLed after a random delay, then this process opens the project as the app would
and checks:

- it opens (not "locked", not damaged) and ``PRAGMA integrity_check`` is ``ok``;
- its visible state is exactly the one after the last acknowledged edit, or after the edit
  that was in flight when the kill came (told apart by undoing that edit, or for the edits that
  are not undoable, by rebuilding the state before it);
- undo then redo of the newest step round-trips.

Trials run in chains on the same project, so each trial starts from a project that was killed
before. Seeds are fixed; a failure names the seed and the kill delay.
"""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from backend.ai.proposals import AUTO_ACCEPT_KEY
from backend.errors import FieldmarkError
from backend.imaging import SUPPORTED_EXTENSIONS
from backend.store import Project
from tests.reliability.crash_forks import ForkServer, tail
from tests.reliability.crash_state import digest, integrity, read_log, reader, snapshot, summary

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fork are POSIX")

CHAINS, PER_CHAIN = 13, 5          # 65 kills
MAX_DELAY_S = 0.3
BASE_SEED = 8_000
UNDOABLE_BY_REDO = {"edit.undo": "redo", "edit.redo": "undo"}


@pytest.fixture(scope="module")
def server() -> Iterator[ForkServer]:
    fork_server = ForkServer()
    yield fork_server
    fork_server.close()


def make_folder(folder: Path, n: int = 12) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(len(str(folder)))
    for i in range(n):
        pixels = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i + 1:02d}.png")
    return folder


def _rebuild_before(snap: dict[str, Any], intent: dict[str, Any]) -> dict[str, Any] | None:
    """The state before a committed in-flight edit that undo cannot take back, or None."""
    if intent["op"] == "prompts":
        classes = [[*c[:4], *intent["old"]] if c[0] == intent["class_id"] else c
                   for c in snap["classes"]]
        return {**snap, "classes": classes}
    if intent["op"] == "propose":
        new = [s for s in snap["shapes"] if s[0] > intent["max_id"]]
        if any(s[1] != intent["image_id"] or s[6] != intent["source"] for s in new):
            return None  # a model write added shapes elsewhere: never the state before
        kept = [s for s in snap["shapes"] if s[0] <= intent["max_id"]]
        ids = {s[0] for s in kept}
        back = sorted(kept + [r for r in intent["replaced"] if r[0] not in ids],
                      key=lambda s: (s[1], s[0]))  # snapshot order: image, then id
        return {**snap, "shapes": back}
    return None


def check(folder: Path, log: Path, data: Path) -> tuple[str | None, str]:
    """(problem or None, what the kill interrupted) for one killed worker."""
    entries = read_log(log)
    acks = [e for e in entries if e["ev"] == "ack"]
    flight = entries[-1] if entries and entries[-1]["ev"] == "intent" else None
    where = "opening" if not acks else (f"{flight['op']}" if flight else "between edits")
    settings = data / "settings.json"  # the recent-projects list, written at every open
    if settings.exists() and not isinstance(json.loads(settings.read_text("utf-8")), dict):
        return f"{settings} is not a JSON object", where
    try:
        project = Project.open(folder)
    except FieldmarkError as exc:
        return f"the project did not reopen: {exc.message}", where
    with project, contextlib.closing(reader(project.db_path)) as db:
        sound = integrity(project.db_path)
        if sound != "ok":
            return f"integrity_check: {sound}", where
        if not acks:
            return _undo_round_trip(project, db), where
        last = acks[-1]
        snap = snapshot(db)
        if digest(snap) != last["digest"]:
            if flight is None:
                return (f"the state is not the one after the last acknowledged edit "
                        f"#{last['n']} ({last['op']}) and no edit was in flight: "
                        f"expected {last['shapes']} shapes, found {summary(snap)}"), where
            before = _rebuild_before(snap, flight)
            if before is None:
                method = flight.get("method", "")
                getattr(project, UNDOABLE_BY_REDO.get(method, "undo"))()
                before = snapshot(db)
            if digest(before) != last["digest"]:
                return (f"the state is neither the one after the last acknowledged edit "
                        f"#{last['n']} ({last['op']}, {last['shapes']} shapes) nor that plus "
                        f"the edit in flight ({flight['op']}): found {summary(snap)}, "
                        f"{summary(before)} once the in-flight edit is taken back"), where
            where += " (committed)"
        allowed = {last["auto_accept"]}
        if flight is not None and flight["op"] == "auto_accept":
            allowed.add(flight["value"])
        if project.get_setting(AUTO_ACCEPT_KEY) not in allowed:
            return (f"auto-accept is {project.get_setting(AUTO_ACCEPT_KEY)!r}, acknowledged "
                    f"{last['auto_accept']!r}"), where
        return _undo_round_trip(project, db), where


def _undo_round_trip(project: Project, db: sqlite3.Connection) -> str | None:
    if not project.undo_state()["can_undo"]:
        return None
    before = snapshot(db)
    step = project.undo_state()["undo"]
    try:
        project.undo()
        project.redo()
    except FieldmarkError as exc:
        return f"undo/redo of {step!r} after the reopen failed: {exc.message}"
    after = snapshot(db)
    if digest(after) != digest(before):
        return (f"undo then redo of {step!r} after the reopen did not come back to the same "
                f"state: {_diff(before, after)}")
    return None


def _diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    """The first few rows that differ between two snapshots, for a failure message."""
    out = []
    for part in ("shapes", "classes", "images"):
        rows_a = {r[0]: r for r in a[part]}
        rows_b = {r[0]: r for r in b[part]}
        for key in sorted(set(rows_a) | set(rows_b)):
            if rows_a.get(key) != rows_b.get(key):
                out.append(f"{part} {key}: {rows_a.get(key)} -> {rows_b.get(key)}")
    return f"{len(out)} rows differ: " + "; ".join(out[:4])


def test_killed_editor_keeps_every_acknowledged_edit(server: ForkServer, tmp_path: Path) -> None:
    failures: list[str] = []
    where: Counter[str] = Counter()
    kills = 0
    for chain in range(CHAINS):
        folder = make_folder(tmp_path / f"project{chain}")
        data = tmp_path / f"data{chain}"
        for k in range(PER_CHAIN):
            seed = BASE_SEED + chain * PER_CHAIN + k
            rng = random.Random(seed)
            # A fifth of the kills count from the fork (some land while the project opens, or
            # while a fresh one gets its tables); the others from the first acknowledged edit.
            from_log = rng.random() >= 0.2
            delay = rng.uniform(0, MAX_DELAY_S)
            log, err = tmp_path / f"log{seed}.jsonl", tmp_path / f"err{seed}.txt"
            answer = server.run("writer", {"folder": str(folder), "log": str(log), "seed": seed,
                                           "data": str(data)},
                                err, kill_after=delay, from_log=from_log, timeout=60)
            label = (f"seed {seed} (kill {delay:.3f} s after "
                     f"{'the first ack' if from_log else 'the fork'})")
            if not answer["killed"] or answer["timed_out"]:
                failures.append(f"{label}: the worker was not killed as planned ({answer}):\n"
                                f"{tail(err)}")
                break
            kills += 1
            problem, at = check(folder, log, data)
            where[at] += 1
            if problem:
                failures.append(f"{label}, killed during {at}: {problem}")
                break  # the rest of the chain would only repeat it
    print(f"\nwriter crash trials: {kills} SIGKILLs; interrupted: {dict(sorted(where.items()))}")
    assert not failures, f"{len(failures)} of {kills} trials failed:\n" + "\n".join(failures)
    assert kills == CHAINS * PER_CHAIN


def test_undo_and_redo_of_a_class_keep_the_class_of_later_proposals(tmp_path: Path) -> None:
    """Found by the trials above (seed 8013): a model's proposals are written without an undo
    step, so undoing "Add class" unassigned them and redoing it did not give the class back."""
    folder = make_folder(tmp_path / "photos", 1)
    with Project.open(folder) as project:
        project.scan(SUPPORTED_EXTENSIONS)
        (image,) = project.images()
        moth = project.add_class("moth")
        (proposal,) = project.replace_proposals(image["id"], "owl@1", [
            {"kind": "box", "geometry": [1, 2, 30, 40], "class_id": moth["id"], "score": 0.5}])
        project.undo()   # "Add class 'moth'": the proposal is unassigned while the class is gone
        assert project.shape(proposal["id"])["class_id"] is None
        project.redo()
        assert project.shape(proposal["id"])["class_id"] == moth["id"]
        project.delete_class(moth["id"])
        project.undo()
        (proposal2,) = project.replace_proposals(image["id"], "owl@2", [
            {"kind": "box", "geometry": [50, 50, 90, 90], "class_id": moth["id"], "score": 0.5}])
        project.redo()   # "Delete class 'moth'" again, now with a proposal it never saw
        project.undo()
        assert project.shape(proposal2["id"])["class_id"] == moth["id"]
        assert project.shape(proposal["id"])["class_id"] == moth["id"]
