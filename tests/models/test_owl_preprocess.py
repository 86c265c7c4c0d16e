"""pixel_values from our numpy/Pillow preprocessing equal transformers' PIL image processors
(OWL-ViT: bit-identical; OWLv2: the scipy Gaussian + zoom path, to float32 rounding)."""

from __future__ import annotations

import numpy as np
import pytest

from backend.errors import InvalidArgument
from backend.models import owl_preprocess
from tests.models.owl_fixtures import make_image

pytestmark = pytest.mark.models
pytest.importorskip("transformers")
pytest.importorskip("scipy")  # the OWLv2 reference resize needs it; the runtime does not

MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def _pre(family: str, size: int, **extra: object) -> dict:
    common = {"image_size": size, "rescale_factor": 1 / 255, "mean": MEAN, "std": STD}
    if family == "owlvit":
        return {**common, "method": "squash", "resample": "bicubic", **extra}
    return {**common, "method": "pad_square_gaussian_linear", "pad_value": 0.0, **extra}


def _reference(family: str, size: int):
    from transformers.models.owlv2 import Owlv2ImageProcessorPil
    from transformers.models.owlvit import OwlViTImageProcessorPil

    proc_cls = OwlViTImageProcessorPil if family == "owlvit" else Owlv2ImageProcessorPil
    return proc_cls(size={"height": size, "width": size})


# (h, w): non-square both ways, down- and up-sampling, 1-pixel strips, real-size inputs.
CASES = [(96, (110, 150)), (96, (150, 110)), (96, (40, 30)), (96, (96, 96)), (96, (1, 5)),
         (96, (7, 200)), (96, (333, 61)), (960, (480, 640)), (960, (1300, 1000))]


@pytest.mark.parametrize("family", ["owlvit", "owlv2"])
@pytest.mark.parametrize(("size", "hw"), CASES)
def test_pixel_values_match_reference(family: str, size: int, hw: tuple[int, int]) -> None:
    image = make_image(*hw, seed=hw[0] * 7 + hw[1])
    ours = owl_preprocess.pixel_values(image, _pre(family, size))
    ref = _reference(family, size)(images=image, return_tensors="np",
                                   input_data_format="channels_last")["pixel_values"]
    assert ours.shape == ref.shape == (1, 3, size, size)
    assert ours.dtype == np.float32
    tol = 0.0 if family == "owlvit" else 1e-5
    np.testing.assert_allclose(ours, ref, rtol=0, atol=tol)
    assert ours.std() > 0.1, "a real picture, not a constant"


def test_owlv2_pad_value_is_honoured() -> None:
    """A pack may record another pad value; compare with the reference's own pad/resize steps."""
    from transformers.models.owlv2 import Owlv2ImageProcessorPil

    proc = Owlv2ImageProcessorPil(size={"height": 64, "width": 64})
    image = make_image(50, 90, seed=3)
    x = (image.astype(np.float64) / 255).astype(np.float32).transpose(2, 0, 1)
    x = proc.pad(x, constant_value=0.5)
    x = proc.resize(x, {"height": 64, "width": 64})
    ref = proc.normalize(x, MEAN, STD)
    ours = owl_preprocess.pixel_values(image, _pre("owlv2", 64, pad_value=0.5))[0]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)


def test_box_scale_follows_the_model_frame() -> None:
    # OWL-ViT boxes are relative to the squashed image, OWLv2's to the padded square.
    np.testing.assert_array_equal(owl_preprocess.box_scale(_pre("owlvit", 96), 100, 300),
                                  [300, 100, 300, 100])
    np.testing.assert_array_equal(owl_preprocess.box_scale(_pre("owlv2", 96), 100, 300),
                                  [300, 300, 300, 300])


@pytest.mark.parametrize("bad", [np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 4), np.uint8),
                                 np.zeros((0, 10, 3), np.uint8), [[1, 2, 3]]])
def test_bad_images_are_refused(bad: object) -> None:
    with pytest.raises(InvalidArgument, match="image"):
        owl_preprocess.pixel_values(bad, _pre("owlv2", 96))  # type: ignore[arg-type]


def test_gray_image_is_expanded_like_rgb() -> None:
    gray = make_image(40, 60)[:, :, 0]
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(owl_preprocess.pixel_values(gray, _pre("owlv2", 32)),
                                  owl_preprocess.pixel_values(rgb, _pre("owlv2", 32)))
