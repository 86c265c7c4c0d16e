"""COCO import: round trips, other tools' files, and malformed input that imports nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from backend.errors import FieldmarkError
from backend.formats import ExportOptions, export_project, import_project
from backend.geometry import rle
from backend.store import Project
from tests.formats.conftest import MOTH, Rich, open_scanned, write_rgb


def _floats(value: Any) -> Any:
    """Numbers as floats (3 and 3.0 are the same coordinate), structure kept."""
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats(v) for v in value]
    return float(value) if isinstance(value, (int, float)) else value


def _normalized(path: Path) -> list[tuple[Any, ...]]:
    """Annotations by file name and category name (ids differ between projects)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    files = {im["id"]: (im["file_name"], im["width"], im["height"]) for im in data["images"]}
    cats = {c["id"]: c["name"] for c in data["categories"]}
    return sorted((files[a["image_id"]], cats[a["category_id"]],
                   json.dumps(_floats(a["segmentation"])), float(a["area"]), _floats(a["bbox"]),
                   a["iscrowd"]) for a in data["annotations"])


@pytest.mark.parametrize("segmentation", ["polygon", "rle"])
def test_round_trip_export_import_export_gives_the_same_annotations(
        rich: Rich, tmp_path: Path, fresh_copy: Callable[[Path], Project],
        segmentation: str) -> None:
    options = ExportOptions(segmentation=segmentation, copy_images=False)
    first = export_project(rich.project, "coco", tmp_path / "first", options)
    other = fresh_copy(rich.project.folder)
    report = import_project(other, "coco", first.out / "annotations.json")
    assert report.shapes_added == first.shapes == 6
    assert report.classes_added == [c["name"] for c in rich.project.classes()]
    assert report.images_matched == 6 and report.skipped == []
    second = export_project(other, "coco", tmp_path / "second", options)
    assert _normalized(second.out / "annotations.json") == \
        _normalized(first.out / "annotations.json")
    assert other.undo_state()["undo"] == "Import COCO (6 shapes)"


def test_import_keeps_shape_kinds(rich: Rich, tmp_path: Path,
                                  fresh_copy: Callable[[Path], Project]) -> None:
    out = export_project(rich.project, "coco", tmp_path / "o",
                         ExportOptions(copy_images=False)).out
    other = fresh_copy(rich.project.folder)
    import_project(other, "coco", out)          # the folder: annotations.json inside
    kinds = {}
    for rel, image_id in ((im["relpath"], im["id"]) for im in other.images()):
        kinds[rel] = sorted(s["kind"] for s in other.shapes(image_id))
    assert kinds["plain.png"] == ["box", "polygon"]
    assert kinds["sub dir/ünïcode näme.png"] == ["mask"]   # several parts: one mask shape
    assert kinds["holes.png"] == ["mask"]
    mask = next(s for s in other.all_shapes() if s["kind"] == "mask" and
                s["geometry"]["rle"]["size"] == [40, 50])
    assert np.array_equal(rle.decode(mask["geometry"]["rle"]), rich.masks["parts"])


def test_importing_twice_adds_nothing_the_second_time(rich: Rich, tmp_path: Path,
                                                      fresh_copy: Callable[[Path], Project]
                                                      ) -> None:
    out = export_project(rich.project, "coco", tmp_path / "o",
                         ExportOptions(copy_images=False)).out
    other = fresh_copy(rich.project.folder)
    import_project(other, "coco", out)
    again = import_project(other, "coco", out)
    assert again.shapes_added == 0 and again.classes_added == []
    assert len(again.skipped) == 6
    assert len(other.all_shapes()) == 6


def test_undo_removes_the_whole_import_and_its_classes(rich: Rich, tmp_path: Path,
                                                       fresh_copy: Callable[[Path], Project]
                                                       ) -> None:
    out = export_project(rich.project, "coco", tmp_path / "o",
                         ExportOptions(copy_images=False)).out
    other = fresh_copy(rich.project.folder)
    import_project(other, "coco", out)
    other.undo()
    assert other.all_shapes() == [] and other.classes() == []


def _third_party(folder: Path) -> dict[str, Any]:
    """A COCO file as other tools write them: folders in file_name, bbox-only, crowd RLE."""
    crowd = np.zeros((30, 40), bool)
    crowd[5:9, 10:20] = True
    counts = mask_utils.encode(np.asfortranarray(crowd.astype(np.uint8)))
    uncompressed = {"size": [30, 40], "counts": rle.counts_of(
        {"size": [30, 40], "counts": counts["counts"].decode()})[2].tolist()}
    return {
        "images": [{"id": 7, "file_name": "train2017/a.png", "width": 40, "height": 30},
                   {"id": 8, "file_name": "nowhere.png", "width": 40, "height": 30},
                   {"id": 9, "file_name": "b.png", "width": 99, "height": 30}],
        "categories": [{"id": 3, "name": "Seedling"}, {"id": 5, "name": MOTH}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 10, 5]},
            {"id": 2, "image_id": 7, "category_id": 5, "bbox": [10, 5, 10, 4],
             "segmentation": uncompressed, "iscrowd": 1},
            {"id": 3, "image_id": 7, "category_id": 5, "bbox": [0, 0, 8, 8], "score": 0.4,
             "segmentation": [[0, 0, 8, 0, 4, 8]], "iscrowd": 0},
            {"id": 4, "image_id": 8, "category_id": 3, "bbox": [1, 1, 2, 2]},
            {"id": 5, "image_id": 9, "category_id": 3, "bbox": [1, 1, 2, 2]},
        ],
    }


def test_import_of_another_tools_file_reports_what_it_skips(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    write_rgb(folder / "a.png", 40, 30)
    write_rgb(folder / "b.png", 40, 30)
    src = tmp_path / "instances.json"
    src.write_text(json.dumps(_third_party(folder)))
    with open_scanned(folder) as project:
        project.add_class(MOTH)
        report = import_project(project, "coco", src)
        assert report.classes_added == ["Seedling"]
        assert report.shapes_added == 3 and report.images_matched == 1
        reasons = {s["item"]: s["reason"] for s in report.skipped}
        assert "no image 'nowhere.png'" in reasons["nowhere.png"]
        assert reasons["nowhere.png"].endswith("(1 annotation not imported)")
        assert "99 x 30" in reasons["b.png"]
        shapes = {s["kind"]: s for s in project.all_shapes()}
        assert shapes["box"]["geometry"] == [1, 2, 11, 7]
        assert shapes["polygon"]["score"] == 0.4
        crowd = rle.decode(shapes["mask"]["geometry"]["rle"])
        assert crowd.sum() == 40 and shapes["mask"]["geometry"]["bbox"] == [10, 5, 20, 9]


def _break(data: dict[str, Any], how: str) -> Any:
    if how == "not a dict":
        return [1, 2]
    if how == "no categories":
        del data["categories"]
    elif how == "unknown image":
        data["annotations"][0]["image_id"] = 12345
    elif how == "unknown category":
        data["annotations"][0]["category_id"] = 99
    elif how == "bad bbox":
        data["annotations"][0]["bbox"] = [1, 2, "x", 4]
    elif how == "short polygon":
        data["annotations"][2]["segmentation"] = [[1, 2, 3, 4]]
    elif how == "bad rle":
        data["annotations"][1]["segmentation"] = {"size": [30, 40], "counts": [5, 5]}
    elif how == "nameless category":
        data["categories"][0]["name"] = " "
    return data


@pytest.mark.parametrize("how", ["not a dict", "no categories", "unknown image",
                                 "unknown category", "bad bbox", "short polygon", "bad rle",
                                 "nameless category", "not json"])
def test_malformed_coco_is_refused_with_the_file_named_and_nothing_imported(
        tmp_path: Path, how: str) -> None:
    folder = tmp_path / "p"
    write_rgb(folder / "a.png", 40, 30)
    src = tmp_path / "bad file.json"
    if how == "not json":
        src.write_text('{"images": [', encoding="utf-8")
    else:
        src.write_text(json.dumps(_break(_third_party(folder), how)))
    with open_scanned(folder) as project:
        before = project.undo_state()
        with pytest.raises(FieldmarkError) as info:
            import_project(project, "coco", src)
        assert str(src) in info.value.message
        assert project.all_shapes(("accepted", "pending", "rejected")) == []
        assert project.classes() == [] and project.undo_state() == before


def test_missing_source_and_empty_folder_are_clear_errors(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    write_rgb(folder / "a.png", 40, 30)
    (tmp_path / "empty").mkdir()
    with open_scanned(folder) as project:
        with pytest.raises(FieldmarkError, match="nothing at"):
            import_project(project, "coco", tmp_path / "nope.json")
        with pytest.raises(FieldmarkError, match="No COCO annotation file"):
            import_project(project, "coco", tmp_path / "empty")


@pytest.mark.parametrize("fmt,kind,count", [("coco", None, 0), ("yolo", "box", 3),
                                            ("yolo-seg", "polygon", 2)])
def test_importing_an_export_back_into_its_project_adds_only_what_changed_form(
        rich: Rich, tmp_path: Path, fmt: str, kind: str | None, count: int) -> None:
    out = export_project(rich.project, fmt, tmp_path / "o", ExportOptions(copy_images=False)).out
    before = {s["id"] for s in rich.project.all_shapes(("accepted", "pending", "rejected"))}
    report = import_project(rich.project, fmt, out)
    new = [s for s in rich.project.all_shapes() if s["id"] not in before]
    # what the format holds exactly matches what is there; YOLO detect holds the polygon and
    # the two masks only as boxes, YOLO segment the two masks only as joined rings
    assert report.shapes_added == len(new) == count
    assert {s["kind"] for s in new} <= {kind}
    assert len(report.skipped) == 6 - count
    assert all(s["reason"] == "the same shape is already in the project"
               for s in report.skipped)
