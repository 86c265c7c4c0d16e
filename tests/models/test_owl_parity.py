"""Parity with transformers on the same tiny checkpoint (OWL-ViT and OWLv2).

The reference is the transformers pipeline a user would run: the OWL processor (tokenizer +
PIL image processor), ``Owl*ForObjectDetection`` and ``post_process_object_detection`` /
``image_guided_detection`` + ``post_process_image_guided_detection``. Ours is the exported pack
run by :class:`~backend.models.detector.Detector`. The only intended difference: our boxes are
clipped to the image (a proposal cannot leave the picture), so reference boxes are clipped too
before comparing; unclipped geometry is compared patch by patch.

Every comparison first checks that the random checkpoint is not degenerate, so equal numbers
mean something.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.models.detector import Detector
from tests.models.owl_fixtures import (  # noqa: F401
    FAMILIES,
    SIZES,
    export_tiny,
    make_image,
    owl_root,
    reference,
    safe_threshold,
)

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.models

PROMPTS = {"moth": ["a photo of a moth", "moth"], "leaf": ["green leaf"],
           "seedling": ["a seedling", "young plant", "sprout"]}
PHRASES = [p for ps in PROMPTS.values() for p in ps]
OWNER = [label for label, ps in PROMPTS.items() for _ in ps]


@pytest.fixture(scope="module", params=FAMILIES)
def setup(request: pytest.FixtureRequest, owl_root: Path):  # noqa: F811
    family = request.param
    ckpt, pack = export_tiny(family, owl_root)
    model, processor, image_proc = reference(family, ckpt)
    return family, Detector(pack, threads=1), model, processor, image_proc


def _visible(boxes: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference boxes as we report them: clipped to the image; boxes wholly outside it (in
    OWLv2's padding) dropped. Returns (clipped boxes, mask of the kept ones)."""
    clipped = np.clip(boxes, 0, [w, h, w, h])
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return clipped[keep], keep


@pytest.mark.parametrize("hw", SIZES)
def test_text_prompted_detection_matches_transformers(setup, hw: tuple[int, int]) -> None:
    family, det, model, processor, image_proc = setup
    h, w = hw
    image = make_image(h, w, seed=1)
    inputs = processor(text=[PHRASES], images=image, return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    ref_all = torch.sigmoid(out.logits[0]).numpy()  # (P, phrases)

    # Not degenerate: scores spread, several patches above threshold, several labels win.
    spread = ((ref_all > 0.05) & (ref_all < 0.95)).mean()
    assert spread > 0.5, f"scores saturate: only {spread:.0%} in (0.05, 0.95)"
    thr = safe_threshold(ref_all.max(axis=1), 0.3)
    ref = image_proc.post_process_object_detection(out, threshold=thr, target_sizes=[(h, w)])[0]
    n = len(ref["scores"])
    assert 5 <= n < ref_all.shape[0] * 0.8, f"{n} detections: threshold selects nothing useful"
    assert len({OWNER[i] for i in ref["labels"].tolist()}) >= 2
    widths = ref["boxes"][:, 2] - ref["boxes"][:, 0]
    assert float(widths.std()) > 0.5, "boxes all the same size"

    enc = det.encode_image(image)
    # Patch by patch: unclipped pixel boxes and every phrase's score.
    ref_boxes = image_proc.post_process_object_detection(out, threshold=-1.0,
                                                         target_sizes=[(h, w)])[0]["boxes"]
    np.testing.assert_allclose(enc.boxes, ref_boxes.numpy(), atol=1e-2)
    q = det.encode_text(PHRASES)
    ours_all = 1 / (1 + np.exp(-((enc.class_embeds @ q.T + enc.shift[:, None]) * enc.scale[:, None])))
    np.testing.assert_allclose(ours_all, ref_all, atol=1e-4)

    # The detections: same boxes, scores, labels (a phrase index maps to its label).
    ours = det.detect(enc, PROMPTS, thr, nms_iou=None)
    order = np.argsort(-ref["scores"].numpy(), kind="stable")
    boxes, keep = _visible(ref["boxes"].numpy()[order], h, w)
    labels = ref["labels"].numpy()[order][keep]
    assert len(ours) == keep.sum() >= 5
    np.testing.assert_allclose([d.score for d in ours], ref["scores"].numpy()[order][keep],
                               atol=1e-4)
    np.testing.assert_allclose([d.box for d in ours], boxes, atol=1e-2)
    assert [d.label for d in ours] == [OWNER[i] for i in labels]
    assert [d.phrase for d in ours] == [PHRASES[i] for i in labels]


def _query_box(family: str, model, processor, image: np.ndarray) -> list[float]:
    """The example box that makes our "find similar" pick the reference's query patch.

    transformers' ``image_guided_detection`` takes a query IMAGE, not a box. Here the query
    image is the target image itself, so:
    - OWL-ViT picks its query patch by IoU with the whole query image ([0, 0, 1, 1]) — exactly
      our rule with the example box = the whole image [0, 0, w, h];
    - OWLv2 takes the patch with the highest objectness. Our rule takes the highest objectness
      among patches whose box matches the example box; giving it that patch's own predicted box
      (from the reference outputs, in pixels) selects the same patch.
    """
    h, w = image.shape[:2]
    if family == "owlvit":
        return [0.0, 0.0, float(w), float(h)]
    inputs = processor(text=[["x"]], images=image, return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    best = int(out.objectness_logits[0].argmax())
    cx, cy, bw, bh = out.pred_boxes[0, best].tolist()
    side = max(h, w)
    return [(cx - bw / 2) * side, (cy - bh / 2) * side, (cx + bw / 2) * side, (cy + bh / 2) * side]


@pytest.mark.parametrize("hw", SIZES)
def test_image_guided_detection_matches_transformers(setup, hw: tuple[int, int]) -> None:
    family, det, model, processor, image_proc = setup
    h, w = hw
    image = make_image(h, w, seed=2)
    inputs = processor(images=image, query_images=image, return_tensors="pt")
    with torch.no_grad():
        out = model.image_guided_detection(**inputs)
    # Patches whose box lies wholly outside the picture (OWLv2's padding) are not candidates in
    # our detector; give them score 0 in the reference too (it then skips them in NMS).
    side = np.array([w, h, w, h]) if family == "owlvit" else np.full(4, max(h, w))
    cxcy, wh = out.target_pred_boxes[0, :, :2].numpy(), out.target_pred_boxes[0, :, 2:].numpy()
    _, visible = _visible(np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=1) * side, h, w)
    out.logits[0, ~torch.from_numpy(visible), :] = -1e4
    raw = torch.sigmoid(out.logits[0, :, 0]).numpy()
    spread = ((raw > 0.05) & (raw < 0.95)).mean()
    assert spread > 0.25, f"image-guided scores saturate: only {spread:.0%} in (0.05, 0.95)"
    thr = safe_threshold(raw, 0.3)
    ref = image_proc.post_process_image_guided_detection(
        out, threshold=thr, nms_threshold=0.3, target_sizes=torch.tensor([[h, w]]))[0]
    assert len(ref["scores"]) >= 3

    enc = det.encode_image(image)
    runs = det.encoder_runs
    ours = det.find_similar(enc, _query_box(family, model, processor, image), threshold=thr,
                            nms_iou=0.3)
    assert det.encoder_runs == runs, "find-similar on an encoded image must not re-encode"
    # The reference reports display "alphas", not scores: alpha = (s - 0.1 m) / (0.9 m) with
    # m = the best score + 1e-6 (the best patch always survives NMS), and drops alpha <= 0.
    # Apply the same map to our scores.
    scores = np.array([d.score for d in ours])
    m = float(raw.max()) + 1e-6
    alpha = np.clip((scores - 0.1 * m) / (0.9 * m), 0, 1)
    shown = alpha > 0
    order = np.argsort(-ref["scores"].numpy(), kind="stable")
    boxes, keep = _visible(ref["boxes"].numpy()[order], h, w)
    assert shown.sum() == keep.sum() >= 3
    np.testing.assert_allclose(alpha[shown], ref["scores"].numpy()[order][keep], atol=1e-4)
    np.testing.assert_allclose(np.array([d.box for d in ours])[shown], boxes, atol=1e-2)
    assert all(d.score >= thr for d in ours)
