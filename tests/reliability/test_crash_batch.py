"""SIGKILL the headless batch (``main.py autolabel``) at random moments and resume it: every image
is processed exactly once, the result equals an uninterrupted run, the project always reopens.

Each chain is one project. The batch starts; a random delay later it is SIGKILLed; it is then
continued the way a person would, with the command it printed when it started (``continue
with: autolabel ... --resume N``), or started again when it was killed before it printed one.
That repeats until a run finishes. After every kill the project must open and pass
``integrity_check``; an image once committed keeps its run item, its proposals and their ids;
the side log of the worker (tests/reliability/crash_batch.py) must show no image started after
it had been committed. At the end every image is done (the broken one failed, once) and the
proposals equal those of an uninterrupted run on the same images.
"""

from __future__ import annotations

import os
import random
import re
import shlex
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.errors import FieldmarkError
from backend.store import Project
from tests.ai.conftest import _export, make_photos
from tests.reliability.crash_forks import ForkServer, tail
from tests.reliability.crash_state import integrity, read_log

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fork are POSIX"),
              pytest.mark.models]

KILLS = 50
MAX_CHAINS = 25
MAX_KILLS_PER_RUN = 8
IMAGES, BROKEN = 24, (4,)
BASE_SEED = 9_000
HINT = re.compile(r"continue with: (autolabel .* --resume (\d+).*)$", re.MULTILINE)


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random-weight OWLv2 pack of tests/ai (kept across sessions with
    FIELDMARK_TEST_PACKS, like there)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    keep = os.environ.get("FIELDMARK_TEST_PACKS")
    root = Path(keep) if keep else tmp_path_factory.mktemp("crash-packs")
    return _export("owlv2", root / "owlv2-tiny", "owlv2-tiny-test")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    data = tmp_path_factory.mktemp("crash-batch-data")
    fork_server = ForkServer({"FIELDMARK_DATA_DIR": str(data),
                              "FIELDMARK_PACKS_DIR": str(data / "packs"),
                              "HF_HUB_OFFLINE": "1"})
    yield fork_server
    fork_server.close()


def _state(folder: Path) -> dict[str, Any]:
    """Runs, items and proposals of a project, read through the store (which must open)."""
    with Project.open(folder) as project:
        sound = integrity(project.db_path)
        if sound != "ok":
            raise AssertionError(f"integrity_check: {sound}")
        names = {im["id"]: im["name"] for im in project.images()}
        runs = {r["run"]: r for r in project.runs()}
        items = {run: {i["image_id"]: i for i in project.run_items(run)} for run in runs}
        proposals = {image_id: project.proposals(image_id) for image_id in names}
    return {"names": names, "runs": runs, "items": items, "proposals": proposals}


def _committed(state: dict[str, Any]) -> dict[int, tuple[int, float, tuple[int, ...]]]:
    """image -> (run, finished, proposal ids) for every item that is not ``todo`` any more."""
    out = {}
    for run, items in state["items"].items():
        for image_id, item in items.items():
            if item["state"] != "todo":
                if image_id in out:
                    raise AssertionError(f"image {state['names'][image_id]} was processed by "
                                         f"two runs ({out[image_id][0]} and {run})")
                ids = tuple(s["id"] for s in state["proposals"][image_id])
                out[image_id] = (run, item["finished"], ids)
    return out


def _check_attempt(state: dict[str, Any], before: dict[int, Any], log: list[dict[str, Any]]
                   ) -> str | None:
    names = state["names"]
    now = _committed(state)
    for image_id, was in before.items():
        if now.get(image_id) != was:
            return (f"{names[image_id]} was committed before this attempt and changed in it "
                    f"({was} -> {now.get(image_id)})")
    for event in log:
        image_id = event["image"]
        if event["ev"] == "start" and image_id in before:
            return f"{names[image_id]} was processed again after it had been committed"
        if event["ev"] in ("done", "failed") and image_id not in now:
            return f"{names[image_id]} was reported {event['ev']} but is still to do"
    for image_id, (run, _, ids) in now.items():
        item = state["items"][run][image_id]
        created = {s["created"] for s in state["proposals"][image_id]}
        if item["state"] == "done" and (len(ids) != item["shapes"] or len(created) > 1):
            return (f"{names[image_id]}: {len(ids)} proposals stored, the run item says "
                    f"{item['shapes']}, written at {len(created)} different times")
    return None


def _interrupted(log: list[dict[str, Any]], started: bool) -> str:
    """What a kill interrupted, for the summary line."""
    if not started:
        return "before the run started"
    if not log:
        return "before the first image"
    if log[-1]["ev"] == "start":
        return "with an image in flight"
    return "between images"


def _result(state: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    """name -> proposals (class, box, score) rounded, for comparing two runs."""
    return {state["names"][i]: sorted((s["class_id"], tuple(round(c, 3) for c in s["geometry"]),
                                       round(s["score"], 4)) for s in shapes)
            for i, shapes in state["proposals"].items()}


def test_killed_batch_resumes_and_processes_every_image_once(
        server: ForkServer, detector: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    make_photos(source, IMAGES, corrupt=BROKEN)
    fresh = ["autolabel", "", "--detector", str(detector), "--prompt", "disc=a round disc",
             "--threshold", "0.2", "--threads", "1"]

    def run(folder: Path, argv: list[str], tag: str, kill_after: float | None) -> dict[str, Any]:
        argv = [a or str(folder) for a in argv]
        log, err = tmp_path / f"log-{tag}.jsonl", tmp_path / f"err-{tag}.txt"
        answer = server.run("autolabel", {"argv": argv, "log": str(log)}, err,
                            kill_after=kill_after, timeout=120)
        return {**answer, "log": read_log(log), "stderr": tail(err, 20_000)}

    reference_dir = tmp_path / "reference"
    shutil.copytree(source, reference_dir)
    ref = run(reference_dir, fresh, "reference", None)
    assert ref["exit"] == 1, f"the uninterrupted run failed:\n{ref['stderr']}"
    expected = _result(_state(reference_dir))
    duration = ref["alive_s"]

    kills, chains, failures = 0, 0, []
    where: Counter[str] = Counter()
    while kills < KILLS and chains < MAX_CHAINS and not failures:
        folder = tmp_path / f"chain{chains}"
        shutil.copytree(source, folder)
        argv, committed, attempt = fresh, {}, 0
        while True:
            seed = BASE_SEED + chains * 100 + attempt
            delay = random.Random(seed).uniform(0, duration)
            label = f"chain {chains}, attempt {attempt} (seed {seed}, kill after {delay:.3f} s)"
            answer = run(folder, argv, str(seed), delay if attempt < MAX_KILLS_PER_RUN else None)
            try:
                state = _state(folder)
            except (FieldmarkError, AssertionError) as exc:
                failures.append(f"{label}: the project did not reopen soundly: {exc}")
                break
            problem = _check_attempt(state, committed, answer["log"])
            if problem:
                failures.append(f"{label}: {problem}")
                break
            committed = _committed(state)
            hint = HINT.search(answer["stderr"])
            if hint:  # what a person would type: the command the batch printed
                argv = [*shlex.split(hint.group(1)), "--threads", "1"]
            if answer["timed_out"]:
                failures.append(f"{label}: still running after 120 s:\n{answer['stderr']}")
                break
            if not answer["killed"]:
                # 1: done, one image unreadable; 2 "already finished": the kill before came
                # after the last image, before the summary.
                if answer["exit"] != 1 and not (answer["exit"] == 2 and "already finished"
                                                 in answer["stderr"]):
                    failures.append(f"{label}: exit {answer['exit']}:\n{answer['stderr']}")
                elif _result(state) != expected:
                    failures.append(f"{label}: the proposals differ from an uninterrupted run")
                elif len(committed) != IMAGES:
                    failures.append(f"{label}: finished with {len(committed)} of {IMAGES} images")
                break
            kills += 1
            attempt += 1
            where[_interrupted(answer["log"], hint is not None)] += 1
        chains += 1
    print(f"\nbatch crash trials: {kills} SIGKILLs over {chains} projects, each resumed until "
          f"its run finished "
          f"(uninterrupted run {duration:.2f} s); killed {dict(where)}")
    assert not failures, "\n".join(failures)
    assert kills >= KILLS


def test_the_printed_commands_continue_an_interrupted_run(
        detector: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """After a kill a person has only what the batch printed: the command that continues the run
    (said at the start), a note when they start afresh instead, and a clear answer when the run
    had in fact finished (a kill after the last image, before the summary)."""
    import main
    from backend.imaging import SUPPORTED_EXTENSIONS

    monkeypatch.setenv("FIELDMARK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FIELDMARK_PACKS_DIR", str(tmp_path / "data" / "packs"))
    folder = tmp_path / "my photos"
    make_photos(folder, 3)
    with Project.open(folder) as project:  # a run killed after its first image
        project.scan(SUPPORTED_EXTENSIONS)
        disc = project.add_class("disc")["id"]
        project.set_class_prompts(disc, ["a round disc"], 0.2)
        ids = [im["id"] for im in project.images()]
        run = project.create_run("detect", ids, {
            "detector": "owlv2-tiny-test@0.0.1", "prompts": {str(disc): ["a round disc"]},
            "thresholds": {str(disc): 0.2}, "auto_accept": None})["run"]
        project.finish_run_item(run, ids[0])

    code = main.main(["autolabel", str(folder), "--detector", str(detector), "--prompt",
                      "disc=a round disc", "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    note = re.search(rf"note: run {run} stopped after 1 of 3 images; to continue it instead of "
                     r"starting over: (autolabel .*)", err)
    assert note, err
    hint = HINT.search(err)
    assert hint and hint.group(2) == str(run + 1), err

    command = shlex.split(note.group(1))
    assert command[1] == str(folder) and "--detector" in command  # quoted, and with its pack
    code = main.main([*command, "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 0 and f"run {run}: 2 of 3 images to do" in err, err
    code = main.main(command)
    err = capsys.readouterr().err
    assert code == 2 and f"Run {run} already finished: 3 of 3 images done, 0 failed" in err, err
