"""labelme import: round trip, files made by labelme itself, and malformed input."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.formats import import_project
from backend.formats.base import FormatError
from backend.geometry import rle
from backend.store import Project
from tests.formats.conftest import Rich, open_scanned, write_rgb
from tests.formats.helpers_b import centre_raster, export, files_of


@pytest.mark.parametrize("segmentation", ["polygon", "rle"])
def test_round_trip_export_import_export_gives_the_same_files(
        rich: Rich, tmp_path: Path, fresh_copy: Callable[[Path], Project],
        segmentation: str) -> None:
    first = export(rich.project, "labelme", tmp_path / "one", segmentation=segmentation)
    copy = fresh_copy(rich.project.folder)
    report = import_project(copy, "labelme", first.out)
    assert report.images_matched == 6 and report.skipped == []
    assert report.shapes_added == first.shapes == 7
    second = export(copy, "labelme", tmp_path / "two", segmentation=segmentation)
    assert files_of(first.out) == files_of(second.out)
    masks = [rle.decode(s["geometry"]["rle"]) for s in copy.all_shapes() if s["kind"] == "mask"]
    assert sorted(int(m.sum()) for m in masks) == sorted(
        int(rich.masks[k].sum()) for k in ("parts", "holes"))


def _project(tmp_path: Path) -> Project:
    write_rgb(tmp_path / "p" / "images" / "field 1.jpg", 40, 30)
    return open_scanned(tmp_path / "p")


def _b64_png(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _labelme(shapes: list[dict], image_path: str = "..\\images\\field 1.jpg") -> dict:
    """A file as labelme 5 saves it on Windows, next to a sibling images folder."""
    return {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image_path,
            "imageData": None, "imageHeight": 30, "imageWidth": 40}


def _shape(label: str, points: list, shape_type: str, **kw: object) -> dict:
    return {"label": label, "points": points, "group_id": None, "description": "",
            "shape_type": shape_type, "flags": {}, "mask": None, **kw}


def _write(folder: Path, name: str, doc: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_labelme_files_import_with_groups_masks_and_skipped_types(tmp_path: Path) -> None:
    crop = np.zeros((4, 6), np.uint8)
    crop[1:3, 1:5] = 1
    doc = _labelme([
        _shape("bee", [[30, 20], [5, 2.5]], "rectangle"),
        _shape("bee", [[3, 3]], "point"),
        _shape("leaf", [[1, 1], [10, 1], [10, 8], [1, 8]], "polygon"),
        _shape("leaf", [[20, 10], [26, 10], [26, 16], [20, 16]], "polygon", group_id=4),
        _shape("leaf", [[30, 20], [36, 20], [36, 26], [30, 26]], "polygon", group_id=4),
        _shape("stem", [[10, 20], [15, 23]], "mask", mask=_b64_png(crop)),
        _shape("blob", [[5, 5], [9, 9]], "circle"),
        _shape("", [[1, 20], [4, 20], [4, 24]], None),           # no shape_type: a polygon
    ])
    _write(tmp_path / "labels", "field 1.json", doc)
    with _project(tmp_path) as project:
        report = import_project(project, "labelme", tmp_path / "labels")
        names = {c["id"]: c["name"] for c in project.classes()}
        got = [(names.get(s["class_id"]), s["kind"], s["geometry"])
               for s in project.all_shapes()]
    assert report.classes_added == ["bee", "leaf", "stem"]
    assert [r["reason"] for r in report.skipped if "circle" in r["reason"]]
    assert got[0] == ("bee", "box", [5, 2.5, 30, 20])
    assert got[1] == ("bee", "point", [3, 3])
    assert got[2] == ("leaf", "polygon", [[1, 1], [10, 1], [10, 8], [1, 8]])
    group = rle.decode(got[3][2]["rle"])              # the two grouped polygons, as one mask
    assert got[3][:2] == ("leaf", "mask")
    assert np.array_equal(group, centre_raster([[20, 10], [26, 10], [26, 16], [20, 16]], 30, 40)
                          | centre_raster([[30, 20], [36, 20], [36, 26], [30, 26]], 30, 40))
    stem = np.zeros((30, 40), bool)
    stem[21:23, 11:15] = True                         # crop placed at points[0] = (10, 20)
    assert got[4][:2] == ("stem", "mask")
    assert np.array_equal(rle.decode(got[4][2]["rle"]), stem)
    assert got[5][:2] == (None, "polygon")


@pytest.mark.parametrize("shape, message", [
    (_shape("x", [[1, 1], [2, 2]], "polygon"), "at least 3 points"),
    (_shape("x", [[1, 1]], "rectangle"), "rectangle needs 2 points"),
    (_shape("x", [[1, "a"]], "point"), r"\[x, y\] pairs of numbers"),
    (_shape(5, [[1, 1]], "point"), "'label' must be text"),
    (_shape("x", [[0, 0], [3, 3]], "mask", mask="not base64!"), "not a base64 PNG"),
    (_shape("x", [[0, 0], [9, 9]], "mask", mask=_b64_png(np.ones((2, 2)))), "span 10 x 10"),
    (_shape("x" * 300, [[1, 1]], "point"), "cannot be a class name"),
])
def test_malformed_shapes_stop_the_import_and_name_the_file(tmp_path: Path, shape: dict,
                                                            message: str) -> None:
    _write(tmp_path / "labels", "a good one.json", _labelme([_shape("ok", [[1, 1]], "point")]))
    _write(tmp_path / "labels", "z bad.json", _labelme([shape]))
    with _project(tmp_path) as project:
        with pytest.raises(FormatError, match=message) as info:
            import_project(project, "labelme", tmp_path / "labels")
        assert "z bad.json" in info.value.message
        assert project.all_shapes() == [] and project.classes() == []


def test_broken_json_and_foreign_json(tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    _write(labels, "config.json", {"classes": []})          # not labelme: skipped in a folder
    _write(labels, "field 1.json", _labelme([_shape("ok", [[1, 1]], "point")]))
    with _project(tmp_path) as project:
        report = import_project(project, "labelme", labels)
        assert report.shapes_added == 1
        assert [Path(s["item"]).name for s in report.skipped] == ["config.json"]
        with pytest.raises(FormatError, match="no 'shapes'"):
            import_project(project, "labelme", labels / "config.json")
        (labels / "cut.json").write_text('{"shapes": [', encoding="utf-8")
        with pytest.raises(FormatError, match="cut.json.*not valid JSON"):
            import_project(project, "labelme", labels)
        assert len(project.all_shapes()) == 1


def test_unmatched_image_and_wrong_size_are_reported(tmp_path: Path) -> None:
    doc = _labelme([_shape("ok", [[1, 1]], "point")], image_path="elsewhere.png")
    _write(tmp_path / "labels", "other.json", doc)
    small = {**_labelme([_shape("ok", [[1, 1]], "point")]), "imageWidth": 20}
    _write(tmp_path / "labels", "small.json", small)
    with _project(tmp_path) as project:
        report = import_project(project, "labelme", tmp_path / "labels")
        assert report.shapes_added == 0 and project.all_shapes() == []
    reasons = {Path(s["item"]).name: s["reason"] for s in report.skipped}
    assert "no image" in reasons["other.json"]
    assert "20 x 30" in reasons["small.json"]
