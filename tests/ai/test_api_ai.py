"""The AI methods through ``Api.call``, as the page uses them (docs/bridge.md)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend import paths
from backend.ai.worker import BATCH
from backend.api import ai_handlers
from backend.api.service import Api
from backend.api.settings import Settings
from tests.ai.conftest import Events, Packs, make_photos

pytestmark = pytest.mark.models


@pytest.fixture
def api(data_dir: Path, tmp_path: Path, events: Events) -> Iterator[Api]:
    api = Api(Settings(tmp_path / "settings.json"), demo_dir=tmp_path / "demo")
    api.listeners.append(events)
    yield api
    api.close_project()
    found = getattr(api, "_ai_services", None)
    if found is not None:
        found.shutdown()
    api.jobs.shutdown()


def ok(api: Api, method: str, args: dict[str, Any] | None = None) -> Any:
    answer = api.call(method, args or {})
    assert "ok" in answer, (method, answer)
    return answer["ok"]


@pytest.fixture
def opened(api: Api, tmp_path: Path, packs: Packs, events: Events) -> dict[str, Any]:
    folder = tmp_path / "photos"
    make_photos(folder, 4, corrupt=(3,))
    ok(api, "project.open", {"path": str(folder)})
    for pack in (packs.detector, packs.segmenter):
        events.result(ok(api, "models.install", {"path": str(pack)})["job"])
    disc = ok(api, "classes.add", {"name": "disc"})
    ok(api, "classes.set_prompts", {"id": disc["id"], "prompts": ["a round disc"], "threshold": 0.2})
    images = ok(api, "images.list")
    return {"disc": disc["id"], "image": images[0]["id"], "images": images}


def test_models_list_without_packs_offers_smart_select(api: Api) -> None:
    info = ok(api, "models.list")
    assert info["packs"] == [] and info["smart_select"] is True
    assert info["active"] == {"detector": None, "segmenter": None}
    assert set(info) >= {"packs", "active", "device", "memory_bytes", "smart_select", "packs_dir"}
    assert set(info["device"]) >= {"provider", "reason", "threads"}


def test_model_slots_answer_with_a_job_at_once_even_when_the_worker_is_busy(
        api: Api, opened: dict[str, Any], events: Events) -> None:
    ai = ai_handlers.services(api)
    release = threading.Event()
    ai.worker.submit(BATCH, release.wait, 60)
    try:
        answers = [api.call("detect.image", {"image_id": opened["image"]}),
                   api.call("segment.click", {"image_id": opened["image"], "points": [[50, 40, 1]]}),
                   api.call("segment.prepare", {"image_id": opened["image"]})]
        assert all(set(a["ok"]) == {"job"} for a in answers), answers
        assert not any(n in ("job.done", "job.failed") and p["job"] == answers[0]["ok"]["job"]
                       for n, p in events.items), "still waiting for the worker"
    finally:
        release.set()
    result = events.result(answers[0]["ok"]["job"])
    assert result["image_id"] == opened["image"] and result["proposals"]
    preview = events.result(answers[1]["ok"]["job"])
    assert preview["polygons"] and preview["score"] is not None
    assert {"image_id": opened["image"], "task": "segmenter"} in events.of("encode.ready")
    assert {"image_id": opened["image"]} in events.of("proposals.changed")


def test_threshold_change_rescores_without_an_encoder_pass(api: Api, opened: dict[str, Any],
                                                           events: Events) -> None:
    image = opened["image"]
    assert api.call("detect.rescore", {"image_id": image})["error"]["code"] == "not_encoded"
    first = events.result(ok(api, "detect.image", {"image_id": image})["job"])["proposals"]
    detector = ai_handlers.services(api).models.detector()
    runs = detector.encoder_runs
    cut = sorted(p["score"] for p in first)[len(first) // 2]
    ok(api, "classes.set_prompts", {"id": opened["disc"], "prompts": ["a round disc"],
                                    "threshold": cut})
    again = ok(api, "detect.rescore", {"image_id": image})["proposals"]
    assert detector.encoder_runs == runs
    assert 0 < len(again) < len(first) and all(p["score"] > cut for p in again)


def test_accept_and_reject_are_undoable_and_the_store_agrees(api: Api, opened: dict[str, Any],
                                                             events: Events) -> None:
    image = opened["image"]
    proposals = events.result(ok(api, "detect.image", {"image_id": image})["job"])["proposals"]
    a, b = proposals[0]["id"], proposals[1]["id"]
    ok(api, "review.set", {"ids": [a], "status": "accepted"})
    ok(api, "review.set", {"ids": [b], "status": "rejected"})
    shapes = {s["id"]: s for s in ok(api, "shapes.list", {"image_id": image})}
    assert shapes[a]["status"] == "accepted" and b not in shapes, "rejected are not listed"
    assert ok(api, "edit.undo")["description"] == "Reject box"
    assert ok(api, "edit.undo")["description"] == "Accept box"
    statuses = {s["id"]: s["status"] for s in ok(api, "shapes.list", {"image_id": image})}
    assert statuses[a] == statuses[b] == "pending"
    queue = ok(api, "review.queue", {"limit": 3})
    assert [q["score"] for q in queue] == sorted(q["score"] for q in queue)
    assert all(q["image_name"] for q in queue)
    accepted = ok(api, "review.accept_all", {"image_id": image})["ids"]
    assert set(accepted) == {p["id"] for p in proposals}
    assert ok(api, "edit.state")["undo"] == f"Accept {len(accepted)} shapes"


def test_click_accept_gives_a_polygon_shape(api: Api, opened: dict[str, Any],
                                            events: Events) -> None:
    image = opened["image"]
    preview = events.result(ok(api, "segment.click", {"image_id": image,
                                                      "points": [[60, 50, 1]]})["job"])
    shape = ok(api, "segment.accept", {"image_id": image, "polygons": preview["polygons"],
                                       "class_id": opened["disc"]})
    assert shape["kind"] in ("polygon", "mask") and shape["status"] == "accepted"
    assert shape["source"] == preview["source"] and shape["prompt"]
    smart = events.result(ok(api, "smart.select", {"image_id": image, "point": [60, 50]})["job"])
    assert smart["polygons"] and smart["area"] > 0


def test_a_run_lists_its_corrupt_file_and_its_progress_has_an_eta(api: Api,
                                                                  opened: dict[str, Any],
                                                                  events: Events) -> None:
    job = ok(api, "runs.start", {"kind": "detect"})["job"]
    result = events.result(job)
    assert [f["name"] for f in result["failed"]] == ["img04.jpg"] and result["done"] == 3
    progress = [p for p in events.of("job.progress") if p["job"] == job]
    assert progress and all("eta_s" in p and p["run"] == result["run"] for p in progress)
    (run,) = ok(api, "runs.list")
    assert (run["state"], run["done"], run["failed"], run["total"]) == ("done", 3, 1, 4)
    assert api.call("runs.resume", {"run": run["run"]})["error"]["code"] == "run_finished"
    assert ok(api, "ai.settings", {"auto_accept": 0.9}) == {"auto_accept": 0.9}
    assert ok(api, "ai.settings") == {"auto_accept": 0.9}
    assert api.call("ai.settings", {"auto_accept": 2})["error"]["code"] == "invalid_argument"


def test_closing_the_project_pauses_a_run_for_later(api: Api, opened: dict[str, Any],
                                                    events: Events, tmp_path: Path) -> None:
    ai = ai_handlers.services(api)
    release = threading.Event()
    ai.worker.submit(BATCH, release.wait, 60)   # the run cannot finish before the close
    job = ok(api, "runs.start", {"kind": "detect"})["job"]
    closer = threading.Thread(target=api.close_project)
    closer.start()
    release.set()
    closer.join(120)
    name, _ = events.wait_job(job)
    assert name == "job.cancelled"
    ok(api, "project.open", {"path": str(tmp_path / "photos")})
    (run,) = ok(api, "runs.list")
    assert run["state"] == "paused" and run["done"] + run["failed"] < run["total"]
    result = events.result(ok(api, "runs.resume", {"run": run["run"]})["job"])
    assert result["done"] + len(result["failed"]) == 4


def test_emitted_ai_events_are_documented(api: Api, opened: dict[str, Any],
                                          events: Events) -> None:
    events.result(ok(api, "segment.prepare", {"image_id": opened["image"]})["job"])
    events.result(ok(api, "detect.image", {"image_id": opened["image"]})["job"])
    ok(api, "models.unload", {})
    text = paths.resource("docs", "bridge.md").read_text(encoding="utf-8")
    section = text.split("AI-assisted labeling (issue 4)", 1)[1]
    documented = set(re.findall(r"`([a-z]+\.[a-z_]+)` [(`{]", section.split("Events:", 1)[1]))
    names = {n for n in events.names() if not n.startswith(("job.", "project.", "images."))}
    assert names and names <= documented, (names, documented)
    assert {"models.changed", "proposals.changed", "encode.ready"} <= names
