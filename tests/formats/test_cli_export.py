"""``main.py export`` / ``main.py import`` as a person runs them: exit codes, messages, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import main
from backend.store import Project
from tests.formats.conftest import build_rich, copy_images, write_rgb

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A project folder with shapes, closed (the CLI opens it itself)."""
    build_rich(tmp_path / "proj ü").project.close()
    return tmp_path / "proj ü"


def test_export_json_summary_and_exit_1_when_shapes_are_skipped(
        folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main.main(["export", str(folder), "--format", "coco", "--out",
                      str(tmp_path / "out"), "--split", "0.5,0.5", "--seed", "4", "--json"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert code == 1                        # the point and the unassigned polygon
    assert summary["shapes"] == 6 and len(summary["skipped"]) == 2
    assert summary["files"] == ["annotations/train.json", "annotations/val.json"]
    assert (tmp_path / "out" / "images" / "sub dir" / "ünïcode näme.png").is_file()
    assert "Copying images" in captured.err


def test_export_exit_0_and_options_reach_the_export(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "p"
    write_rgb(folder / "a.png", 40, 20)
    write_rgb(folder / "b.png", 40, 20)
    with Project.open(folder) as project:
        project.scan([".png"])
        cid = project.add_class("moth")["id"]
        a = next(im["id"] for im in project.images() if im["relpath"] == "a.png")
        project.add_shape(a, "box", [4, 2, 20, 10], cid)
        project.add_shape(a, "box", [0, 0, 8, 8], cid, status="pending", score=0.5,
                          source="owl@1")
    code = main.main(["export", str(folder), "--format", "yolo", "--out", str(tmp_path / "y"),
                      "--resize", "20", "--include-pending", "--no-unlabeled"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Exported 1 images and 2 shapes as yolo" in out
    assert (tmp_path / "y.zip").is_file()


def test_existing_output_locked_project_and_bad_split_exit_2(
        folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("keep")
    assert main.main(["export", str(folder), "--format", "coco", "--out",
                      str(tmp_path / "out")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main.main(["export", str(folder), "--format", "coco", "--out",
                      str(tmp_path / "o2"), "--split", "0.9,0.3"]) == 2
    assert "add up to 1" in capsys.readouterr().err
    with Project.open(folder):
        assert main.main(["export", str(folder), "--format", "coco", "--out",
                          str(tmp_path / "o3"), "--json"]) == 2
        captured = capsys.readouterr()
        assert "already open" in captured.err
        assert json.loads(captured.out)["error"]["code"] == "project_locked"
    assert not (tmp_path / "o3").exists()


def test_import_round_trip_and_malformed_input(folder: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["export", str(folder), "--format", "yolo-seg", "--out",
                      str(tmp_path / "y"), "--no-images"]) == 1
    target = copy_images(folder, tmp_path / "target")
    capsys.readouterr()
    assert main.main(["import", str(target), "--format", "yolo-seg", "--from",
                      str(tmp_path / "y"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["shapes_added"] == 6 and report["images_matched"] == 6
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main.main(["import", str(target), "--format", "coco", "--from", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err


def test_help_lists_formats_and_exit_codes() -> None:
    result = subprocess.run([sys.executable, "main.py", "export", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for word in ("coco", "yolo-seg", "labelstudio", "--split", "--resize", "exit codes"):
        assert word in result.stdout
    result = subprocess.run([sys.executable, "main.py", "import", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--from" in result.stdout
