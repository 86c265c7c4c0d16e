"""The export script: ``--random tiny`` packs are complete and reproducible, ``--quantize`` makes
int8 graphs that still agree with fp32, and a checkpoint of the wrong family is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.models.detector import Detector
from backend.models.pack import load_pack
from tests.models.owl_fixtures import export_tiny, make_image, owl_root  # noqa: F401

pytest.importorskip("torch")
pytestmark = pytest.mark.models


def _scores(det: Detector, image: np.ndarray, phrases: list[str]) -> tuple[np.ndarray, np.ndarray]:
    enc = det.encode_image(image)
    q = det.encode_text(phrases)
    logits = (enc.class_embeds @ q.T + enc.shift[:, None]) * enc.scale[:, None]
    return 1 / (1 + np.exp(-logits)), enc.boxes


def test_random_tiny_export_is_complete_and_reproducible(tmp_path: Path) -> None:
    from build_scripts import export_models

    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        args = ["--family", "owlvit", "--random", "tiny", "--seed", "3", "--out", str(out)]
        assert export_models.main(args) == 0
    a, b = (load_pack(o) for o in outs)  # verifies every checksum
    assert a.manifest["files"] == b.manifest["files"], "same seed, same bytes"
    assert set(a.manifest["files"]) == {"text_encoder.onnx", "image_encoder.onnx", "tokenizer.json"}
    src = a.manifest["source"]
    assert src["random"] == "tiny" and src["seed"] == 3 and src["checkpoint"] is None
    assert src["torch"] and src["transformers"]
    assert a.id == "owlvit-tiny-random" and a.task == "detector"
    assert a.preprocessing["method"] == "squash" and a.preprocessing["image_size"] == 96
    assert a.config["tokenizer"]["max_length"] == 16
    dets = Detector(a).detect(Detector(a).encode_image(make_image(120, 90)), {"moth": ["moth"]}, 0.0)
    assert dets, "a working pack proposes boxes"


@pytest.mark.parametrize("family", ["owlvit", "owlv2"])
def test_quantized_pack_is_int8_and_close_to_fp32(owl_root: Path, family: str) -> None:  # noqa: F811
    import onnx

    _, fp32 = export_tiny(family, owl_root)
    _, int8 = export_tiny(family, owl_root, quantize=True)
    assert int8.config["quantized"] is True and fp32.config["quantized"] is False
    for graph in ("text_encoder", "image_encoder"):
        ops = {n.op_type for n in onnx.load(str(int8.graph(graph))).graph.node}
        assert "MatMulInteger" in ops, f"{graph} has no int8 matmul"
        assert int8.graph(graph).stat().st_size < fp32.graph(graph).stat().st_size
    image = make_image(150, 110, seed=4)
    phrases = ["a photo of a moth", "green leaf", "seedling"]
    s8, b8 = _scores(Detector(int8), image, phrases)
    s32, b32 = _scores(Detector(fp32), image, phrases)
    assert np.corrcoef(s8.ravel(), s32.ravel())[0, 1] > 0.99
    assert np.abs(s8 - s32).max() < 0.1
    assert np.abs(b8 - b32).max() < 5.0  # pixels, on a 150-pixel image


def test_checkpoint_of_another_family_is_refused(owl_root: Path, tmp_path: Path) -> None:  # noqa: F811
    from build_scripts.exporters import owl

    ckpt, _ = export_tiny("owlv2", owl_root)
    with pytest.raises(ValueError, match="owlv2"):
        owl.export(family="owlvit", checkpoint=str(ckpt), random=None, out=tmp_path / "x")
