"""YOLO import: round trips and malformed labels that import nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from backend.errors import FieldmarkError
from backend.formats import ExportOptions, export_project, import_project
from backend.geometry.masks import polygons_to_mask
from backend.store import Project
from tests.formats.conftest import LEAF, MOTH, Rich, open_scanned, write_rgb


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*")
            if p.is_file() and p.name != "data.yaml"}


@pytest.mark.parametrize("fmt", ["yolo", "yolo-seg"])
def test_round_trip_export_import_export_gives_the_same_labels(
        rich: Rich, tmp_path: Path, fresh_copy: Callable[[Path], Project], fmt: str) -> None:
    options = ExportOptions(copy_images=False, split=(0.5, 0.5))
    first = export_project(rich.project, fmt, tmp_path / "first", options)
    other = fresh_copy(rich.project.folder)
    report = import_project(other, fmt, first.out)
    assert report.shapes_added == first.shapes == 6
    assert report.images_matched == 6 and report.skipped == []
    assert report.classes_added == [MOTH, LEAF]
    second = export_project(other, fmt, tmp_path / "second", options)
    assert _files(second.out) == _files(first.out)


def test_segment_import_gives_back_boxes_and_the_mask_outline(
        rich: Rich, tmp_path: Path, fresh_copy: Callable[[Path], Project]) -> None:
    out = export_project(rich.project, "yolo-seg", tmp_path / "s",
                         ExportOptions(copy_images=False)).out
    other = fresh_copy(rich.project.folder)
    import_project(other, "yolo-seg", out)
    ids = {im["relpath"]: im["id"] for im in other.images()}
    plain = sorted((s["kind"], s["geometry"]) for s in other.shapes(ids["plain.png"]))
    assert plain[0][0] == "box"
    assert plain[0][1] == pytest.approx([4.5, 6.25, 30, 20], abs=1e-4)
    (holes,) = other.shapes(ids["holes.png"])
    assert holes["kind"] == "polygon"
    assert np.array_equal(polygons_to_mask([[holes["geometry"]]], 60, 60), rich.masks["holes"])


def _yolo_folder(root: Path, lines: str, names: str | None = "names: [cat, dog]\n") -> Path:
    (root / "labels" / "train").mkdir(parents=True)
    if names is not None:
        (root / "data.yaml").write_text("train: images/train\nval: images/train\n" + names)
    (root / "labels" / "train" / "a.txt").write_text(lines)
    return root


def test_predictions_with_confidence_and_classes_txt(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    write_rgb(folder / "a.jpg", 100, 50)
    src = _yolo_folder(tmp_path / "y", "1 0.5 0.5 0.2 0.4 0.9\n\n0 0.1 0.1 0.3 0.1 0.2 0.3\n",
                       names=None)
    (src / "classes.txt").write_text("cat\ndog\n")
    with open_scanned(folder) as project:
        report = import_project(project, "yolo", src)
        assert report.shapes_added == 2 and report.classes_added == ["cat", "dog"]
        shapes = {s["kind"]: s for s in project.all_shapes()}
        assert shapes["box"]["geometry"] == pytest.approx([40, 15, 60, 35])
        assert shapes["box"]["score"] == 0.9
        assert np.allclose(shapes["polygon"]["geometry"], [[10, 5], [30, 5], [20, 15]])


def test_unmatched_label_files_are_reported(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    write_rgb(folder / "a.jpg", 100, 50)
    src = _yolo_folder(tmp_path / "y", "0 0.5 0.5 0.2 0.2\n")
    (src / "labels" / "train" / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with open_scanned(folder) as project:
        report = import_project(project, "yolo", src)
    assert report.shapes_added == 1
    assert report.skipped == [{"item": "labels/train/ghost.txt",
                               "reason": "no image 'labels/train/ghost' in the project"}]


@pytest.mark.parametrize("lines,problem", [
    ("0 0.5 0.5 0.2\n", "line 1 has 3 numbers"),
    ("0 0.5 0.5 0.2 0.2\n0 0.5 x 0.2 0.2\n", "line 2 is not"),
    ("2 0.5 0.5 0.2 0.2\n", "class 2, but there are 2 class names"),
    ("0 0.5 0.5 1.5 0.2\n", "outside 0..1"),
    ("0 12 40 30 10\n", "outside 0..1"),                 # pixels instead of fractions
])
def test_malformed_labels_are_refused_and_nothing_is_imported(tmp_path: Path, lines: str,
                                                              problem: str) -> None:
    folder = tmp_path / "p"
    write_rgb(folder / "a.jpg", 100, 50)
    write_rgb(folder / "b.jpg", 100, 50)
    src = _yolo_folder(tmp_path / "y", lines)
    (src / "labels" / "train" / "b.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # a good file
    with open_scanned(folder) as project:
        with pytest.raises(FieldmarkError) as info:
            import_project(project, "yolo", src)
        assert problem in info.value.message
        assert str(src / "labels" / "train" / "a.txt") in info.value.message
        assert project.all_shapes() == [] and project.classes() == []


def test_bad_data_yaml_and_missing_labels_are_clear_errors(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    write_rgb(folder / "a.jpg", 100, 50)
    bad = _yolo_folder(tmp_path / "y", "0 0.5 0.5 0.2 0.2\n", names="names:\n  0: a\n  2: b\n")
    (tmp_path / "empty").mkdir()
    with open_scanned(folder) as project:
        with pytest.raises(FieldmarkError, match="data.yaml"):
            import_project(project, "yolo", bad)
        with pytest.raises(FieldmarkError, match="No YOLO label files"):
            import_project(project, "yolo", tmp_path / "empty")
        assert project.all_shapes() == []
