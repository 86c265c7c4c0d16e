"""The one inference worker: every model pass of the app runs on this single thread.

On a 2-core laptop two model passes at once do not finish sooner, they fight for the cores and
the window stutters; onnxruntime already uses every core inside one pass. So all passes queue
here, highest priority first, in submission order within a priority:

``INTERACTIVE`` (a click, "try on this image") > ``PREFETCH`` (encoding the next images ahead)
> ``BATCH`` (a run over many images).

An interactive task does not wait for a prefetch or batch pass in progress: with an
``interruptible`` factory (``backend.models.interrupt.Interruptible``) that pass is stopped
between two graph nodes and queued again, in its old place, to run after the interactive one
(ADR 0009). Re-running costs the work already done, but those passes are background work, and a
person's click is what must feel instant. With ``quiet_s`` a background pass also waits until no
interactive pass ran for that long: clicks come in bursts, and a pass started between two of them
would only be stopped again. Tasks are model passes without side effects, so running
one again is safe. Batch runs hand the worker one image at a time, never a backlog (ADR 0006).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from backend.models.interrupt import Interrupted

log = logging.getLogger(__name__)

INTERACTIVE, PREFETCH, BATCH = 0, 1, 2
PRIORITY_NAMES = {INTERACTIVE: "interactive", PREFETCH: "prefetch", BATCH: "batch"}

INTERRUPTIBLE = frozenset({PREFETCH, BATCH})

T = TypeVar("T")


class Stoppable(Protocol):
    def interrupt(self) -> None: ...


Interruptible = Callable[[], AbstractContextManager[Stoppable]]


class WorkerClosed(RuntimeError):
    """The worker was shut down (the app is closing); the task did not run."""


class InferenceWorker:
    """A priority queue in front of one daemon thread (started on first use)."""

    def __init__(self, name: str = "inference", interruptible: Interruptible | None = None,
                 quiet_s: float = 0.0) -> None:
        self.name = name
        self._interruptible = interruptible
        # Background passes start only this long after the last interactive one: a person who
        # just clicked tends to click again, and each click would stop (and waste) a pass.
        self.quiet_s = quiet_s
        self._last_interactive = -math.inf
        self._stoppable: Stoppable | None = None  # the running background pass, when stoppable
        self.interruptions = 0                    # background passes stopped for a click
        self._heap: list[tuple[int, int, Future[Any], Callable[[], Any]]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.passes: Counter[int] = Counter()  # tasks run, by priority
        self.running: int | None = None       # priority of the task on the thread now

    def submit(self, priority: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Queue ``fn(*args, **kwargs)``; the future carries its result or exception."""
        if priority not in PRIORITY_NAMES:
            raise ValueError(f"unknown priority {priority!r}")
        future: Future[T] = Future()
        with self._cond:
            if self._closed:
                raise WorkerClosed("the inference worker is shut down")
            heapq.heappush(self._heap, (priority, next(self._seq), future,
                                        lambda: fn(*args, **kwargs)))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            if priority == INTERACTIVE:
                self._last_interactive = time.monotonic()
                if self._stoppable is not None:
                    self._stoppable.interrupt()
            self._cond.notify_all()
        return future

    def run(self, priority: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Submit and wait. Called on the worker thread itself it runs inline (no deadlock)."""
        if threading.current_thread() is self._thread:
            return fn(*args, **kwargs)
        return self.submit(priority, fn, *args, **kwargs).result()

    def cancel_queued(self, priority: int) -> int:
        """Cancel the tasks of ``priority`` that have not started; returns how many."""
        with self._cond:
            n = 0
            for entry in [e for e in self._heap if e[0] == priority]:
                future = entry[2]
                if future.cancel():
                    n += 1
                elif not future.done():  # interrupted earlier, waiting to run again
                    self._heap.remove(entry)
                    future.set_exception(CancelledError())
                    n += 1
            heapq.heapify(self._heap)
        return n

    def pending(self) -> dict[str, int]:
        with self._cond:
            counts = Counter(p for p, _, f, _ in self._heap if not f.cancelled())
        return {PRIORITY_NAMES[p]: counts.get(p, 0) for p in PRIORITY_NAMES}

    def _quiet_left(self) -> float:
        """Seconds until background work may start (call with the lock held)."""
        return self._last_interactive + self.quiet_s - time.monotonic()

    def wait_quiet(self, timeout: float | None = None) -> bool:
        """Block until no interactive pass ran for ``quiet_s`` (for background work done outside
        the worker, e.g. decoding the next image); False if the worker closed or on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                left = self._quiet_left()
                if left <= 0:
                    return True
                if deadline is not None:
                    left = min(left, deadline - time.monotonic())
                    if left <= 0:
                        return False
                self._cond.wait(left)
        return False

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if not self._heap:
                        self._cond.wait()
                    elif self._heap[0][0] in INTERRUPTIBLE and self._quiet_left() > 0:
                        self._cond.wait(self._quiet_left())
                    else:
                        break
                if not self._heap:
                    return
                entry = heapq.heappop(self._heap)
            priority, _, future, call = entry
            if not future.running() and not future.set_running_or_notify_cancel():
                continue
            self.running = priority
            try:
                result = self._call(priority, call)
            except Interrupted:
                with self._cond:  # back in its old place: after the urgent task, before later ones
                    self.interruptions += 1
                    if self._closed:
                        future.set_exception(WorkerClosed("the inference worker is shut down"))
                    else:
                        heapq.heappush(self._heap, entry)
                continue
            except BaseException as exc:  # noqa: BLE001 — handed to the waiting caller
                future.set_exception(exc)
            else:
                future.set_result(result)
            finally:
                self.running = None
                if priority == INTERACTIVE:
                    with self._cond:
                        self._last_interactive = time.monotonic()
                        self._cond.notify_all()
            self.passes[priority] += 1

    def _call(self, priority: int, call: Callable[[], Any]) -> Any:
        if self._interruptible is None or priority not in INTERRUPTIBLE:
            return call()
        with self._interruptible() as handle:
            with self._cond:
                self._stoppable = handle
                if self._heap and self._heap[0][0] == INTERACTIVE:
                    handle.interrupt()  # queued while this one was being picked: stop at once
            try:
                return call()
            finally:
                with self._cond:
                    self._stoppable = None

    def shutdown(self, wait: bool = True) -> None:
        """Cancel what is queued, let the running pass finish, stop the thread."""
        with self._cond:
            self._closed = True
            for _, _, future, _ in self._heap:
                if not future.cancel():  # an interrupted pass waiting to run again
                    future.set_exception(WorkerClosed("the inference worker is shut down"))
            self._heap.clear()
            self._cond.notify_all()
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)
