"""Our SAM 2 pack (numpy + onnxruntime) against transformers' Sam2Model + Sam2Processor +
post_process_masks on the same tiny checkpoint: pixel values, encoder outputs, masks, scores,
low-res logits, and the mask selection rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backend.models.sam2 import Sam2Segmenter, preprocess, select_mask
from backend.models.segmenter import SegResult, load_segmenter
from tests.models.sam2_fixtures import (  # noqa: F401
    SIZES,
    Reference,
    Tiny,
    iou,
    make_image,
    reference_pixel_values,
    sam2_tiny,
)

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def scenes(sam2_tiny: Tiny) -> list[tuple[np.ndarray, Reference, Sam2Segmenter, Any]]:  # noqa: F811
    seg = load_segmenter(sam2_tiny.pack)
    assert isinstance(seg, Sam2Segmenter)
    out: list[tuple[np.ndarray, Reference, Sam2Segmenter, Any]] = []
    for i, (h, w) in enumerate(SIZES):
        image = make_image(h, w, seed=i)
        out.append((image, Reference(sam2_tiny, image), seg, seg.encode_image(image)))
    return out


def prompts(h: int, w: int) -> dict[str, tuple[tuple, list[float] | None]]:
    box = [0.2 * w, 0.2 * h, 0.55 * w, 0.6 * h]
    return {
        "one click": (((0.3 * w, 0.35 * h, 1),), None),
        "another click": (((0.7 * w, 0.6 * h, 1),), None),
        "positive + negative": (((0.3 * w, 0.35 * h, 1), (0.55 * w, 0.65 * h, 0)), None),
        "two positives": (((0.3 * w, 0.35 * h, 1), (0.45 * w, 0.5 * h, 1)), None),
        "box": ((), box),
        "box + point": (((0.35 * w, 0.4 * h, 1),), box),
    }


@pytest.mark.parametrize("size", [*SIZES, (1024, 1024), (97, 1500), (1500, 1100), (2000, 1333)])
def test_pixel_values_match_sam2_image_processor(sam2_tiny: Tiny, size: tuple[int, int]) -> None:  # noqa: F811
    image = make_image(*size, seed=3)
    spec = sam2_tiny.pack.preprocessing
    ours = preprocess(image, spec["size"][0], spec["rescale"], np.asarray(spec["mean"], np.float32),
                      np.asarray(spec["std"], np.float32))
    ref = reference_pixel_values(image).numpy()
    assert ours.shape == ref.shape == (1, 3, 1024, 1024)
    # Enlarging is exact; shrinking may round a few uint8 values the other way (+-1 level).
    one_level = 1.0 / (255 * min(spec["std"]))
    diff = np.abs(ours - ref)
    assert diff.max() <= one_level + 1e-4
    assert (diff > 1e-4).mean() < 0.01
    if size[0] <= 1024 and size[1] <= 1024:
        assert diff.max() <= 1e-4


def test_encoder_outputs_match_and_depend_on_the_image(scenes: list) -> None:
    arrays = []
    for _, ref, _, enc in scenes:
        theirs = dict(zip(("high_res_feats_0", "high_res_feats_1", "image_embeddings"),
                          (e.numpy() for e in ref.embeddings), strict=True))
        for name, value in theirs.items():
            ours = enc.arrays[name]
            assert ours.shape == value.shape
            np.testing.assert_allclose(ours, value, atol=1e-4 * float(np.abs(value).max()))
            # varies over the image, far beyond the tolerance above
            assert ours.std(axis=(2, 3)).mean() > 1e-3 * float(np.abs(value).max())
        arrays.append(enc.arrays["image_embeddings"])
    assert np.abs(arrays[0] - arrays[1]).mean() > 1e-2  # and between images


def _check(ours: SegResult, ref: tuple[float, np.ndarray, np.ndarray], shape: tuple[int, int],
           rel: float = 1e-5) -> None:
    score, low, mask = ref
    assert ours.mask is not None and ours.mask.shape == shape
    assert iou(ours.mask, mask) >= 0.99
    assert ours.score == pytest.approx(score, abs=1e-3)
    np.testing.assert_allclose(ours.low_res_logits, low, atol=rel * np.abs(low).max())
    assert 0 < mask.sum() < mask.size  # a real mask, neither empty nor everything


@pytest.mark.parametrize("case", list(prompts(1, 1)))
@pytest.mark.parametrize("scene", range(len(SIZES)))
def test_masks_match_transformers(scenes: list, scene: int, case: str) -> None:
    image, ref, seg, enc = scenes[scene]
    points, box = prompts(*image.shape[:2])[case]
    multimask = len(points) == 1 and box is None  # the predictor rule, our default
    ours = seg.predict(enc, points, box)
    _check(ours, ref.predict(points, box, multimask=multimask), image.shape[:2])
    other = seg.predict(enc, points, box, multimask=not multimask)
    _check(other, ref.predict(points, box, multimask=not multimask), image.shape[:2])


@pytest.mark.parametrize("scene", range(len(SIZES)))
def test_refinement_with_previous_low_res_mask_matches(scenes: list, scene: int) -> None:
    image, ref, seg, enc = scenes[scene]
    h, w = image.shape[:2]
    first = ((0.3 * w, 0.35 * h, 1),)
    more = first + ((0.45 * w, 0.5 * h, 1), (0.6 * w, 0.2 * h, 0))
    ours1 = seg.predict(enc, first)
    _, ref_low1, _ = ref.predict(first, multimask=True)
    np.testing.assert_allclose(ours1.low_res_logits, ref_low1, atol=1e-5 * np.abs(ref_low1).max())
    ours2 = seg.predict(enc, more, mask_input=ours1.low_res_logits)
    # Each side refines its own previous logits (equal to ~1e-5): a little more slack.
    _check(ours2, ref.predict(more, mask_input=ref_low1), image.shape[:2], rel=1e-4)
    # The previous mask really enters the decoder (otherwise this test would prove nothing).
    plain = seg.predict(enc, more)
    assert np.abs(plain.low_res_logits - ours2.low_res_logits).mean() > 0.1
    assert iou(plain.mask, ours2.mask) < 0.995


def test_all_mask_tokens_match(scenes: list) -> None:
    """The decoder graph's four outputs are Sam2Model's single-mask token + its three
    candidates, before selection; the object score too."""
    image, ref, seg, enc = scenes[0]
    h, w = image.shape[:2]
    for points, box in prompts(h, w).values():
        raw = seg.decode(enc, points, box)
        scores, logits = ref.tokens(points, box)
        np.testing.assert_allclose(raw["iou_scores"], scores, atol=1e-3)
        np.testing.assert_allclose(raw["low_res_masks"], logits, atol=1e-5 * np.abs(logits).max())
        obj = ref.run(points, box).object_score_logits[0, 0].numpy()
        np.testing.assert_allclose(raw["object_score_logits"], obj, atol=1e-3)


def test_selection_rule_is_sam2s(sam2_tiny: Tiny) -> None:  # noqa: F811
    """Multimask arg-max and the single-mask stability fallback, against the reference's own
    ``Sam2MaskDecoder._dynamic_multimask_via_stability`` on logits of known stability."""
    import torch

    dec = sam2_tiny.model.mask_decoder
    spec = Sam2Segmenter(sam2_tiny.pack)._spec
    rng = np.random.default_rng(0)
    seen = set()
    for trial in range(40):
        logits = rng.normal(0, 1, (4, 256, 256)).astype(np.float32)
        # token 0: a disc whose logits are steep (stable) or shallow (unstable) at its edge
        yy, xx = np.mgrid[0:256, 0:256]
        slope = (0.2, 50.0)[trial % 2]
        logits[0] = slope * (60.0 - np.hypot(yy - 128, xx - 100)) / 60.0
        scores = rng.uniform(0.1, 0.9, 4).astype(np.float32)
        ref_logits, ref_scores = dec._dynamic_multimask_via_stability(
            torch.from_numpy(logits)[None, None], torch.from_numpy(scores)[None, None])
        idx = select_mask(scores, logits, False, spec)
        np.testing.assert_array_equal(logits[idx], ref_logits[0, 0, 0].numpy())
        assert scores[idx] == pytest.approx(float(ref_scores[0, 0, 0]))
        assert select_mask(scores, logits, True, spec) == 1 + int(np.argmax(scores[1:]))
        seen.add(idx == 0)
    assert seen == {True, False}  # both branches of the rule were exercised


@pytest.mark.parametrize("size", SIZES)
def test_prompt_coordinates_match_sam2_processor(sam2_tiny: Tiny, size: tuple[int, int]) -> None:  # noqa: F811
    """Points and boxes in original pixels map to the 1024 x 1024 input as Sam2Processor does
    (each axis scaled on its own: SAM 2 stretches, it does not pad)."""
    h, w = size
    seg = Sam2Segmenter(sam2_tiny.pack)
    points = [[0.0, 0.0], [w * 0.3, h * 0.7], [float(w), float(h)]]
    box = [w * 0.1, h * 0.2, w * 0.8, h * 0.9]
    ref = sam2_tiny.processor(original_sizes=[[h, w]], input_points=[[points]],
                              input_labels=[[[1, 1, 1]]], input_boxes=[[box]], return_tensors="pt")
    tr = seg.transform((h, w))
    np.testing.assert_allclose(tr.apply_coords(points), ref["input_points"][0, 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(tr.apply_box(box).reshape(4), ref["input_boxes"][0, 0].numpy(),
                               rtol=1e-6)
