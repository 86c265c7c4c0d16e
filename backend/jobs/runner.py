"""Background jobs: a small state machine (queued → running → done | failed | cancelled).

Like dangerzone's conversions: one catch-all at the job boundary turns any failure into a
message for a person; progress and the final state reach listeners (the bridge turns them into
``job.*`` events). Work functions receive a :class:`JobContext` to report progress and to
check for cancellation between items.
"""

from __future__ import annotations

import itertools
import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from backend.errors import FieldmarkError

log = logging.getLogger(__name__)

STATES = ("queued", "running", "done", "failed", "cancelled")
Listener = Callable[[str, dict[str, Any]], None]


class Cancelled(Exception):
    """Raised inside a job's work when its cancel was requested."""


@dataclass
class JobContext:
    job_id: str
    _cancel: threading.Event
    _progress: Callable[[int, int, str], None]

    def progress(self, done: int, total: int, message: str = "") -> None:
        self._progress(done, total, message)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()


@dataclass
class Job:
    id: str
    kind: str
    state: str = "queued"
    done: int = 0
    total: int = 0
    message: str = ""
    result: Any = None
    error: dict[str, Any] | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    future: Future[Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.id, "kind": self.kind, "state": self.state, "done": self.done,
                "total": self.total, "message": self.message, "error": self.error}


class JobRunner:
    def __init__(self, workers: int = 1) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self.jobs: dict[str, Job] = {}
        self.listeners: list[Listener] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _emit(self, name: str, payload: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            try:
                listener(name, payload)
            except Exception:  # noqa: BLE001 — a broken listener must not kill the job
                log.exception("job listener failed")

    def submit(self, kind: str, work: Callable[[JobContext], Any]) -> Job:
        with self._lock:
            job = Job(id=f"{kind}-{next(self._ids)}", kind=kind)
            self.jobs[job.id] = job

        def progress(done: int, total: int, message: str) -> None:
            job.done, job.total, job.message = done, total, message
            self._emit("job.progress", {"job": job.id, "done": done, "total": total, "message": message})

        def run() -> None:
            if job.cancel_event.is_set():
                job.state = "cancelled"
                self._emit("job.cancelled", job.to_dict())
                return
            job.state = "running"
            ctx = JobContext(job.id, job.cancel_event, progress)
            try:
                job.result = work(ctx)
                job.state = "done"
                self._emit("job.done", {"job": job.id, "result": job.result})
            except Cancelled:
                job.state = "cancelled"
                self._emit("job.cancelled", job.to_dict())
            except FieldmarkError as exc:
                job.state, job.error = "failed", exc.to_dict()
                self._emit("job.failed", {"job": job.id, "error": job.error})
            except Exception as exc:  # noqa: BLE001 — the one catch-all at the job boundary
                log.exception("job %s crashed", job.id)
                job.state = "failed"
                job.error = {"code": "internal", "message": f"The {kind} job stopped: {exc}",
                             "detail": traceback.format_exc(limit=6)}
                self._emit("job.failed", {"job": job.id, "error": job.error})

        job.future = self.pool.submit(run)
        return job

    def cancel(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        if job is None or job.state in ("done", "failed", "cancelled"):
            return False
        job.cancel_event.set()
        return True

    def shutdown(self, wait: bool = True) -> None:
        for job in self.jobs.values():
            job.cancel_event.set()
        self.pool.shutdown(wait=wait, cancel_futures=True)
