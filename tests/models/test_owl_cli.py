"""``detect`` on the command line: JSON and table output, per-file errors, exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.cli import detect as cli
from backend.errors import InvalidArgument
from backend.imaging import load_rgb
from backend.models.detector import Detector
from tests.models.owl_fixtures import export_tiny, make_image, owl_root  # noqa: F401

pytest.importorskip("torch")
pytestmark = pytest.mark.models


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fieldmark")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return cli.run(parser.parse_args(["detect", *argv]))


@pytest.fixture(scope="module")
def pack(owl_root: Path):  # noqa: F811
    return export_tiny("owlv2", owl_root)[1]


@pytest.fixture()
def images(tmp_path: Path) -> list[Path]:
    paths = []
    for i, (h, w) in enumerate([(120, 90), (80, 140)]):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(make_image(h, w, seed=i)).save(p)
        paths.append(p)
    return paths


def test_json_output_matches_the_detector(pack, images, capsys) -> None:
    code = _run([*map(str, images), "--pack", str(pack.root), "--prompt", "moth=a photo of a moth;moth",
                 "--prompt", "green leaf", "--threshold", "0.25", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == [str(p) for p in images]
    det = Detector(pack)
    prompts = {"moth": ["a photo of a moth", "moth"], "green leaf": ["green leaf"]}
    total = 0
    for p in images:
        expect = det.detect(det.encode_image(load_rgb(p)), prompts, 0.25)
        assert [d["label"] for d in out[str(p)]] == [d.label for d in expect]
        np.testing.assert_allclose([d["score"] for d in out[str(p)]] or [0], [d.score for d in expect] or [0])
        np.testing.assert_allclose([d["box"] for d in out[str(p)]] or [0], [d.box for d in expect] or [0])
        assert all(set(d) == {"label", "score", "box"} for d in out[str(p)])
        total += len(expect)
    assert total > 0, "the test must see detections"


def test_unreadable_image_is_reported_and_others_processed(pack, images, tmp_path, capsys) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code = _run([str(images[0]), str(broken), str(images[1]), "--pack", str(pack.root),
                 "--prompt", "moth", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert list(json.loads(captured.out)) == [str(images[0]), str(images[1])]
    assert "broken.jpg" in captured.err


def test_table_output(pack, images, capsys) -> None:
    assert _run([str(images[0]), "--pack", str(pack.root), "--prompt", "moth", "--threshold", "0.05"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{images[0]}: ") and "label" in out and "moth" in out


def test_pack_problems_exit_2(images, tmp_path, capsys) -> None:
    assert _run([str(images[0]), "--pack", str(tmp_path / "nowhere"), "--prompt", "moth"]) == 2
    assert "nowhere" in capsys.readouterr().err
    (tmp_path / "fake").mkdir()
    assert _run([str(images[0]), "--pack", str(tmp_path / "fake"), "--prompt", "moth"]) == 2
    assert "manifest.json" in capsys.readouterr().err


def test_usage_problems_exit_2(pack, images, capsys) -> None:
    assert _run([str(images[0]), "--pack", str(pack.root), "--prompt", "moth=", "--json"]) == 2
    assert _run([str(images[0]), "--pack", str(pack.root), "--prompt", "m", "--threshold", "3"]) == 2
    with pytest.raises(SystemExit) as exc:
        _run([str(images[0]), "--pack", str(pack.root)])  # no --prompt
    assert exc.value.code == 2


def test_prompt_syntax() -> None:
    assert cli.parse_prompts(["moth=a moth; moth ;", "leaf", "moth=moth;big moth"]) == {
        "moth": ["a moth", "moth", "big moth"], "leaf": ["leaf"]}
    with pytest.raises(InvalidArgument):
        cli.parse_prompts(["=moth"])
