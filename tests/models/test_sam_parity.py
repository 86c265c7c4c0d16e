"""Our SAM pack (numpy + onnxruntime) against transformers' SamModel + SamProcessor on the same
tiny checkpoint: pixel values, embeddings, masks, scores, low-res logits."""

from __future__ import annotations

import numpy as np
import pytest

from backend.models.sam import preprocess
from backend.models.segmenter import load_segmenter
from tests.models.sam_fixtures import SIZES, Reference, Tiny, iou, make_image, sam_tiny  # noqa: F401

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def scenes(sam_tiny: Tiny) -> list[tuple[np.ndarray, Reference, object, object]]:  # noqa: F811
    seg = load_segmenter(sam_tiny.pack)
    out = []
    for i, (h, w) in enumerate(SIZES):
        image = make_image(h, w, seed=i)
        out.append((image, Reference(sam_tiny, image), seg, seg.encode_image(image)))
    return out


@pytest.mark.parametrize("size", [*SIZES, (1024, 1024), (97, 1500), (2000, 1333)])
def test_pixel_values_match_sam_image_processor(sam_tiny: Tiny, size: tuple[int, int]) -> None:  # noqa: F811
    image = make_image(*size, seed=3)
    ref = sam_tiny.processor(images=image, return_tensors="np")
    seg = load_segmenter(sam_tiny.pack)
    tr = seg.transform(size)
    spec = sam_tiny.pack.preprocessing
    ours = preprocess(image, tr, spec["rescale"], np.asarray(spec["mean"], np.float32),
                      np.asarray(spec["std"], np.float32))
    assert list(tr.resized_size) == [int(v) for v in ref["reshaped_input_sizes"][0]]
    assert ours.shape == ref["pixel_values"].shape
    np.testing.assert_allclose(ours, ref["pixel_values"], rtol=0, atol=1e-5)


def test_embeddings_match_and_depend_on_the_image(scenes: list) -> None:
    embs = []
    for _, ref, _, enc in scenes:
        ours = enc.arrays["image_embeddings"]
        theirs = ref.embeddings.numpy()
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, atol=1e-4 * float(np.abs(theirs).max()))
        assert ours.std(axis=(2, 3)).mean() > 0.1  # varies over the image, not a constant
        embs.append(ours)
    assert np.abs(embs[0] - embs[1]).mean() > 0.1  # and between images


def _prompts(h: int, w: int) -> dict[str, tuple[tuple, list[float] | None]]:
    return {
        "one click": (((0.3 * w, 0.4 * h, 1),), None),
        "positive + negative": (((0.3 * w, 0.4 * h, 1), (0.45 * w, 0.5 * h, 0)), None),
        "box": ((), [0.2 * w, 0.15 * h, 0.7 * w, 0.8 * h]),
        "box + point": (((0.5 * w, 0.5 * h, 1),), [0.2 * w, 0.15 * h, 0.7 * w, 0.8 * h]),
    }


@pytest.mark.parametrize("case", ["one click", "positive + negative", "box", "box + point"])
@pytest.mark.parametrize("scene", range(len(SIZES)))
def test_masks_match_transformers(scenes: list, scene: int, case: str) -> None:
    image, ref, seg, enc = scenes[scene]
    points, box = _prompts(*image.shape[:2])[case]
    multimask = len(points) == 1 and box is None  # SAM's predictor rule, our default
    ours = seg.predict(enc, points, box)
    score, low, mask = ref.predict(points, box, multimask=multimask)
    assert ours.mask.shape == image.shape[:2]
    assert iou(ours.mask, mask) >= 0.99
    assert ours.score == pytest.approx(score, abs=1e-4)
    np.testing.assert_allclose(ours.low_res_logits, low, atol=1e-4 * max(1.0, np.abs(low).max()))
    assert 0 < mask.sum() < mask.size  # a real mask, neither empty nor everything


@pytest.mark.parametrize("scene", range(len(SIZES)))
def test_refinement_with_previous_low_res_mask_matches(scenes: list, scene: int) -> None:
    image, ref, seg, enc = scenes[scene]
    h, w = image.shape[:2]
    first = ((0.3 * w, 0.4 * h, 1),)
    more = first + ((0.55 * w, 0.35 * h, 1),)
    ours1 = seg.predict(enc, first)
    _, ref_low1, _ = ref.predict(first, multimask=True)
    ours2 = seg.predict(enc, more, mask_input=ours1.low_res_logits)
    score, low, mask = ref.predict(more, mask_input=ref_low1)
    assert iou(ours2.mask, mask) >= 0.99
    assert ours2.score == pytest.approx(score, abs=1e-4)
    np.testing.assert_allclose(ours2.low_res_logits, low, atol=1e-4 * max(1.0, np.abs(low).max()))
    # The previous mask really enters the decoder (otherwise this test would prove nothing).
    plain = seg.predict(enc, more)
    assert np.abs(plain.low_res_logits - ours2.low_res_logits).max() > 1e-2


def test_all_mask_tokens_match(scenes: list) -> None:
    """The decoder graph's four outputs are SamModel's single mask + its three candidates."""
    image, ref, seg, enc = scenes[0]
    h, w = image.shape[:2]
    click = ((0.6 * w, 0.5 * h, 1),)
    scores, logits = ref.candidates(click)
    for multimask, idx in ((False, 0), (True, 1 + int(np.argmax(scores[1:])))):
        ours = seg.predict(enc, click, multimask=multimask)
        assert ours.score == pytest.approx(float(scores[idx]), abs=1e-4)
        np.testing.assert_allclose(ours.low_res_logits[0], logits[idx], atol=1e-3)
