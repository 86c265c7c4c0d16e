"""Handlers for AI-assisted labeling (docs/bridge.md, "AI-assisted labeling").

Thin: check arguments, hand model work to a job (answer ``{"job": id}`` at once), return
records. Nothing here loads a model or runs a pass on the caller's (GUI) thread; the few
synchronous calls (re-score, smart select, review) are numpy or one store transaction.
The services are created on first use, so an app that never touches AI pays nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend import paths
from backend.ai.proposals import AUTO_ACCEPT_KEY, auto_accept
from backend.ai.segmentation import check_box, check_points, check_polygons
from backend.ai.services import AiServices
from backend.api.validate import get_choice, get_int, get_optional_int, get_str
from backend.errors import InvalidArgument, NotFound
from backend.store.proposals import check_threshold

if TYPE_CHECKING:
    from backend.api.service import Api

_lock = threading.Lock()


def services(api: Api) -> AiServices:
    """The AI services of ``api``, created on first use."""
    with _lock:
        found: AiServices | None = getattr(api, "_ai_services", None)
        if found is None:
            from backend.cli.models import packs_dir
            from backend.models.cache import default_cache_dir

            found = AiServices(api.emit, packs_dir=packs_dir(), bundled_dir=paths.resource("packs"),
                               state_path=paths.user_data_dir() / "ai.json",
                               cache_dir=default_cache_dir())
            api._ai_services = found  # type: ignore[attr-defined]
        return found


def project_closing(api: Api) -> None:
    """Called by ``Api.close_project`` before the store closes: pause runs, drop state."""
    found: AiServices | None = getattr(api, "_ai_services", None)
    if found is not None:
        found.project_closing()


def shutdown(api: Api) -> None:
    """App exit: stop the inference worker, the encoders and the AI job pool."""
    found: AiServices | None = getattr(api, "_ai_services", None)
    if found is not None:
        found.shutdown()


# -- models ------------------------------------------------------------------------------------

def _install(api: Api, path: str) -> dict[str, str]:
    ai = services(api)
    src = Path(path).expanduser()
    if not src.exists():
        raise NotFound(f"'{src}' does not exist. Choose a model pack folder or .zip.",
                       code="not_found", detail={"path": str(src)})

    def work() -> dict[str, Any]:
        pack = ai.models.install(src)
        return {**pack.summary(), "source": pack.source_tag}
    return ai.submit("models.install", work)


def _pick_install(api: Api, a: dict[str, Any]) -> dict[str, str] | None:
    picker: Callable[[], str | None] | None = getattr(api, "pick_pack", None) or api.pick_folder
    if picker is None:
        raise InvalidArgument("Choosing a file is not available here.", code="unsupported")
    chosen = picker()
    return _install(api, chosen) if chosen else None


def _activate(api: Api, a: dict[str, Any]) -> dict[str, Any]:
    task = get_choice(a, "task", ("detector", "segmenter"))
    ref = a.get("id")
    if ref is not None and not isinstance(ref, str):
        raise InvalidArgument(f"'id' must be a pack id or null, got {ref!r:.40}.",
                              detail={"field": "id"})
    ai = services(api)
    ai.models.activate(task, ref)
    return ai.models_info()


def _unload(api: Api, a: dict[str, Any]) -> dict[str, Any]:
    task = get_choice(a, "task", ("detector", "segmenter")) if a.get("task") is not None else None
    ai = services(api)
    ai.models.unload(task)
    ai.encodings.forget()
    return ai.models_info()


# -- prompts and detection ---------------------------------------------------------------------

def _set_prompts(api: Api, a: dict[str, Any]) -> dict[str, Any]:
    project = api.require_project()
    class_id = get_int(a, "id")
    if "prompts" not in a or "threshold" not in a:
        raise InvalidArgument("'prompts' and 'threshold' are required.",
                              detail={"field": "prompts" if "prompts" not in a else "threshold"})
    record = project.set_class_prompts(class_id, a["prompts"], a["threshold"])
    services(api).proposals.warm_phrases(record["prompts"])
    return record


def _detect_image(api: Api, a: dict[str, Any]) -> dict[str, str]:
    project = api.require_project()
    image_id = get_int(a, "image_id")
    project.image(image_id)  # NotFound now, not in the job
    ai = services(api)

    def work() -> dict[str, Any]:
        proposals = ai.proposals.detect_image(project, image_id)
        api.emit("proposals.changed", {"image_id": image_id})
        return {"image_id": image_id, "proposals": proposals}
    return ai.submit("detect.image", work)


def _rescore(api: Api, a: dict[str, Any]) -> dict[str, Any]:
    project = api.require_project()
    image_id = get_int(a, "image_id")
    proposals = services(api).proposals.rescore(project, image_id)
    api.emit("proposals.changed", {"image_id": image_id})
    return {"image_id": image_id, "proposals": proposals}


def _similar(api: Api, a: dict[str, Any]) -> dict[str, str]:
    project = api.require_project()
    shape_id = get_int(a, "shape_id")
    project.shape(shape_id)
    ai = services(api)

    def work() -> dict[str, Any]:
        image_id, added = ai.proposals.similar(project, shape_id)
        api.emit("proposals.changed", {"image_id": image_id})
        return {"image_id": image_id, "proposals": added}
    return ai.submit("detect.similar", work)


# -- segmentation ------------------------------------------------------------------------------

def _prepare(api: Api, a: dict[str, Any]) -> dict[str, str]:
    project = api.require_project()
    image_id = get_int(a, "image_id")
    project.image(image_id)
    ai = services(api)

    def work() -> dict[str, Any]:
        result = ai.segmentation.prepare(project, image_id)
        api.emit("encode.ready", {"image_id": image_id, "task": "segmenter"})
        return result
    return ai.submit("segment.prepare", work)


def _click(api: Api, a: dict[str, Any]) -> dict[str, str]:
    project = api.require_project()
    image_id = get_int(a, "image_id")
    points = check_points(a.get("points", []))
    box = check_box(a["box"]) if a.get("box") is not None else None
    if not points and box is None:
        raise InvalidArgument("Click on the object or draw a box first ('points' or 'box').",
                              detail={"field": "points"})
    refine = bool(a.get("refine", False))
    project.image(image_id)
    ai = services(api)
    return ai.submit("segment.click",
                     lambda: ai.segmentation.click(project, image_id, points, box, refine))


def _accept(api: Api, a: dict[str, Any]) -> dict[str, Any]:
    project = api.require_project()
    image_id = get_int(a, "image_id")
    polygons = check_polygons(a.get("polygons"))
    prompt = get_str(a, "prompt", max_len=10_000) if a.get("prompt") is not None else None
    tool = get_choice(a, "tool", ("segmenter", "smart"), default="segmenter")
    return services(api).segmentation.accept(project, image_id, polygons,
                                             get_optional_int(a, "class_id"), prompt, tool)


def _boxes(api: Api, a: dict[str, Any]) -> dict[str, str]:
    project = api.require_project()
    ai = services(api)
    if a.get("all") is True:
        run = ai.runs.create(project, "segment_boxes")
        return ai.submit_run(project, run["run"])
    image_id = get_int(a, "image_id")
    project.image(image_id)

    def work() -> dict[str, Any]:
        n = ai.segmentation.boxes(project, image_id)
        api.emit("proposals.changed", {"image_id": image_id})
        return {"image_id": image_id, "shapes": n}
    return ai.submit("segment.boxes", work)


def _smart(api: Api, a: dict[str, Any]) -> dict[str, str]:
    from backend.ai.smart_select import select

    project = api.require_project()
    image_id = get_int(a, "image_id")
    point = a.get("point")
    if point is not None:
        if not isinstance(point, (list, tuple)) or len(point) not in (2, 3):
            raise InvalidArgument(f"'point' must be [x, y], got {point!r:.80}.",
                                  detail={"field": "point"})
        point = check_points([point])[0][:2]
    box = check_box(a["box"]) if a.get("box") is not None else None
    if point is None and box is None:
        raise InvalidArgument("Smart select needs a click ('point') or a box.",
                              detail={"field": "point"})
    project.image(image_id)  # NotFound now, not inside the job
    ai = services(api)

    def work() -> dict[str, Any]:
        # Decoding a big photo and the watershed take 20 ms–1 s: a job, so the window never waits.
        lab, scale = ai.smart_image(project, image_id)
        h, w = lab.shape[0] / scale, lab.shape[1] / scale
        if point is not None and not (0 <= point[0] <= w and 0 <= point[1] <= h):
            raise InvalidArgument(f"'point' {list(point)} lies outside the image.",
                                  detail={"field": "point"})
        if box is not None and (box[2] <= 0 or box[3] <= 0 or box[0] >= w or box[1] >= h):
            raise InvalidArgument(f"'box' {box} lies outside the image.", detail={"field": "box"})
        return select(lab, point, box, scale)

    return ai.submit("smart.select", work)


# -- review and settings -----------------------------------------------------------------------

def _ids(a: dict[str, Any]) -> list[int]:
    ids = a.get("ids")
    if not isinstance(ids, list) or not ids or len(ids) > 100_000:
        raise InvalidArgument("'ids' must be a non-empty list of shape ids.",
                              detail={"field": "ids"})
    return [get_int({"ids": i}, "ids") for i in ids]


def _review_set(api: Api, a: dict[str, Any]) -> dict[str, Any]:
    project = api.require_project()
    ids = _ids(a)
    status = get_choice(a, "status", ("accepted", "rejected"))
    changed = project.set_status_many(ids, status)
    for image_id in sorted({project.shape(i)["image_id"] for i in changed}):
        api.emit("proposals.changed", {"image_id": image_id})
    return {"ids": ids, "status": status}


def _accept_all(api: Api, a: dict[str, Any]) -> dict[str, Any]:
    project = api.require_project()
    image_id = get_int(a, "image_id")
    ids = [s["id"] for s in project.shapes(image_id, ("pending",))]
    if ids:
        project.set_status_many(ids, "accepted")
        api.emit("proposals.changed", {"image_id": image_id})
    return {"ids": ids}


def _queue(api: Api, a: dict[str, Any]) -> list[dict[str, Any]]:
    limit = get_int(a, "limit", default=200, minimum=1)
    return api.require_project().pending_queue(min(limit, 10_000))


def _settings(api: Api, a: dict[str, Any]) -> dict[str, Any]:
    project = api.require_project()
    if "auto_accept" in a:
        value = a["auto_accept"]
        project.set_setting(AUTO_ACCEPT_KEY,
                            None if value is None else check_threshold(value, "auto_accept"))
    return {"auto_accept": auto_accept(project)}


# -- runs --------------------------------------------------------------------------------------

def _runs_start(api: Api, a: dict[str, Any]) -> dict[str, str]:
    project = api.require_project()
    kind = get_choice(a, "kind", ("detect", "segment_boxes", "similar"))
    shape_id = get_int(a, "shape_id") if kind == "similar" else None
    image_ids = a.get("image_ids")
    if image_ids is not None:
        if not isinstance(image_ids, list):
            raise InvalidArgument("'image_ids' must be a list of image ids.",
                                  detail={"field": "image_ids"})
        image_ids = [get_int({"image_ids": i}, "image_ids") for i in image_ids]
    ai = services(api)
    run = ai.runs.create(project, kind, image_ids, segment=bool(a.get("segment", False)),
                         shape_id=shape_id)
    return ai.submit_run(project, run["run"])


def _runs_resume(api: Api, a: dict[str, Any]) -> dict[str, str]:
    project = api.require_project()
    run_id = get_int(a, "run")
    ai = services(api)
    ai.runs.prepare_resume(project, run_id)
    return ai.submit_run(project, run_id)


def _runs_stop(state: str) -> Callable[[Api, dict[str, Any]], dict[str, Any]]:
    def handler(api: Api, a: dict[str, Any]) -> dict[str, Any]:
        project = api.require_project()
        return services(api).runs.stop(project, get_int(a, "run"), state)
    return handler


METHODS: dict[str, Callable[[Api, dict[str, Any]], Any]] = {
    "models.list": lambda api, a: services(api).models_info(),
    "models.install": lambda api, a: _install(api, get_str(a, "path")),
    "models.pick_install": _pick_install,
    "models.activate": _activate,
    "models.unload": _unload,
    "classes.set_prompts": _set_prompts,
    "detect.image": _detect_image,
    "detect.rescore": _rescore,
    "detect.similar": _similar,
    "segment.prepare": _prepare,
    "segment.click": _click,
    "segment.accept": _accept,
    "segment.boxes": _boxes,
    "smart.select": _smart,
    "review.set": _review_set,
    "review.accept_all": _accept_all,
    "review.queue": _queue,
    "ai.settings": _settings,
    "runs.start": _runs_start,
    "runs.list": lambda api, a: services(api).runs.records(api.require_project()),
    "runs.resume": _runs_resume,
    "runs.pause": _runs_stop("paused"),
    "runs.cancel": _runs_stop("cancelled"),
}
