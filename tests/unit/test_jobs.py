"""JobRunner: queued -> running -> done | failed | cancelled, with events a page can show."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from backend.errors import NotFound
from backend.jobs.runner import Job, JobContext, JobRunner

TIMEOUT = 10.0  # generous upper bound for waits; tests never sleep for a fixed time


class Recorder:
    """Thread-safe event log (listeners run on the job thread)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, name: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self.events.append((name, payload))

    def names(self, job: Job) -> list[str]:
        with self._lock:
            return [n for n, p in self.events if p.get("job") == job.id]

    def of(self, job: Job, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for n, p in self.events if n == name and p.get("job") == job.id]


@pytest.fixture
def runner() -> Iterator[JobRunner]:
    r = JobRunner(workers=1)
    yield r
    r.shutdown(wait=True)


@pytest.fixture
def events(runner: JobRunner) -> Recorder:
    rec = Recorder()
    runner.listeners.append(rec)
    return rec


def _finish(job: Job) -> None:
    assert job.future is not None
    job.future.result(timeout=TIMEOUT)


def _blocker(runner: JobRunner) -> tuple[Job, threading.Event, threading.Event]:
    """A job that holds the only worker until released, so later jobs stay queued."""
    started, release = threading.Event(), threading.Event()

    def work(ctx: JobContext) -> str:
        started.set()
        assert release.wait(TIMEOUT)
        return "released"

    job = runner.submit("block", work)
    assert started.wait(TIMEOUT)
    return job, started, release


def test_done_with_result_and_progress(runner: JobRunner, events: Recorder) -> None:
    def work(ctx: JobContext) -> dict[str, int]:
        for i in range(1, 4):
            ctx.progress(i, 3, f"item {i}")
        return {"count": 3}

    job = runner.submit("count", work)
    assert job.kind == "count" and job.id.startswith("count-")
    _finish(job)
    assert job.state == "done"
    assert job.result == {"count": 3}
    assert (job.done, job.total, job.message) == (3, 3, "item 3")
    assert events.names(job) == ["job.progress"] * 3 + ["job.done"]
    assert events.of(job, "job.progress")[1] == {"job": job.id, "done": 2, "total": 3, "message": "item 2"}
    assert events.of(job, "job.done") == [{"job": job.id, "result": {"count": 3}}]


def test_states_queued_then_running_then_done(runner: JobRunner) -> None:
    blocker, _, release = _blocker(runner)
    seen: list[str] = []
    queued = runner.submit("second", lambda ctx: seen.append(runner.jobs[ctx.job_id].state))
    assert blocker.state == "running"
    assert queued.state == "queued"
    release.set()
    _finish(blocker)
    _finish(queued)
    assert seen == ["running"]  # the work saw its own job running
    assert (blocker.state, queued.state) == ("done", "done")


def test_ids_are_unique(runner: JobRunner) -> None:
    jobs = [runner.submit("same", lambda ctx: None) for _ in range(5)]
    for j in jobs:
        _finish(j)
    assert len({j.id for j in jobs}) == 5
    assert all(runner.jobs[j.id] is j for j in jobs)


def test_fieldmark_error_becomes_job_failed_with_its_message(runner: JobRunner, events: Recorder) -> None:
    def work(ctx: JobContext) -> None:
        raise NotFound("The folder '/x' is gone. Reconnect the drive.", code="not_a_folder", detail={"f": 1})

    job = runner.submit("scan", work)
    _finish(job)
    assert job.state == "failed"
    err = {"code": "not_a_folder", "message": "The folder '/x' is gone. Reconnect the drive.", "detail": {"f": 1}}
    assert job.error == err
    assert events.of(job, "job.failed") == [{"job": job.id, "error": err}]
    assert "job.done" not in events.names(job)


def test_unexpected_exception_becomes_internal(runner: JobRunner, events: Recorder) -> None:
    def work(ctx: JobContext) -> None:
        raise ZeroDivisionError("division by zero")

    job = runner.submit("detect", work)
    _finish(job)  # the future itself does not raise: the runner caught it
    assert job.state == "failed"
    assert job.error is not None
    assert job.error["code"] == "internal"
    assert "detect" in job.error["message"] and "division by zero" in job.error["message"]
    assert "ZeroDivisionError" in job.error["detail"]  # traceback for a bug report
    assert [p["error"]["code"] for p in events.of(job, "job.failed")] == ["internal"]


def test_cancel_before_start_never_runs_the_work(runner: JobRunner, events: Recorder) -> None:
    blocker, _, release = _blocker(runner)
    ran = threading.Event()
    waiting = runner.submit("later", lambda ctx: ran.set())
    assert runner.cancel(waiting.id) is True
    release.set()
    _finish(blocker)
    _finish(waiting)
    assert not ran.is_set()
    assert waiting.state == "cancelled"
    assert events.names(waiting) == ["job.cancelled"]
    assert events.of(waiting, "job.cancelled")[0]["state"] == "cancelled"


def test_cancel_during_work_stops_at_the_next_check(runner: JobRunner, events: Recorder) -> None:
    started, go_on = threading.Event(), threading.Event()
    processed: list[int] = []

    def work(ctx: JobContext) -> int:
        for i in range(100):
            ctx.check()
            processed.append(i)
            ctx.progress(i + 1, 100)
            if i == 2:
                started.set()
                assert go_on.wait(TIMEOUT)
        return len(processed)

    job = runner.submit("batch", work)
    assert started.wait(TIMEOUT)
    assert runner.cancel(job.id) is True
    go_on.set()
    _finish(job)
    assert job.state == "cancelled"
    assert processed == [0, 1, 2]
    assert events.names(job)[-1] == "job.cancelled"
    assert "job.done" not in events.names(job)


def test_cancel_of_finished_or_unknown_job_is_refused(runner: JobRunner) -> None:
    job = runner.submit("quick", lambda ctx: 1)
    _finish(job)
    assert runner.cancel(job.id) is False
    assert job.state == "done"
    assert runner.cancel("no-such-job") is False


def test_context_reports_cancellation(runner: JobRunner) -> None:
    started, go_on = threading.Event(), threading.Event()
    seen: list[bool] = []

    def work(ctx: JobContext) -> None:
        seen.append(ctx.cancelled)
        started.set()
        assert go_on.wait(TIMEOUT)
        seen.append(ctx.cancelled)  # a loop may also poll instead of raising

    job = runner.submit("poll", work)
    assert started.wait(TIMEOUT)
    runner.cancel(job.id)
    go_on.set()
    _finish(job)
    assert seen == [False, True]
    assert job.state == "done"  # it returned normally, so it finished


def test_broken_listener_does_not_kill_the_job(runner: JobRunner, caplog: pytest.LogCaptureFixture) -> None:
    def broken(name: str, payload: dict[str, Any]) -> None:
        raise RuntimeError("window already closed")

    good = Recorder()
    runner.listeners[:] = [broken, good]

    def work(ctx: JobContext) -> str:
        ctx.progress(1, 2)
        ctx.progress(2, 2)
        return "finished"

    job = runner.submit("noisy", work)
    _finish(job)
    assert job.state == "done" and job.result == "finished"
    assert good.names(job) == ["job.progress", "job.progress", "job.done"]  # later listeners still hear


def test_to_dict_is_what_the_page_gets(runner: JobRunner) -> None:
    job = runner.submit("x", lambda ctx: ctx.progress(4, 9, "half"))
    _finish(job)
    assert job.to_dict() == {"job": job.id, "kind": "x", "state": "done", "done": 4, "total": 9,
                             "message": "half", "error": None}
