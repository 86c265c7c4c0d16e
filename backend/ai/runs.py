"""Batch runs: detect, segment boxes or find more like a shape over many images, pausable and
resumable after a kill.

Pipeline (one run at a time)::

    decode thread:  load image i+1, i+2 ... --(bounded queue, PIPELINE_DEPTH images)--+
    run thread:     take image i -> encoder pass on the worker (batch priority) ->    |
                    head / decoder passes -> write shapes + mark the item done  <----+

Decoding overlaps the encoder pass of the previous image; the queue bound keeps at most
``PIPELINE_DEPTH`` decoded images in memory whatever the run's size. The worker gets one image
at a time, so a click waits at most for one batch pass (ADR 0006).

Exactly once: the store moves an item from ``todo`` to ``done`` in the transaction that writes
its shapes (or to ``failed`` with the reason), and a run only ever takes ``todo`` items. Pause and
cancel take effect between images (the image in flight is finished and written); a kill loses at
most the image in flight, which is still ``todo`` and is done on resume. Settings (packs,
prompts, thresholds) are fixed when the run starts and reused on resume; a ``similar`` run's
query embedding is computed by its first job (not on the caller's thread) and stored with the
run before any image is done, so a resume scores with the very same query.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backend.ai.encodings import EncodingService, load_image
from backend.ai.models import ModelManager
from backend.ai.proposals import (
    SIMILAR_THRESHOLD,
    ProposalService,
    auto_accept,
    class_prompts,
    require_prompts,
)
from backend.ai.segmentation import SegmentationService, polygons_geometry
from backend.ai.worker import BATCH, InferenceWorker
from backend.errors import FieldmarkError, InvalidArgument, NotFound, PackError, StoreError
from backend.store.proposals import shape_bbox
from backend.store.runs import AlreadyProcessed

log = logging.getLogger(__name__)

PIPELINE_DEPTH = 2
MAX_UNEXPECTED = 3   # unexpected errors in a row that stop a run (it is not one bad file)
Progress = Callable[[int, int, str, "float | None"], None]   # done, total, message, eta_s
_END = object()


class RunBusy(FieldmarkError):
    code = "run_active"


@dataclass
class RunControl:
    """Pause / cancel requests for a live run (checked between images)."""

    stop: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    external: Callable[[], bool] | None = None   # e.g. "the job was cancelled" -> pause

    def request(self, reason: str) -> None:
        self.reason = reason
        self.stop.set()

    def stopped(self) -> bool:
        if not self.stop.is_set() and self.external is not None and self.external():
            self.request("paused")
        return self.stop.is_set()


@dataclass
class RunStopped(Exception):
    """The run was paused or cancelled; its state is saved and it can be resumed."""

    run: int
    state: str


class RunService:
    def __init__(self, models: ModelManager, encodings: EncodingService,
                 proposals: ProposalService, segmentation: SegmentationService,
                 worker: InferenceWorker) -> None:
        self.models = models
        self.encodings = encodings
        self.proposals = proposals
        self.segmentation = segmentation
        self.worker = worker
        self._lock = threading.Lock()
        self._live: dict[int, RunControl] = {}

    # -- records --------------------------------------------------------------------------

    def record(self, project: Any, run_id: int) -> dict[str, Any]:
        """The store's run record; a ``running`` run that is not live here was interrupted."""
        rec = project.run(run_id)
        with self._lock:
            live = run_id in self._live
        if rec["state"] == "running" and not live:
            rec["state"] = "interrupted"
        return rec

    def records(self, project: Any) -> list[dict[str, Any]]:
        """Every run of the project, newest first (see :meth:`record`)."""
        with self._lock:
            live = set(self._live)
        out = []
        for rec in project.runs():
            if rec["state"] == "running" and rec["run"] not in live:
                rec["state"] = "interrupted"
            out.append(rec)
        return out

    # -- start / resume / stop ------------------------------------------------------------

    def create(self, project: Any, kind: str, image_ids: list[int] | None = None,
               segment: bool = False, only_classes: set[int] | None = None,
               shape_id: int | None = None) -> dict[str, Any]:
        """Check everything a run needs, then record it (``running``); :meth:`execute` does it.

        Never loads a model (it may be called on the GUI thread): the job does. A detect run
        searches every class with phrases, or those in ``only_classes``; a similar run looks
        for objects like shape ``shape_id`` (its class and the class's threshold carry over).
        """
        self._check_idle()
        params: dict[str, Any] = {}
        if kind == "detect":
            prompts, thresholds = class_prompts(project)
            if only_classes is not None:
                prompts = {k: v for k, v in prompts.items() if int(k) in only_classes}
                thresholds = {k: v for k, v in thresholds.items() if k in prompts}
            require_prompts(prompts)
            params.update(detector=self.models.active_or_raise("detector").source_tag,
                          prompts=prompts,
                          thresholds=thresholds, auto_accept=auto_accept(project))
            if segment:
                params["segmenter"] = self.models.active_or_raise("segmenter").source_tag
        elif kind == "segment_boxes":
            params["segmenter"] = self.models.active_or_raise("segmenter").source_tag
        elif kind == "similar":
            params.update(_similar_params(project, shape_id),
                          detector=self.models.active_or_raise("detector").source_tag,
                          auto_accept=auto_accept(project))
        else:
            raise InvalidArgument("kind must be 'detect', 'segment_boxes' or 'similar', got "
                                  f"{kind!r:.40}.", detail={"field": "kind"})
        if image_ids is None:
            image_ids = [im["id"] for im in project.images()]
        if not image_ids:
            raise InvalidArgument("There are no images to run on.", detail={"field": "image_ids"})
        return project.create_run(kind, image_ids, params)

    def prepare_resume(self, project: Any, run_id: int) -> dict[str, Any]:
        self._check_idle()
        rec = project.run(run_id)
        if rec["state"] == "done":
            raise InvalidArgument(f"Run {run_id} is finished; start a new run instead.",
                                  code="run_finished", detail={"run": run_id})
        return project.set_run_state(run_id, "running")

    def reserve(self, run_id: int) -> RunControl:
        """Mark a run live before its job starts (so a close in between waits for it)."""
        with self._lock:
            if self._live:
                run = next(iter(self._live))
                raise RunBusy(f"Run {run} is still going. Pause or cancel it before starting "
                              "another.", detail={"run": run})
            control = self._live[run_id] = RunControl()
            return control

    def release(self, run_id: int, control: RunControl) -> None:
        """Drop a reservation whose job never ran."""
        with self._lock:
            if self._live.get(run_id) is control:
                del self._live[run_id]

    def stop(self, project: Any, run_id: int, state: str) -> dict[str, Any]:
        """Pause or cancel (``state``): a live run stops after its current image."""
        with self._lock:
            control = self._live.get(run_id)
        rec = project.run(run_id)
        if control is not None:
            control.request(state)
            return {**rec, "state": state}
        if rec["state"] == "done":
            return rec
        return project.set_run_state(run_id, state)

    def stop_all(self, wait_s: float = 60.0) -> None:
        """Pause every live run and wait for them to stop (the project is closing)."""
        with self._lock:
            controls = list(self._live.values())
        for control in controls:
            control.request("paused")
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._live:
                    return
            time.sleep(0.05)

    def _check_idle(self) -> None:
        with self._lock:
            if self._live:
                run = next(iter(self._live))
                raise RunBusy(f"Run {run} is still going. Pause or cancel it before starting "
                              "another.", detail={"run": run})

    # -- the pipeline ---------------------------------------------------------------------

    def execute(self, project: Any, run_id: int, progress: Progress | None = None,
                control: RunControl | None = None,
                on_image: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Process every ``todo`` item of the run; returns ``{"run", "done", "failed",
        "shapes", "state"}``. Raises :class:`RunStopped` when paused or cancelled."""
        with self._lock:
            reserved = self._live.get(run_id)
            if reserved is None or (control is not None and reserved is not control):
                if self._live:
                    raise RunBusy("Another run is going.",
                                  detail={"run": next(iter(self._live))})
                self._live[run_id] = control = control or RunControl()
            else:
                control = reserved
        try:
            return self._execute(project, run_id, progress or (lambda *a: None), control,
                                 on_image or (lambda image_id: None))
        finally:
            with self._lock:
                self._live.pop(run_id, None)

    def _execute(self, project: Any, run_id: int, progress: Progress, control: RunControl,
                 on_image: Callable[[int], None]) -> dict[str, Any]:
        rec = project.run(run_id)
        try:
            step = self._step(project, rec["kind"], rec["params"], run_id)
        except BaseException:  # e.g. the run's pack was removed: resumable once it is back
            _set_state(project, run_id, "paused")
            raise
        todo = project.run_todo(run_id)
        total, done = rec["total"], rec["done"] + rec["failed"]
        shapes = 0
        q: queue.Queue[Any] = queue.Queue(maxsize=PIPELINE_DEPTH)
        halt = threading.Event()
        reader = threading.Thread(target=_decode_ahead, args=(project, todo, q, halt),
                                  name=f"run-{run_id}-decode", daemon=True)
        reader.start()
        started, timed, unexpected = time.monotonic(), 0, 0
        progress(done, total, "starting", None)
        try:
            while True:
                if control.stopped():
                    break
                item = q.get()
                if item is _END:
                    break
                image_id, rgb, error = item
                try:
                    if error is not None:
                        project.fail_run_item(run_id, image_id, error)
                    else:
                        shapes += step(image_id, rgb)
                        on_image(image_id)
                    unexpected = 0
                except AlreadyProcessed:
                    continue
                except (PackError, StoreError):
                    raise  # the pack or the project is broken: stop, resumable later
                except FieldmarkError as exc:  # this image only (unreadable, too large, ...)
                    project.fail_run_item(run_id, image_id, exc.message)
                except Exception as exc:  # noqa: BLE001 — e.g. onnxruntime out of memory
                    log.exception("run %s: image %s failed", run_id, image_id)
                    unexpected += 1
                    if unexpected >= MAX_UNEXPECTED:
                        raise  # the same failure again and again: not one bad file
                    project.fail_run_item(run_id, image_id, f"The model could not process "
                                          f"this image ({type(exc).__name__}: {exc}).")
                done += 1
                timed += 1
                per_image = (time.monotonic() - started) / timed
                progress(done, total, f"image {done} of {total}", per_image * (total - done))
        except BaseException:
            _set_state(project, run_id, "paused")
            raise
        finally:
            halt.set()
            _drain(q)
            reader.join(timeout=30)
        if control.stopped() and project.run_todo(run_id):
            state = "cancelled" if control.reason == "cancelled" else "paused"
            project.set_run_state(run_id, state)
            raise RunStopped(run_id, state)
        project.set_run_state(run_id, "done")
        final = project.run(run_id)
        return {"run": run_id, "done": final["done"], "failed": project.run_failures(run_id),
                "shapes": shapes, "state": "done"}

    def _step(self, project: Any, kind: str, params: dict[str, Any],
              run_id: int) -> Callable[[int, Any], int]:
        """A function processing one decoded image and writing its result (with the run item)."""
        if kind == "segment_boxes":
            segmenter = self.models.by_tag(params["segmenter"], "segmenter")

            def segment_boxes(image_id: int, rgb: Any) -> int:
                return self.segmentation.boxes(project, image_id, BATCH, run_id,
                                               segmenter=segmenter, image=rgb)
            return segment_boxes
        if kind == "similar":
            return self._similar_step(project, params, run_id)
        detector = self.models.by_tag(params["detector"], "detector")
        segmenter = (self.models.by_tag(params["segmenter"], "segmenter")
                     if params.get("segmenter") else None)
        prompts, thresholds = params["prompts"], params["thresholds"]
        known = {int(k) for k in prompts}
        source = detector.pack.source_tag

        def detect(image_id: int, rgb: Any) -> int:
            path = project.image_path(image_id)
            enc = self.encodings.encoding(detector, path, BATCH, image=rgb)
            dets = self.worker.run(BATCH, detector.detect, enc, prompts, thresholds)
            # A class deleted during the run takes its proposals with it.
            alive = known & {c["id"] for c in project.classes()}
            specs = [{"kind": "box", "geometry": list(d.box), "class_id": int(d.label),
                      "score": float(d.score), "prompt": d.phrase}
                     for d in dets if int(d.label) in alive]
            if segmenter is not None and specs:
                seg_enc = self.encodings.encoding(segmenter, path, BATCH, image=rgb)
                h, w = seg_enc.original_size
                for spec in specs:
                    _, polygons = self.worker.run(BATCH, segmenter.predict_polygons, seg_enc, (),
                                                  spec["geometry"])
                    if polygons:
                        spec["kind"], spec["geometry"] = polygons_geometry(polygons, h, w)
            added = project.replace_proposals(image_id, source, specs,
                                              auto_accept=params.get("auto_accept"),
                                              run_id=run_id)
            return len(added)
        return detect

    def _similar_step(self, project: Any, params: dict[str, Any],
                      run_id: int) -> Callable[[int, Any], int]:
        """Find more like the run's example on each image (adds proposals, keeps the others)."""
        detector = self.models.by_tag(params["detector"], "detector")
        example: dict[int, Any] = {}   # the example image's encoding, reused for that image
        query = params.get("query")
        if query is None:
            image_id = int(params["example_image_id"])
            enc = self.encodings.encoding(detector, project.image_path(image_id), BATCH)
            q = self.worker.run(BATCH, detector.query_embedding, enc, params["box"])
            query = [float(x) for x in q]
            # Stored before any image is done: a resume scores with the very same query.
            project.set_run_params(run_id, {**params, "query": query})
            example[image_id] = enc
        class_id = params["class_id"]
        threshold = float(params["threshold"])
        label = "" if class_id is None else str(class_id)
        prompt = f"similar to shape #{params['shape_id']}"
        source = detector.pack.source_tag

        def similar(image_id: int, rgb: Any) -> int:
            enc = example.pop(image_id, None) or self.encodings.encoding(
                detector, project.image_path(image_id), BATCH, image=rgb)
            dets = self.worker.run(BATCH, detector.score_query, enc, query, threshold,
                                   label=label)
            # A class deleted during the run takes its proposals with it.
            if class_id is not None and class_id not in {c["id"] for c in project.classes()}:
                dets = []
            specs = [{"kind": "box", "geometry": list(d.box), "class_id": class_id,
                      "score": float(d.score), "prompt": prompt} for d in dets]
            added = project.replace_proposals(image_id, source, specs, replace=False,
                                              auto_accept=params.get("auto_accept"),
                                              run_id=run_id)
            return len(added)
        return similar


def _similar_params(project: Any, shape_id: int | None) -> dict[str, Any]:
    """What a similar run keeps of its example: where it is, its box, class and threshold."""
    if shape_id is None:
        raise InvalidArgument("A 'similar' run needs 'shape_id': the shape to find more of.",
                              detail={"field": "shape_id"})
    shape = project.shape(shape_id)
    box = shape_bbox(shape["kind"], shape["geometry"])
    if box is None or box[2] <= box[0] or box[3] <= box[1]:
        raise InvalidArgument(f"Find more like this needs a box, polygon or mask as the example; "
                              f"shape {shape_id} is a {shape['kind']}.",
                              detail={"field": "shape_id"})
    threshold = SIMILAR_THRESHOLD
    if shape["class_id"] is not None:
        cls = next((c for c in project.classes() if c["id"] == shape["class_id"]), None)
        if cls is None:
            raise NotFound(f"The class of shape {shape_id} no longer exists.",
                           detail={"field": "shape_id"})
        if cls.get("threshold") is not None:
            threshold = float(cls["threshold"])
    return {"shape_id": shape_id, "example_image_id": shape["image_id"],
            "box": [float(x) for x in box], "class_id": shape["class_id"],
            "threshold": threshold}


def _decode_ahead(project: Any, todo: list[int], q: queue.Queue[Any],
                  halt: threading.Event) -> None:
    """Decode the run's images in order into ``q`` (blocks while it is full)."""
    def put(item: Any) -> bool:
        while not halt.is_set():
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    for image_id in todo:
        if halt.is_set():
            return
        item: tuple[int, Any, str | None]
        try:
            item = (image_id, load_image(project.image_path(image_id)), None)
        except FieldmarkError as exc:
            item = (image_id, None, exc.message)
        except MemoryError:
            item = (image_id, None, "The image is too large to load into memory.")
        except Exception as exc:  # noqa: BLE001 — one odd file must not stop the run
            log.exception("decoding image %s for a run", image_id)
            item = (image_id, None, f"Could not read the image ({type(exc).__name__}: {exc}).")
        if not put(item):
            return
    put(_END)


def _drain(q: queue.Queue[Any]) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


def _set_state(project: Any, run_id: int, state: str) -> None:
    try:
        project.set_run_state(run_id, state)
    except FieldmarkError as exc:  # the project may be what broke
        log.warning("could not mark run %s %s: %s", run_id, state, exc.message)
