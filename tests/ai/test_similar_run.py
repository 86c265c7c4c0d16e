""""Find more like this" on all images: a ``similar`` run proposes objects like the selected
shape on every image, with the shape's class, resumable with the very same query."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.ai.encodings import load_image
from backend.ai.models import NoModel
from backend.ai.runs import RunControl, RunStopped
from backend.errors import InvalidArgument, NotFound
from backend.imaging import SUPPORTED_EXTENSIONS
from backend.store import Project
from tests.ai.conftest import Packs, make_photos

pytestmark = pytest.mark.models
THRESHOLD = 0.05
EXAMPLE_BOX = [20.0, 20.0, 70.0, 70.0]


@pytest.fixture
def ai(ai_services: Any, packs: Packs) -> Any:
    ai_services.models.install(packs.detector)
    return ai_services


@pytest.fixture
def batch(tmp_path: Path) -> Iterator[Project]:
    folder = tmp_path / "similar"
    make_photos(folder, 6, corrupt=(4,))
    with Project.open(folder) as p:
        p.scan(SUPPORTED_EXTENSIONS)
        yield p


def _example(project: Project) -> tuple[int, dict[str, Any]]:
    disc = project.add_class("disc")["id"]
    project.set_class_prompts(disc, ["a round disc"], THRESHOLD)
    first = project.images()[0]["id"]
    return disc, project.add_shape(first, "box", EXAMPLE_BOX, disc)


def _reference(detector: Any, project: Project, image_id: int, query: Any) -> list[list[float]]:
    img = load_image(project.image_path(image_id))
    enc = detector.encode_image(img.pixels, size=img.size)
    return sorted(list(map(float, d.box)) for d in detector.score_query(enc, query, THRESHOLD))


def test_similar_run_proposes_the_examples_class_on_every_image(ai: Any, batch: Project) -> None:
    disc, example = _example(batch)
    other = batch.images()[1]["id"]
    # Proposals of an earlier detect stay: a similar run adds, it does not replace.
    kept = batch.replace_proposals(other, ai.models.detector().pack.source_tag,
                                   [{"kind": "box", "geometry": [100, 60, 150, 110],
                                     "class_id": disc, "score": 0.9, "prompt": "a round disc"}])
    run = ai.runs.create(batch, "similar", shape_id=example["id"])
    assert run["kind"] == "similar" and "query" not in run["params"], "no model pass on create"
    result = ai.runs.execute(batch, run["run"])
    assert result["state"] == "done" and [f["name"] for f in result["failed"]] == ["img05.jpg"]
    detector = ai.models.detector()
    query = np.asarray(batch.run(run["run"])["params"]["query"], dtype=np.float32)
    ex_img = load_image(batch.image_path(example["image_id"]))
    ex_enc = detector.encode_image(ex_img.pixels, size=ex_img.size)
    np.testing.assert_allclose(query, detector.query_embedding(ex_enc, EXAMPLE_BOX), atol=1e-5)
    made = {im["id"]: [s for s in batch.proposals(im["id"])
                       if s["prompt"] == f"similar to shape #{example['id']}"]
            for im in batch.images()}
    assert sum(map(len, made.values())) == result["shapes"] > 0
    for shapes in made.values():
        assert all(s["class_id"] == disc and s["source"] == detector.pack.source_tag
                   and s["score"] >= THRESHOLD for s in shapes)
    # An image with nothing on it gets exactly what the detector scores against the query.
    fresh = batch.images()[2]["id"]
    got = sorted(s["geometry"] for s in made[fresh])
    np.testing.assert_allclose(np.reshape(got, (-1, 4)),
                               np.reshape(_reference(detector, batch, fresh, query), (-1, 4)),
                               atol=1e-3)
    assert kept[0]["id"] in {s["id"] for s in batch.proposals(other)}
    assert batch.shape(example["id"])["geometry"] == EXAMPLE_BOX, "the example is untouched"


def test_cancel_then_resume_processes_each_image_once_with_the_stored_query(
        ai: Any, batch: Project) -> None:
    _, example = _example(batch)
    run_id = ai.runs.create(batch, "similar", shape_id=example["id"])["run"]
    control = RunControl()

    def progress(done: int, total: int, message: str, eta: float | None) -> None:
        if done == 2:
            control.request("cancelled")

    with pytest.raises(RunStopped):
        ai.runs.execute(batch, run_id, progress, control)
    stored = batch.run(run_id)["params"]["query"]
    before = {i["image_id"]: i for i in batch.run_items(run_id) if i["state"] != "todo"}
    assert len(before) == 2
    ai.runs.prepare_resume(batch, run_id)
    result = ai.runs.execute(batch, run_id)
    assert result["state"] == "done" and result["done"] == 5
    after = {i["image_id"]: i for i in batch.run_items(run_id)}
    assert all(after[k] == v for k, v in before.items()), "finished images were not redone"
    assert batch.run(run_id)["params"]["query"] == stored
    # Five readable images, each encoded once; the query was not computed again on resume.
    assert ai.models.detector().encoder_runs == 5


def test_a_similar_run_needs_an_existing_shape_with_an_area_and_a_detector(
        ai_services: Any, packs: Packs, batch: Project) -> None:
    _, example = _example(batch)
    with pytest.raises(NoModel):
        ai_services.runs.create(batch, "similar", shape_id=example["id"])
    ai_services.models.install(packs.detector)
    with pytest.raises(NotFound):
        ai_services.runs.create(batch, "similar", shape_id=example["id"] + 1000)
    with pytest.raises(InvalidArgument) as missing:
        ai_services.runs.create(batch, "similar")
    assert "shape_id" in missing.value.message
    point = batch.add_shape(example["image_id"], "point", [30, 30])
    with pytest.raises(InvalidArgument) as bad:
        ai_services.runs.create(batch, "similar", shape_id=point["id"])
    assert "point" in bad.value.message and bad.value.detail == {"field": "shape_id"}
    assert batch.runs() == [], "nothing was recorded"
