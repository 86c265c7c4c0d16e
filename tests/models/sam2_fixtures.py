"""Shared helpers for the SAM 2 tests: a tiny pack exported once per session, test images, and
the transformers reference (``Sam2Model`` + ``Sam2Processor`` + ``post_process_masks``) on the
same weights.

The tiny checkpoint is the exporter's ``save_random_checkpoint("tiny")`` (weights shaped so
masks are blobs, see ``_shape_blob_weights``) and is exported through ``export(checkpoint=...)``,
the path a real checkpoint folder takes.

transformers 5.23 ships ``Sam2ImageProcessor`` only on its torchvision backend, which is not
installed here (and its module imports torchvision at import time). The reference therefore:

* resizes like that backend does: ``tvF.resize`` of the uint8 tensor, bilinear, antialias, which
  on a CPU with AVX2 is torch's native uint8 ``interpolate(antialias=True)``; then the fused
  rescale + normalize ``(x - 255 * mean) / (255 * std)``;
* takes ``Sam2ImageProcessor.post_process_masks`` from the installed transformers source
  (parsed out of the module file and compiled on its own: it only needs torch);
* normalizes prompts with the real ``Sam2Processor`` (``original_sizes`` path).
"""

from __future__ import annotations

import ast
import importlib.util
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.models.images import make_image  # noqa: F401  (re-exported for the tests)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SEED = 0
SIZES = ((300, 451), (437, 256))  # non-square, both orientations
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@dataclass
class Tiny:
    ckpt: Path
    pack: Any
    model: Any
    processor: Any


_cache: dict[str, Tiny] = {}


@lru_cache(maxsize=1)
def reference_post_process_masks() -> Any:
    """``Sam2ImageProcessor.post_process_masks`` from the installed transformers source."""
    import torch
    import torch.nn.functional as F  # noqa: N812 — the name the reference code uses

    spec = importlib.util.find_spec("transformers")
    assert spec is not None and spec.submodule_search_locations
    path = Path(spec.submodule_search_locations[0]) / "models" / "sam2" / "image_processing_sam2.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Sam2ImageProcessor")
    fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "post_process_masks")
    namespace: dict[str, Any] = {"torch": torch, "F": F, "np": np}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return namespace["post_process_masks"]


def reference_pixel_values(image: np.ndarray) -> Any:
    """float32 torch (1, 3, 1024, 1024): Sam2ImageProcessor's torchvision path (module doc)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].contiguous()
    r = torch.nn.functional.interpolate(t, (1024, 1024), mode="bilinear", antialias=True,
                                        align_corners=False)
    mean = torch.tensor(MEAN)[:, None, None] * 255
    std = torch.tensor(STD)[:, None, None] * 255
    return (r.float() - mean) / std


def tiny(root: Path) -> Tiny:
    if "tiny" not in _cache:
        from transformers import Sam2Model, Sam2Processor
        from transformers.image_processing_backends import PilBackend

        from build_scripts.exporters import sam2 as exporter

        class Sam2ImageProcessorStandIn(PilBackend):
            """Carries the image processor's size and the reference post-processing."""

            size = {"height": 1024, "width": 1024}

            def post_process_masks(self, *args: Any, **kwargs: Any) -> Any:
                return reference_post_process_masks()(self, *args, **kwargs)

        ckpt = root / "ckpt-sam2-tiny"
        if not (ckpt / "config.json").is_file():
            exporter.save_random_checkpoint("tiny", SEED, ckpt)
        pack = exporter.export(family="sam2", checkpoint=str(ckpt), random=None,
                               out=root / "pack-sam2-tiny", quantize=False, seed=SEED,
                               pack_id="sam2-tiny-test", version="0.0.1")
        model = Sam2Model.from_pretrained(str(ckpt)).eval()
        processor = Sam2Processor(image_processor=Sam2ImageProcessorStandIn())
        _cache["tiny"] = Tiny(ckpt, pack, model, processor)
    return _cache["tiny"]


@pytest.fixture(scope="session")
def sam2_tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return tiny(tmp_path_factory.getbasetemp() / "sam2-packs")


class Reference:
    """transformers SAM 2 on one image: embeddings computed once, prompts like our API."""

    def __init__(self, t: Tiny, image: np.ndarray) -> None:
        import torch

        self.t, self.image = t, image
        self.size = [int(image.shape[0]), int(image.shape[1])]
        with torch.no_grad():
            self.embeddings = t.model.get_image_embeddings(reference_pixel_values(image))

    def _args(self, points: tuple[tuple[float, float, int], ...], box: list[float] | None,
              mask_input: np.ndarray | None) -> dict[str, Any]:
        import torch

        kw: dict[str, Any] = {}
        if points:
            kw["input_points"] = [[[[x, y] for x, y, _ in points]]]
            kw["input_labels"] = [[[lab for _, _, lab in points]]]
        if box is not None:
            kw["input_boxes"] = [[list(box)]]
        prompt = self.t.processor(original_sizes=[self.size], return_tensors="pt", **kw)
        args = {k: prompt[k] for k in ("input_points", "input_labels", "input_boxes") if k in prompt}
        if mask_input is not None:
            args["input_masks"] = torch.from_numpy(
                np.asarray(mask_input, np.float32).reshape(1, 1, 256, 256))
        return args

    def run(self, points: tuple[tuple[float, float, int], ...] = (), box: list[float] | None = None,
            mask_input: np.ndarray | None = None, multimask: bool = False) -> Any:
        import torch

        with torch.no_grad():
            return self.t.model(image_embeddings=self.embeddings, multimask_output=multimask,
                                **self._args(points, box, mask_input))

    def predict(self, points: tuple[tuple[float, float, int], ...] = (),
                box: list[float] | None = None, mask_input: np.ndarray | None = None,
                multimask: bool = False) -> tuple[float, np.ndarray, np.ndarray]:
        """(score, low-res logits (1, 256, 256), bool mask (h, w)) as transformers computes them;
        with ``multimask`` the best-scored of the three candidates."""
        out = self.run(points, box, mask_input, multimask)
        scores = out.iou_scores[0, 0].numpy()
        idx = int(np.argmax(scores)) if multimask else 0
        low = out.pred_masks[0, 0, idx:idx + 1]
        masks = self.t.processor.post_process_masks([low[None]], [self.size])
        return float(scores[idx]), low.numpy(), masks[0][0, 0].numpy().astype(bool)

    def tokens(self, points: tuple[tuple[float, float, int], ...] = (),
               box: list[float] | None = None, mask_input: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """All four mask tokens before selection: (scores (4,), low-res logits (4, 256, 256))."""
        dec = self.t.model.mask_decoder
        stable = dec.dynamic_multimask_via_stability
        dec.dynamic_multimask_via_stability = False  # multimask_output=False -> plain token 0
        try:
            single = self.run(points, box, mask_input, multimask=False)
        finally:
            dec.dynamic_multimask_via_stability = stable
        multi = self.run(points, box, mask_input, multimask=True)
        scores = np.concatenate([single.iou_scores[0, 0].numpy(), multi.iou_scores[0, 0].numpy()])
        logits = np.concatenate([single.pred_masks[0, 0].numpy(), multi.pred_masks[0, 0].numpy()])
        return scores, logits


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def stability(logits: np.ndarray, delta: float = 0.05) -> float:
    """SAM 2's stability score of one low-res mask (``Sam2MaskDecoder._get_stability_scores``)."""
    union = np.count_nonzero(logits > -delta)
    return 1.0 if union == 0 else np.count_nonzero(logits > delta) / union
