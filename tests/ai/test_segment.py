"""Segment by clicking with a tiny SAM pack: previews, refinement, accepting, boxes -> polygons,
and embeddings that are computed once (cached on disk, prepared ahead for the next images)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.ai.services import AiServices
from backend.imaging import load_rgb
from backend.models.pack import load_pack
from backend.models.segmenter import load_segmenter
from tests.ai.conftest import Events, Packs

pytestmark = pytest.mark.models


@pytest.fixture
def ai(ai_services: Any, packs: Packs) -> Any:
    ai_services.models.install(packs.segmenter)
    return ai_services


def _reference(packs: Packs, project: Any, image_id: int, **prompt: Any) -> tuple[Any, list[Any]]:
    seg = load_segmenter(load_pack(packs.segmenter), threads=1)
    return seg.predict_polygons(seg.encode_image(load_rgb(project.image_path(image_id))), **prompt)


def test_a_click_previews_the_segmenter_mask_as_polygons(ai: Any, project: Any,
                                                         packs: Packs) -> None:
    image_id = project.images()[0]["id"]
    got = ai.segmentation.click(project, image_id, [(80.0, 60.0, 1)])
    ref, polygons = _reference(packs, project, image_id, points=[(80.0, 60.0, 1)])
    assert got["polygons"] == polygons and got["score"] == pytest.approx(ref.score)
    assert got["area"] > 0 and got["bbox"][0] < 80 < got["bbox"][2]
    assert project.shapes(image_id) == [], "a preview is not stored"


def test_more_clicks_refine_the_previous_mask(ai: Any, project: Any, packs: Packs) -> None:
    image_id = project.images()[0]["id"]
    first = ai.segmentation.click(project, image_id, [(80.0, 60.0, 1)])
    clicks = [(80.0, 60.0, 1), (30.0, 100.0, 0)]
    refined = ai.segmentation.click(project, image_id, clicks, refine=True)
    plain = ai.segmentation.click(project, image_id, clicks)
    seg = load_segmenter(load_pack(packs.segmenter), threads=1)
    enc = seg.encode_image(load_rgb(project.image_path(image_id)))
    low = seg.predict(enc, [(80.0, 60.0, 1)]).low_res_logits
    ref, polygons = seg.predict_polygons(enc, clicks, mask_input=low)
    assert refined["polygons"] == polygons and refined["score"] == pytest.approx(ref.score)
    assert refined["polygons"] != plain["polygons"] or refined["score"] != plain["score"]
    assert first["polygons"] != refined["polygons"]


def test_accepting_stores_a_polygon_with_its_provenance_in_one_undo_step(ai: Any,
                                                                        project: Any) -> None:
    image_id = project.images()[0]["id"]
    moth = project.add_class("moth")["id"]
    preview = ai.segmentation.click(project, image_id, [(80.0, 60.0, 1)])
    ring_count = sum(len(p) for p in preview["polygons"])
    shape = ai.segmentation.accept(project, image_id, preview["polygons"], moth)
    assert shape["status"] == "accepted" and shape["class_id"] == moth
    assert shape["source"] == ai.models.active("segmenter").source_tag
    assert shape["score"] == pytest.approx(preview["score"])
    assert json.loads(shape["prompt"]) == {"points": [[80.0, 60.0, 1]], "box": None}
    assert shape["kind"] == ("polygon" if ring_count == 1 else "mask")
    project.undo()
    assert project.shapes(image_id) == []


def test_several_parts_or_holes_become_a_mask_shape(ai: Any, project: Any) -> None:
    image_id = project.images()[0]["id"]
    square = [[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0]]
    hole = [[15.0, 15.0], [15.0, 25.0], [25.0, 25.0], [25.0, 15.0]]
    other = [[50.0, 50.0], [60.0, 50.0], [60.0, 60.0], [50.0, 60.0]]
    shape = ai.segmentation.accept(project, image_id, [[square, hole], [other]], tool="smart")
    assert shape["kind"] == "mask" and shape["source"] == "smart-select@1"
    assert shape["geometry"]["bbox"] == [10.0, 10.0, 60.0, 60.0]
    from backend.geometry import rle

    assert rle.area(shape["geometry"]["rle"]) == 400 - 100 + 100
    single = ai.segmentation.accept(project, image_id, square, tool="smart")
    assert single["kind"] == "polygon" and single["geometry"] == square


def test_segment_all_boxes_turns_boxes_into_polygons_keeping_class_and_status(
        ai: Any, project: Any) -> None:
    image_id = project.images()[0]["id"]
    moth = project.add_class("moth")["id"]
    box = project.add_shape(image_id, "box", [40, 20, 120, 100], moth)
    point = project.add_shape(image_id, "point", [5, 5], moth)
    assert ai.segmentation.boxes(project, image_id) == 1
    turned = project.shape(box["id"])
    assert turned["kind"] in ("polygon", "mask") and turned["class_id"] == moth
    assert turned["status"] == "accepted" and json.loads(turned["prompt"]) == {"box": [40, 20, 120, 100]}
    assert project.shape(point["id"])["kind"] == "point"
    assert project.undo_state()["undo"] == "Segment 1 box"
    project.undo()
    assert project.shape(box["id"])["kind"] == "box"


def test_an_image_is_encoded_once_and_the_embedding_outlives_the_app(
        ai: Any, project: Any, packs: Packs, data_dir: Path) -> None:
    image_id = project.images()[0]["id"]
    ai.encodings.prefetch_count = 0  # count this image's passes only
    ai.segmentation.prepare(project, image_id)
    for x in (40.0, 80.0, 120.0):
        ai.segmentation.click(project, image_id, [(x, 60.0, 1)])
    segmenter = ai.models.segmenter()
    assert segmenter.encoder_runs == 1
    later = AiServices(Events(), packs_dir=data_dir / "packs", state_path=data_dir / "ai.json",
                       cache_dir=data_dir / "cache", threads=1, prefetch_count=0)
    try:
        got = later.segmentation.click(project, image_id, [(80.0, 60.0, 1)])
        assert later.models.segmenter().encoder_runs == 0, "read back from the disk cache"
        assert got["area"] > 0
    finally:
        later.shutdown()


def test_the_next_images_are_encoded_in_the_background(ai: Any, project: Any,
                                                       events: Events) -> None:
    ids = [im["id"] for im in project.images()]
    ai.segmentation.prepare(project, ids[0])
    deadline_ok = _wait_for(lambda: {p["image_id"] for p in events.of("encode.ready")} >= set(ids[1:]))
    assert deadline_ok, events.names()
    segmenter = ai.models.segmenter()
    runs = segmenter.encoder_runs
    ai.segmentation.click(project, ids[1], [(50.0, 50.0, 1)])
    assert segmenter.encoder_runs == runs == 3, "the click found its image ready"


def _wait_for(condition: Any, timeout: float = 120.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_clicks_outside_the_image_are_refused(ai: Any, project: Any) -> None:
    from backend.errors import InvalidArgument

    image_id = project.images()[0]["id"]
    with pytest.raises(InvalidArgument, match="outside"):
        ai.segmentation.click(project, image_id, [(1e4, 5.0, 1)])
    assert np.isfinite(ai.segmentation.click(project, image_id, [], box=[10, 10, 60, 60])["score"])
