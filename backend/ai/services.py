"""The AI services of one app (or one ``autolabel`` command), wired together.

One :class:`~backend.ai.worker.InferenceWorker` for every model pass, one EmbeddingCache, one
ModelManager, and a job runner of their own: interactive jobs (a click, "try on this image")
must not queue behind a batch run or an export on the app's general job runner. Job events go
through ``emit`` with the same names and payloads as every other job (docs/bridge.md);
``job.progress`` of runs also carries ``eta_s`` and ``run``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from backend.ai.encodings import EncodingService
from backend.ai.models import ModelManager
from backend.ai.proposals import ProposalService
from backend.ai.runs import RunService, RunStopped
from backend.ai.segmentation import SegmentationService
from backend.ai.worker import InferenceWorker
from backend.jobs.runner import Cancelled, JobContext, JobRunner
from backend.models.cache import EmbeddingCache
from backend.models.interrupt import Interruptible

log = logging.getLogger(__name__)

# A click stops a background model pass; background passes (and the decoding for them) wait
# until clicks have paused this long, so a burst of refinement clicks meets an idle worker
# (ADR 0009).
QUIET_S = 0.5

Emit = Callable[[str, Any], None]
JOB_WORKERS = 3          # one for a run, the others for interactive jobs meanwhile
_FINISHED_JOBS = 200    # job records kept after they end
_SMART_IMAGES = 4        # working images kept for smart select (repeated clicks are instant)


class AiServices:
    def __init__(self, emit: Emit, *, packs_dir: Path, bundled_dir: Path | None = None,
                 state_path: Path | None = None, cache_dir: Path | None = None,
                 threads: int | None = None, prefetch_count: int | None = None) -> None:
        self.emit = emit
        self.worker = InferenceWorker(interruptible=Interruptible, quiet_s=QUIET_S)
        self.models = ModelManager(packs_dir, bundled_dir, state_path, threads=threads,
                                   on_change=self._models_changed)
        self.encodings = EncodingService(self.models, self.worker,
                                         lambda: EmbeddingCache(cache_dir), emit)
        if prefetch_count is not None:
            self.encodings.prefetch_count = prefetch_count
        self.proposals = ProposalService(self.models, self.encodings, self.worker)
        self.segmentation = SegmentationService(self.models, self.encodings, self.worker)
        self.runs = RunService(self.models, self.encodings, self.proposals, self.segmentation,
                               self.worker)
        self.jobs = JobRunner(workers=JOB_WORKERS)
        self.jobs.listeners.append(emit)
        self._smart_lock = threading.Lock()
        self._smart: OrderedDict[tuple[str, int, float], tuple[np.ndarray, float]] = OrderedDict()

    # -- models panel -----------------------------------------------------------------------

    def models_info(self) -> dict[str, Any]:
        info = self.models.info()
        stats = self.encodings.cache_stats()
        info["memory_bytes"] += stats["memory_bytes"]
        info["memory"] = {"models": info["memory_bytes"] - stats["memory_bytes"],
                          "embeddings": stats["memory_bytes"],
                          "embeddings_on_disk": stats["disk_bytes"]}
        return info

    def _models_changed(self) -> None:
        self.emit("models.changed", self.models_info())

    # -- jobs -------------------------------------------------------------------------------

    def submit(self, kind: str, work: Callable[[], Any]) -> dict[str, str]:
        self._forget_old_jobs()
        job = self.jobs.submit(kind, lambda ctx: work())
        return {"job": job.id}

    def _forget_old_jobs(self, keep: int = _FINISHED_JOBS) -> None:
        """A click is a job: keep the records of the last few hundred finished ones only."""
        finished = [k for k, j in list(self.jobs.jobs.items())
                    if j.state in ("done", "failed", "cancelled")]
        for k in finished[:-keep]:
            self.jobs.jobs.pop(k, None)

    def submit_run(self, project: Any, run_id: int) -> dict[str, str]:
        """Run (or resume) a batch run as a job; pause/cancel end it as ``job.cancelled``."""
        control = self.runs.reserve(run_id)

        def work(ctx: JobContext) -> Any:
            job = self.jobs.jobs.get(ctx.job_id)

            def progress(done: int, total: int, message: str, eta: float | None) -> None:
                if job is not None:
                    job.done, job.total, job.message = done, total, message
                self.emit("job.progress", {"job": ctx.job_id, "run": run_id, "done": done,
                                           "total": total, "message": message,
                                           "eta_s": None if eta is None else round(eta, 1)})

            def on_image(image_id: int) -> None:
                self.emit("proposals.changed", {"image_id": image_id})

            control.external = lambda: ctx.cancelled  # app closing: pause the run
            try:
                return self.runs.execute(project, run_id, progress, control, on_image)
            except RunStopped as exc:
                raise Cancelled(f"run {exc.run} {exc.state}") from exc

        try:
            job = self.jobs.submit("run", work)
        except BaseException:
            self.runs.release(run_id, control)
            raise
        return {"job": job.id}

    # -- smart select -----------------------------------------------------------------------

    def smart_image(self, project: Any, image_id: int) -> tuple[np.ndarray, float]:
        """(CIELAB working image, scale) for smart select, kept for the last few images."""
        from backend.ai.smart_select import WORK_SIDE, working_lab
        from backend.imaging import load_display_scaled

        path = project.image_path(image_id)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            mtime = -1.0
        key = (str(project.folder), image_id, mtime)
        with self._smart_lock:
            hit = self._smart.get(key)
            if hit is not None:
                self._smart.move_to_end(key)
                return hit
        rgb, scale = load_display_scaled(path, max_side=WORK_SIDE)
        lab = working_lab(rgb)
        with self._smart_lock:
            self._smart[key] = (lab, scale)
            while len(self._smart) > _SMART_IMAGES:
                self._smart.popitem(last=False)
        return lab, scale

    # -- lifetime ---------------------------------------------------------------------------

    def project_closing(self) -> None:
        """Pause live runs (resumable) and forget per-project state before the store closes."""
        self.runs.stop_all()
        self.encodings.forget()
        self.segmentation.forget()
        with self._smart_lock:
            self._smart.clear()

    def shutdown(self) -> None:
        self.project_closing()
        self.jobs.shutdown(wait=False)
        self.encodings.shutdown()
        self.worker.shutdown(wait=False)
        self.models.close()  # unpacked .zip packs of this session go now, not at exit
