"""The AI tools on a very large image: decoded reduced for the models, answers in full pixels.

The models see at most ~1,000 px a side, so ``backend.models.inputs.load_image`` decodes
anything longer than MODEL_MAX_SIDE reduced (JPEG draft mode, PNG bands) and hands the encoders
the full size: a click, a box and every proposal stay in the image's own pixels. Two things a
labeler would notice are checked: the answer on a big image is the one a whole decode would give
(same mask, same boxes, scaled), and a 30,000 x 30,000 scan is encoded without the 2.7 GB a whole
decode takes (in a subprocess, reading its peak memory: a bound, not a timing).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.models.inputs import MODEL_MAX_SIDE, load_image
from tests.ai.conftest import photo
from tests.reliability.test_bad_packs import tiny_packs
from tests.reliability.test_large_image import SIDE, half_black_png

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.models


def _mask_of(polygons: list, size: tuple[int, int]) -> np.ndarray:
    from PIL import ImageDraw

    img = Image.new("1", (size[1], size[0]), 0)
    draw = ImageDraw.Draw(img)
    for poly in polygons:
        draw.polygon([tuple(p) for p in np.asarray(poly[0]).reshape(-1, 2)], fill=1)
        for hole in poly[1:]:
            draw.polygon([tuple(p) for p in np.asarray(hole).reshape(-1, 2)], fill=0)
    return np.asarray(img, dtype=bool)


def test_a_big_photo_gets_the_masks_and_boxes_a_whole_decode_gives(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    from backend.models.detector import load_detector
    from backend.models.pack import load_pack
    from backend.models.segmenter import load_segmenter

    packs = tiny_packs(tmp_path_factory)
    h, w = 2 * MODEL_MAX_SIDE, 3 * MODEL_MAX_SIDE // 2   # 8192 x 6144: reduced by 2 for the models
    big = tmp_path / "big.png"
    Image.fromarray(photo(h // 8, w // 8, seed=3)).resize((w, h), Image.Resampling.BILINEAR).save(big)
    img = load_image(big)
    assert img.size == (h, w) and max(img.pixels.shape[:2]) <= MODEL_MAX_SIDE
    whole = np.asarray(Image.open(big).convert("RGB"))

    seg = load_segmenter(load_pack(packs.segmenter))
    reduced_enc = seg.encode_image(img.pixels, size=img.size)
    whole_enc = seg.encode_image(whole)
    assert reduced_enc.original_size == whole_enc.original_size == (h, w)
    for click in ((0.3 * w, 0.4 * h), (0.7 * w, 0.6 * h)):
        _, got = seg.predict_polygons(reduced_enc, [(*click, 1)])
        _, want = seg.predict_polygons(whole_enc, [(*click, 1)])
        assert got and want
        a, b = _mask_of(got, (h, w)), _mask_of(want, (h, w))
        iou = (a & b).sum() / max((a | b).sum(), 1)
        assert iou > 0.97, f"click {click}: IoU {iou:.3f} with the whole decode"

    det = load_detector(load_pack(packs.detector))
    prompts = {"thing": ["a photo of a thing"]}
    got_d = det.detect(det.encode_image(img.pixels, size=img.size), prompts, 0.0)
    want_d = det.detect(det.encode_image(whole), prompts, 0.0)
    assert len(got_d) == len(want_d) > 0
    got_b = np.array([d.box for d in got_d[:10]])
    want_b = np.array([d.box for d in want_d[:10]])
    # Full-resolution boxes (not the reduced image's), within a few pixels of 8,192.
    assert got_b.max() > MODEL_MAX_SIDE
    np.testing.assert_allclose(got_b, want_b, atol=0.01 * h)


_ENCODE = """
import json, resource, sys
from pathlib import Path
from backend.models.inputs import load_image
from backend.models.pack import load_pack
from backend.models.segmenter import load_segmenter
seg = load_segmenter(load_pack(Path(sys.argv[2])))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
img = load_image(Path(sys.argv[1]))
enc = seg.encode_image(img.pixels, size=img.size)
side = float(sys.argv[3])
_, polys = seg.predict_polygons(enc, [(side * 0.25, side * 0.5, 1)])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
pts = [p for poly in polys for p in poly[0]]
print(json.dumps({"grow_mb": (peak - before) / 1024, "size": list(img.size),
                  "pixels": list(img.pixels.shape), "original": list(enc.original_size),
                  "xs": [min(p[0] for p in pts), max(p[0] for p in pts)] if pts else None}))
"""


def test_a_30000_px_scan_is_encoded_without_decoding_it_whole(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    packs = tiny_packs(tmp_path_factory)
    scan = half_black_png(tmp_path / "scan.png", SIDE, SIDE)
    out = subprocess.run([sys.executable, "-c", _ENCODE, str(scan), str(packs.segmenter), str(SIDE)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["size"] == got["original"] == [SIDE, SIDE]
    assert max(got["pixels"][:2]) <= MODEL_MAX_SIDE
    # The mask comes back in the scan's own pixels (the reduced image is 4,096 wide).
    assert got["xs"] is not None and got["xs"][1] > MODEL_MAX_SIDE
    full_rgb_mb = SIDE * SIDE * 3 / 2**20
    assert got["grow_mb"] < full_rgb_mb / 4, f"encoding grew memory by {got['grow_mb']:.0f} MB"
