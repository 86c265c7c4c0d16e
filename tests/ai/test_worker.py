"""The one inference worker: one pass at a time, interactive before prefetch before batch."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import CancelledError
from pathlib import Path

import numpy as np
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


# -- a click stops a background pass (real onnxruntime) ------------------------------------------

def _slow_graph(path: Path, layers: int = 400, size: int = 256) -> Path:
    """A chain of MatMul+Tanh nodes: long enough to interrupt between nodes, cheap to build."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array((rng.standard_normal((size, size)) / np.sqrt(size)).astype(np.float32), "w")
    nodes, prev = [], "x"
    for i in range(layers):
        nodes += [helper.make_node("MatMul", [prev, "w"], [f"m{i}"]),
                  helper.make_node("Tanh", [f"m{i}"], [f"t{i}"])]
        prev = f"t{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    graph = helper.make_graph(nodes, "slow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_a_click_stops_the_background_pass_which_then_runs_again(tmp_path: Path) -> None:
    from backend.models.interrupt import Interruptible
    from backend.models.runtime import create_session

    session = create_session(_slow_graph(tmp_path / "slow.onnx"), threads=1)
    x = np.eye(256, dtype=np.float32)
    expected = session.run({"x": x})[0]
    worker = InferenceWorker(interruptible=Interruptible)
    order: list[str] = []
    started = threading.Event()

    def background() -> np.ndarray:
        started.set()
        out = session.run({"x": x})[0]
        order.append("background")
        return out

    try:
        slow = worker.submit(PREFETCH, background)
        assert started.wait(TIMEOUT)
        click = worker.submit(INTERACTIVE, lambda: order.append("click") or "mask")
        assert click.result(TIMEOUT) == "mask"
        # The click did not wait for the whole background pass: it was stopped and run again,
        # and its caller still gets the right answer.
        np.testing.assert_array_equal(slow.result(TIMEOUT), expected)
        assert order == ["click", "background"]
        assert worker.interruptions >= 1
        assert worker.passes[PREFETCH] == 1 and worker.passes[INTERACTIVE] == 1
    finally:
        worker.shutdown()


def test_without_interruption_a_click_waits_for_the_pass_in_progress(tmp_path: Path) -> None:
    from backend.models.runtime import create_session

    session = create_session(_slow_graph(tmp_path / "slow.onnx", layers=100), threads=1)
    x = np.eye(256, dtype=np.float32)
    worker = InferenceWorker()  # no interruptible factory: passes are never stopped
    order: list[str] = []
    started = threading.Event()

    def background() -> None:
        started.set()
        session.run({"x": x})
        order.append("background")

    try:
        slow = worker.submit(PREFETCH, background)
        assert started.wait(TIMEOUT)
        worker.run(INTERACTIVE, lambda: order.append("click"))
        slow.result(TIMEOUT)
        assert order == ["background", "click"] and worker.interruptions == 0
    finally:
        worker.shutdown()


def test_an_interrupted_pass_can_still_be_dropped_or_shut_down(tmp_path: Path) -> None:
    from backend.models.interrupt import Interruptible
    from backend.models.runtime import create_session

    session = create_session(_slow_graph(tmp_path / "slow.onnx"), threads=1)
    x = np.eye(256, dtype=np.float32)
    worker = InferenceWorker(interruptible=Interruptible)
    started, release = threading.Event(), threading.Event()
    try:
        stale = worker.submit(PREFETCH, lambda: (started.set(), session.run({"x": x})))
        assert started.wait(TIMEOUT)
        # The click holds the worker until released, so the stopped pass waits in the queue.
        click = worker.submit(INTERACTIVE, lambda: release.wait(TIMEOUT))
        for _ in range(TIMEOUT * 100):
            if worker.interruptions:
                break
            time.sleep(0.01)
        assert worker.cancel_queued(PREFETCH) == 1  # the person moved on to another image
        release.set()
        assert click.result(TIMEOUT) is True
        with pytest.raises(CancelledError):
            stale.result(TIMEOUT)
    finally:
        worker.shutdown()


def test_background_passes_wait_for_a_pause_in_the_clicks() -> None:
    worker = InferenceWorker(quiet_s=0.3)
    stamps: dict[str, float] = {}
    try:
        worker.run(INTERACTIVE, lambda: stamps.setdefault("click", time.monotonic()))
        done_click = time.monotonic()
        background = worker.submit(PREFETCH, lambda: stamps.setdefault("prefetch", time.monotonic()))
        assert worker.wait_quiet(timeout=TIMEOUT)       # what the prefetch decoder waits for
        assert time.monotonic() - done_click >= 0.3
        background.result(TIMEOUT)
        # Not before the pause: a click right after would have had to stop it.
        assert stamps["prefetch"] - done_click >= 0.3
    finally:
        worker.shutdown()
    assert worker.wait_quiet() is False, "a closed worker releases whoever waits"
