"""The one inference worker: one pass at a time, interactive before prefetch before batch."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import CancelledError

import pytest

from backend.ai.worker import BATCH, INTERACTIVE, PREFETCH, InferenceWorker, WorkerClosed

TIMEOUT = 30


@pytest.fixture
def worker() -> Iterator[InferenceWorker]:
    w = InferenceWorker()
    yield w
    w.shutdown()


def _hold(worker: InferenceWorker) -> threading.Event:
    """Occupy the worker until the returned event is set."""
    started, release = threading.Event(), threading.Event()

    def block() -> None:
        started.set()
        release.wait(TIMEOUT)

    worker.submit(BATCH, block)
    assert started.wait(TIMEOUT)
    return release


def test_priorities_order_the_queue_and_passes_never_overlap(worker: InferenceWorker) -> None:
    release = _hold(worker)
    order: list[str] = []
    running = []
    lock = threading.Lock()

    def task(name: str) -> str:
        with lock:
            running.append(name)
            overlap = len(running) > 1
        order.append(name)
        with lock:
            running.remove(name)
        return "overlap" if overlap else name

    futures = [worker.submit(BATCH, task, "batch-1"), worker.submit(PREFETCH, task, "prefetch"),
               worker.submit(BATCH, task, "batch-2"), worker.submit(INTERACTIVE, task, "click-1"),
               worker.submit(INTERACTIVE, task, "click-2")]
    assert worker.pending() == {"interactive": 2, "prefetch": 1, "batch": 2}
    release.set()
    results = [f.result(TIMEOUT) for f in futures]
    assert order == ["click-1", "click-2", "prefetch", "batch-1", "batch-2"]
    assert "overlap" not in results


def test_errors_reach_the_caller_and_the_worker_goes_on(worker: InferenceWorker) -> None:
    def boom() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        worker.run(INTERACTIVE, boom)
    assert worker.run(INTERACTIVE, lambda: 41 + 1) == 42


def test_queued_prefetch_can_be_dropped(worker: InferenceWorker) -> None:
    release = _hold(worker)
    stale = worker.submit(PREFETCH, lambda: "stale")
    kept = worker.submit(INTERACTIVE, lambda: "kept")
    assert worker.cancel_queued(PREFETCH) == 1
    release.set()
    assert kept.result(TIMEOUT) == "kept"
    with pytest.raises(CancelledError):
        stale.result(TIMEOUT)


def test_run_on_the_worker_thread_itself_does_not_deadlock(worker: InferenceWorker) -> None:
    assert worker.run(BATCH, lambda: worker.run(INTERACTIVE, lambda: "inner")) == "inner"


def test_shutdown_cancels_what_is_queued() -> None:
    worker = InferenceWorker()
    release = _hold(worker)
    queued = worker.submit(BATCH, lambda: 1)
    worker.shutdown(wait=False)
    assert queued.cancelled()
    with pytest.raises(WorkerClosed):
        worker.submit(INTERACTIVE, lambda: 1)
    release.set()  # the pass in progress finishes normally
