"""``main.py autolabel``: the batch run from the terminal, with its exit codes and resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import main
from backend.store import Project
from tests.ai.conftest import Packs, make_photos

pytestmark = pytest.mark.models


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main.main(["autolabel", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_autolabel_stores_proposals_and_lists_failures(packs: Packs, tmp_path: Path,
                                                       data_dir: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    make_photos(folder, 6, corrupt=(1,))
    code, out, err = _run(capsys, str(folder), "--detector", str(packs.detector), "--prompt",
                          "disc=a round disc;a circle", "--prompt", "stripes", "--threshold",
                          "0.25", "--json")
    assert code == 1, err
    result = json.loads(out)
    assert result["state"] == "done" and (result["done"], result["total"]) == (5, 6)
    assert [f["name"] for f in result["failed"]] == ["img02.jpg"]
    assert "img/s" in err, "a progress bar on stderr"
    with Project.open(folder) as p:
        classes = {c["name"]: c for c in p.classes()}
        assert classes["disc"]["prompts"] == ["a round disc", "a circle"]
        assert classes["stripes"]["threshold"] == 0.25
        shapes = [s for im in p.images() for s in p.shapes(im["id"])]
        assert len(shapes) == result["shapes"] > 0
        assert {s["status"] for s in shapes} == {"pending"}
        assert all(s["score"] > 0.25 for s in shapes)


def test_segment_makes_polygons_and_resume_of_a_finished_run_is_refused(
        packs: Packs, tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    make_photos(folder, 2)
    code, out, err = _run(capsys, str(folder), "--detector", str(packs.detector), "--segmenter",
                          str(packs.segmenter), "--segment", "--prompt", "disc=a round disc",
                          "--threshold", "0.2")
    assert code == 0, err
    assert "2 of 2 images done" in out
    with Project.open(folder) as p:
        kinds = {s["kind"] for im in p.images() for s in p.shapes(im["id"])}
        run = p.runs()[0]["run"]
    assert kinds and kinds <= {"polygon", "mask"}
    code, _, err = _run(capsys, str(folder), "--resume", str(run))
    assert code == 2 and "finished" in err


def test_a_paused_run_resumes_with_its_own_prompts(packs: Packs, tmp_path: Path, data_dir: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    make_photos(folder, 4)
    with Project.open(folder) as p:
        from backend.imaging import SUPPORTED_EXTENSIONS

        p.scan(SUPPORTED_EXTENSIONS)
        disc = p.add_class("disc")["id"]
        p.set_class_prompts(disc, ["a round disc"], 0.2)
        run = p.create_run("detect", [im["id"] for im in p.images()],
                           {"detector": "owlv2-tiny-test@0.0.1", "prompts": {str(disc): ["a round disc"]},
                            "thresholds": {str(disc): 0.2}, "auto_accept": None})
        p.set_run_state(run["run"], "paused")
    code, out, err = _run(capsys, str(folder), "--resume", str(run["run"]), "--json")
    assert code == 2 and "no installed detector pack 'owlv2-tiny-test@0.0.1'" in err
    code, out, err = _run(capsys, str(folder), "--resume", str(run["run"]), "--detector",
                          str(packs.detector), "--json")
    assert code == 0, err
    assert json.loads(out)["done"] == 4


@pytest.mark.parametrize("args, message", [
    (["--prompt", "x"], "--detector"),
    (["--detector", "nowhere", "--prompt", "x"], "no installed detector pack 'nowhere'"),
    (["--detector", "DET", "--prompt", "x", "--segment"], "--segmenter"),
    (["--detector", "DET", "--prompt", "x", "--threshold", "3"], "between 0 and 1"),
])
def test_usage_problems_exit_2_with_a_message(packs: Packs, tmp_path: Path, data_dir: Path,
                                              capsys: pytest.CaptureFixture[str], args: list[Any],
                                              message: str) -> None:
    folder = tmp_path / "photos"
    make_photos(folder, 1)
    args = [str(packs.detector) if a == "DET" else a for a in args]
    code, _, err = _run(capsys, str(folder), *args)
    assert code == 2 and message in err
