"""Detect from text with a tiny OWLv2 pack: proposals, re-scoring without the encoder, memory of
rejections, auto-accept, find more like this."""

from __future__ import annotations

from typing import Any

import pytest

from backend.ai.proposals import NotEncoded
from backend.imaging import load_rgb
from backend.models.detector import load_detector
from backend.models.pack import load_pack
from tests.ai.conftest import Packs

pytestmark = pytest.mark.models


@pytest.fixture
def ai(ai_services: Any, packs: Packs) -> Any:
    ai_services.models.install(packs.detector)
    return ai_services


def _classes(project: Any) -> tuple[int, int]:
    a = project.add_class("disc")["id"]
    b = project.add_class("stripe")["id"]
    project.set_class_prompts(a, ["a round disc", "a circle"], 0.2)
    project.set_class_prompts(b, ["stripes"], 0.3)
    return a, b


def _reference(packs: Packs, project: Any, image_id: int, prompts: dict[str, list[str]],
               thresholds: dict[str, float]) -> list[tuple[str, list[float], float]]:
    """The detector run directly (own encoding, no cache) on the same image."""
    det = load_detector(load_pack(packs.detector), threads=1)
    enc = det.encode_image(load_rgb(project.image_path(image_id)))
    kept: list[Any] = []
    for d in det.detect(enc, prompts, thresholds):  # by score; the store drops stacked boxes
        if not any(k.label == d.label and _iou(k.box, d.box) >= 0.7 for k in kept):
            kept.append(d)
    return sorted((d.label, [round(c, 3) for c in d.box], round(d.score, 5)) for d in kept)


def _iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _as_tuples(shapes: list[dict[str, Any]]) -> list[tuple[str, list[float], float]]:
    return sorted((str(s["class_id"]), [round(c, 3) for c in s["geometry"]], round(s["score"], 5))
                  for s in shapes)


def test_try_on_this_image_gives_pending_proposals_with_provenance(ai: Any, project: Any,
                                                                  packs: Packs) -> None:
    disc, stripe = _classes(project)
    image_id = project.images()[0]["id"]
    got = ai.proposals.detect_image(project, image_id)
    assert got, "the tiny model's scores spread out: something passes 0.2"
    tag = ai.models.active("detector").source_tag
    assert {s["status"] for s in got} == {"pending"} and {s["source"] for s in got} == {tag}
    assert {s["prompt"] for s in got} <= {"a round disc", "a circle", "stripes"}
    assert all(s["kind"] == "box" and 0 < s["score"] <= 1 for s in got)
    ref = _reference(packs, project, image_id, {str(disc): ["a round disc", "a circle"],
                                                str(stripe): ["stripes"]},
                     {str(disc): 0.2, str(stripe): 0.3})
    assert _as_tuples(got) == ref


def test_a_threshold_or_phrase_change_rescores_without_the_encoder(ai: Any, project: Any,
                                                                   packs: Packs) -> None:
    disc, stripe = _classes(project)
    image_id = project.images()[1]["id"]
    with pytest.raises(NotEncoded):
        ai.proposals.rescore(project, image_id)
    ai.proposals.detect_image(project, image_id)
    detector = ai.models.detector()
    runs = detector.encoder_runs
    project.set_class_prompts(disc, ["a round disc", "a circle"], 0.4)
    higher = ai.proposals.rescore(project, image_id)
    project.set_class_prompts(stripe, ["zebra stripes"], 0.25)   # a phrase never seen before
    edited = ai.proposals.rescore(project, image_id)
    assert detector.encoder_runs == runs, "no image encoder pass for a re-score"
    assert all(s["score"] > 0.4 for s in higher if s["class_id"] == disc)
    assert "stripes" not in {s["prompt"] for s in edited}, "old phrase's proposals are replaced"
    ref = _reference(packs, project, image_id, {str(disc): ["a round disc", "a circle"],
                                                str(stripe): ["zebra stripes"]},
                     {str(disc): 0.4, str(stripe): 0.25})
    assert _as_tuples(edited) == ref


def test_rejected_proposals_are_not_proposed_again_and_accepted_ones_not_doubled(
        ai: Any, project: Any) -> None:
    _classes(project)
    image_id = project.images()[0]["id"]
    first = ai.proposals.detect_image(project, image_id)
    rejected, accepted = first[0], first[1]
    project.set_status_many([rejected["id"]], "rejected")
    project.set_status_many([accepted["id"]], "accepted")
    again = ai.proposals.detect_image(project, image_id)
    for s in again:
        assert not (s["geometry"] == rejected["geometry"] and s["class_id"] == rejected["class_id"])
        assert s["geometry"] != accepted["geometry"]
    assert len(again) == len(first) - 2


def test_auto_accept_above_a_threshold(ai: Any, project: Any) -> None:
    _classes(project)
    image_id = project.images()[2]["id"]
    scores = sorted(s["score"] for s in ai.proposals.detect_image(project, image_id))
    cut = scores[len(scores) // 2]
    project.set_setting("ai.auto_accept", cut)
    project.replace_proposals(image_id, ai.models.active("detector").source_tag, [])
    ai.proposals.detect_image(project, image_id)
    shapes = project.shapes(image_id)
    assert {s["status"] for s in shapes if s["score"] >= cut} == {"accepted"}
    assert {s["status"] for s in shapes if s["score"] < cut} == {"pending"}


def test_find_more_like_this_adds_proposals_of_the_same_class(ai: Any, project: Any) -> None:
    disc, _ = _classes(project)
    image_id = project.images()[0]["id"]
    project.set_class_prompts(disc, ["a round disc"], 0.05)
    example = project.add_shape(image_id, "box", [20, 20, 70, 70], disc)
    before = {s["id"] for s in project.shapes(image_id)}
    got_image, added = ai.proposals.similar(project, example["id"])
    assert got_image == image_id
    assert added and {s["class_id"] for s in added} == {disc}
    assert {s["prompt"] for s in added} == {f"like #{example['id']}"}
    assert before <= {s["id"] for s in project.shapes(image_id)}, "nothing is replaced"
