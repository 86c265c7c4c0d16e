"""The SAM 2 exporter: what a pack contains and promises (manifest, graph contract, dynamic
prompt length), and how the export command reaches it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.models.pack import verify_pack
from backend.models.runtime import create_session
from tests.models.sam2_fixtures import Tiny, sam2_tiny  # noqa: F401

pytestmark = pytest.mark.models


def test_pack_is_valid_and_graphs_keep_their_contract(sam2_tiny: Tiny) -> None:  # noqa: F811
    pack = verify_pack(sam2_tiny.pack.root)  # every file present and matching its sha256
    assert (pack.task, pack.family) == ("segmenter", "sam2")
    assert pack.manifest["source"]["checkpoint"] == str(sam2_tiny.ckpt)
    cfg = sam2_tiny.model.config
    assert pack.config["stability_thresh"] == cfg.mask_decoder_config.dynamic_multimask_stability_thresh
    assert pack.preprocessing["size"] == [1024, 1024]
    for name, spec in pack.manifest["io"]["graphs"].items():
        sess = create_session(pack.graph(name), threads=1)
        inputs = {i.name: i.shape for i in sess.inner.get_inputs()}
        outputs = {o.name: o.shape for o in sess.inner.get_outputs()}
        assert list(inputs) == list(spec["inputs"]) and list(outputs) == list(spec["outputs"])
        for n, shape in inputs.items():
            declared = spec["inputs"][n]["shape"]
            assert [d if isinstance(d, int) else "num_points" for d in shape] == declared


@pytest.mark.parametrize("num_points", [1, 2, 6])
def test_decoder_takes_any_number_of_prompt_points(sam2_tiny: Tiny, num_points: int) -> None:  # noqa: F811
    pack = sam2_tiny.pack
    dec = create_session(pack.graph("decoder"), threads=1)
    io = pack.manifest["io"]["graphs"]["decoder"]["inputs"]
    rng = np.random.default_rng(num_points)
    feeds = {n: rng.normal(0, 1, io[n]["shape"]).astype(np.float32)
             for n in ("image_embeddings", "high_res_feats_0", "high_res_feats_1", "mask_input")}
    labels = np.array([[1.0] * (num_points - 1) + [-1.0]], np.float32)  # clicks + padding
    feeds.update(point_coords=rng.uniform(0, 1024, (1, num_points, 2)).astype(np.float32),
                 point_labels=labels, has_mask_input=np.zeros(1, np.float32))
    scores, masks, obj = dec.run(feeds)
    assert scores.shape == (1, 4) and masks.shape == (1, 4, 256, 256) and obj.shape == (1, 1)
    assert np.isfinite(masks).all()


def test_export_command_reaches_the_sam2_exporter(tmp_path: Path) -> None:
    from build_scripts.exporters import EXPORTERS, sam2

    with pytest.raises(ValueError, match="family 'sam2'"):
        EXPORTERS["sam2"](family="sam", checkpoint=None, random="tiny", out=tmp_path,
                          quantize=False, seed=0, pack_id=None, version="1")
    with pytest.raises(ValueError, match="exactly one"):
        sam2.export(family="sam2", checkpoint=None, random=None, out=tmp_path, quantize=False,
                    seed=0, pack_id=None, version="1")
    with pytest.raises(ValueError, match="'tiny' or 'full'"):
        sam2.build_random_model("huge")
    (tmp_path / "notes.txt").write_text("mine")  # an --out typo must not wipe a folder
    with pytest.raises(ValueError, match="not a model pack"):
        sam2.export(family="sam2", checkpoint=None, random="tiny", out=tmp_path, quantize=False,
                    seed=0, pack_id=None, version="1")
    assert (tmp_path / "notes.txt").read_text() == "mine"
