"""``main.py segment``: JSON output that decodes back to the mask, and clear errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.cli import segment
from backend.geometry import rle
from backend.geometry.masks import polygons_to_mask
from backend.models.segmenter import load_segmenter
from tests.models.sam_fixtures import Tiny, iou, make_image, sam_tiny  # noqa: F401


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="main.py")
    segment.add_parser(parser.add_subparsers(dest="command"))
    rc = segment.run(parser.parse_args(["segment", *argv]))
    out = capsys.readouterr()
    return rc, out.out, out.err

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    image = make_image(260, 390, seed=5)
    path = tmp_path_factory.mktemp("cli") / "photo.png"
    Image.fromarray(image).save(path)
    return path, image


@pytest.mark.parametrize("prompt", [["--point", "120,100"],
                                    ["--point", "120,100", "--point", "200,150,0"],
                                    ["--box", "60,40,300,220"]])
def test_json_output_decodes_to_the_mask(sam_tiny: Tiny, photo: tuple[Path, np.ndarray],  # noqa: F811
                                         prompt: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    path, image = photo
    rc, out, err = _run([str(path), "--pack", str(sam_tiny.pack.root), *prompt, "--json",
                         "--tolerance", "0.5"], capsys)
    assert rc == 0, err
    result = json.loads(out)
    assert set(result) == {"score", "area", "bbox", "polygons", "rle"}
    mask = rle.decode(result["rle"])
    assert mask.shape == image.shape[:2]
    assert rle.area(result["rle"]) == result["area"] == int(mask.sum()) > 0
    ys, xs = np.nonzero(mask)
    assert result["bbox"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert iou(polygons_to_mask(result["polygons"], *mask.shape), mask) >= 0.97
    # Same answer as the library call on the same image.
    seg = load_segmenter(sam_tiny.pack)
    points = [tuple(float(v) for v in p.split(",")) + ((1,) if p.count(",") == 1 else ())
              for flag, p in zip(prompt[::2], prompt[1::2], strict=True) if flag == "--point"]
    box = [float(v) for v in prompt[1].split(",")] if prompt[0] == "--box" else None
    expected = seg.predict(seg.encode_image(image), [(x, y, int(lab)) for x, y, lab in points], box)
    assert (expected.mask == mask).all()
    assert result["score"] == pytest.approx(expected.score, abs=1e-5)


def test_text_output(sam_tiny: Tiny, photo: tuple[Path, np.ndarray],  # noqa: F811
                     capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run([str(photo[0]), "--pack", str(sam_tiny.pack.root), "--point", "50,60"],
                      capsys)
    assert rc == 0 and "score" in out and "polygon" in out


@pytest.mark.parametrize("args,code,needle", [
    (["--point", "500,10"], 2, "outside"),
    (["--point", "10"], 2, "--point"),
    (["--point", "10,10,5"], 2, "--point"),
    (["--box", "1,2,3"], 2, "--box"),
    ([], 2, "at least one"),
])
def test_usage_errors(sam_tiny: Tiny, photo: tuple[Path, np.ndarray], args: list[str], code: int,  # noqa: F811
                      needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run([str(photo[0]), "--pack", str(sam_tiny.pack.root), *args], capsys)
    assert rc == code and needle in err and out == ""


def test_unreadable_image_and_bad_pack(sam_tiny: Tiny, tmp_path: Path,  # noqa: F811
                                       photo: tuple[Path, np.ndarray],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    rc, _, err = _run([str(broken), "--pack", str(sam_tiny.pack.root), "--point", "1,1"], capsys)
    assert rc == 1 and "broken.jpg" in err
    rc, _, err = _run([str(photo[0]), "--pack", str(tmp_path / "nope"), "--point", "1,1"], capsys)
    assert rc == 2 and "nope" in err
    (tmp_path / "empty").mkdir()
    rc, _, err = _run([str(photo[0]), "--pack", str(tmp_path / "empty"), "--point", "1,1"], capsys)
    assert rc == 2 and "manifest.json" in err
