"""Shared helpers for the SAM tests: a tiny pack exported once per session, test images, and the
transformers reference (``SamModel`` + ``SamProcessor.post_process_masks``) on the same weights.

The tiny checkpoint comes from the exporter's ``build_random_model("tiny")`` (weights shaped so
masks are blobs, see ``_shape_blob_weights``), is saved with ``save_pretrained`` and exported
through ``export(checkpoint=...)`` — the same path as a real checkpoint folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.models.images import make_image  # noqa: F401  (re-exported for the tests)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SEED = 0
# Non-square in both orientations (landscape pads the bottom, portrait the right).
SIZES = ((300, 451), (437, 256))


@dataclass
class Tiny:
    ckpt: Path
    pack: Any
    model: Any
    processor: Any


_cache: dict[str, Tiny] = {}


def tiny(root: Path) -> Tiny:
    if "tiny" not in _cache:
        from transformers import SamModel, SamProcessor
        from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

        from build_scripts.exporters import sam as exporter

        ckpt = root / "ckpt-sam-tiny"
        if not (ckpt / "config.json").is_file():
            exporter.build_random_model("tiny", SEED).save_pretrained(ckpt)
        pack = exporter.export(family="sam", checkpoint=str(ckpt), random=None,
                               out=root / "pack-sam-tiny", quantize=False, seed=SEED,
                               pack_id="sam-tiny-test", version="0.0.1")
        model = SamModel.from_pretrained(str(ckpt)).eval()
        processor = SamProcessor(image_processor=SamImageProcessorPil())
        _cache["tiny"] = Tiny(ckpt, pack, model, processor)
    return _cache["tiny"]


@pytest.fixture(scope="session")
def sam_tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return tiny(tmp_path_factory.getbasetemp() / "sam-packs")


class Reference:
    """transformers SAM on one image: embeddings computed once, prompts like our API."""

    def __init__(self, t: Tiny, image: np.ndarray) -> None:
        import torch

        self.t, self.image = t, image
        self.inputs = t.processor(images=image, return_tensors="pt")
        with torch.no_grad():
            self.embeddings = t.model.get_image_embeddings(self.inputs["pixel_values"])

    def predict(self, points: tuple[tuple[float, float, int], ...] = (),
                box: list[float] | None = None, mask_input: np.ndarray | None = None,
                multimask: bool = False) -> tuple[float, np.ndarray, np.ndarray]:
        """(score, low-res logits (1, 256, 256), bool mask (h, w)) as transformers computes them
        (the processor rescales the prompt); with ``multimask`` the best-scored candidate."""
        import torch

        kw: dict[str, Any] = {}
        if points:
            kw["input_points"] = [[[[x, y] for x, y, _ in points]]]
            kw["input_labels"] = [[[lab for _, _, lab in points]]]
        if box is not None:
            kw["input_boxes"] = [[list(box)]]
        prompt = self.t.processor(images=self.image, return_tensors="pt", **kw)
        args: dict[str, Any] = {k: prompt[k].float() for k in ("input_points", "input_boxes")
                                if k in prompt}
        if "input_labels" in prompt:
            args["input_labels"] = prompt["input_labels"]
        if mask_input is not None:
            args["input_masks"] = torch.from_numpy(
                np.asarray(mask_input, np.float32).reshape(1, 1, 256, 256))
        with torch.no_grad():
            out = self.t.model(image_embeddings=self.embeddings, multimask_output=multimask, **args)
        scores = out.iou_scores[0, 0].numpy()
        idx = int(np.argmax(scores)) if multimask else 0
        low = out.pred_masks[0, 0, idx:idx + 1]
        masks = self.t.processor.post_process_masks(
            [low[None]], self.inputs["original_sizes"], self.inputs["reshaped_input_sizes"])
        return float(scores[idx]), low.numpy(), masks[0][0, 0].numpy().astype(bool)

    def candidates(self, points: tuple[tuple[float, float, int], ...]) -> tuple[np.ndarray, np.ndarray]:
        """All four mask tokens for a click: (scores (4,), low-res logits (4, 256, 256))."""
        import torch

        prompt = self.t.processor(images=self.image, return_tensors="pt",
                                  input_points=[[[[x, y] for x, y, _ in points]]],
                                  input_labels=[[[lab for _, _, lab in points]]])
        outs = []
        with torch.no_grad():
            for multi in (False, True):
                outs.append(self.t.model(image_embeddings=self.embeddings, multimask_output=multi,
                                         input_points=prompt["input_points"].float(),
                                         input_labels=prompt["input_labels"]))
        scores = np.concatenate([o.iou_scores[0, 0].numpy() for o in outs])
        logits = np.concatenate([o.pred_masks[0, 0].numpy() for o in outs])
        return scores, logits


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
