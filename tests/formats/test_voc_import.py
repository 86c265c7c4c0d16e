"""Pascal VOC import: round trip, other tools' files, and malformed input (nothing imported)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from backend.errors import FieldmarkError
from backend.formats import import_project
from backend.formats.base import FormatError
from backend.geometry import rle
from backend.store import Project
from tests.formats.conftest import LEAF, MOTH, Rich, open_scanned, write_rgb
from tests.formats.helpers_b import export, files_of


def _state(project: Project) -> tuple[list, list]:
    names = {c["id"]: c["name"] for c in project.classes()}
    shapes = sorted((s["image_id"], names.get(s["class_id"]), s["kind"], str(s["geometry"]))
                    for s in project.all_shapes(("accepted", "pending", "rejected")))
    return sorted(names.values()), shapes


def test_round_trip_export_import_export_gives_the_same_files(
        rich: Rich, tmp_path: Path, fresh_copy: Callable[[Path], Project]) -> None:
    first = export(rich.project, "voc", tmp_path / "one", split=(0.6, 0.4), seed=1)
    copy = fresh_copy(rich.project.folder)
    report = import_project(copy, "voc", first.out)
    assert report.images_matched == 6          # every XML, "empty.png" (no objects) too
    assert report.shapes_added == first.shapes == 6
    assert sorted(report.classes_added) == sorted([MOTH, LEAF])
    second = export(copy, "voc", tmp_path / "two", split=(0.6, 0.4), seed=1)
    assert files_of(first.out) == files_of(second.out)
    # masks come back as masks, exactly, holes and one-pixel parts included
    by_name = {im["relpath"]: im["id"] for im in copy.images()}
    masks = {s["image_id"]: rle.decode(s["geometry"]["rle"])
             for s in copy.all_shapes() if s["kind"] == "mask"}
    assert np.array_equal(masks[by_name["holes.png"]], rich.masks["holes"])
    assert np.array_equal(masks[by_name["sub dir/ünïcode näme.png"]], rich.masks["parts"])


def test_import_is_one_undo_step(rich: Rich, tmp_path: Path,
                                 fresh_copy: Callable[[Path], Project]) -> None:
    out = export(rich.project, "voc", tmp_path / "one").out
    copy = fresh_copy(rich.project.folder)
    before = _state(copy)
    import_project(copy, "voc", out / "Annotations")       # the Annotations folder works too
    assert _state(copy) != before
    copy.undo()
    assert _state(copy)[1] == before[1]


LABELIMG = """<annotation>
  <folder>imgs</folder>
  <filename>{name}</filename>
  <path>C:\\Users\\me\\imgs\\{name}</path>
  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
  <object><name>{label}</name><difficult>1</difficult>
    <bndbox><xmin>11.0</xmin><ymin>21</ymin><xmax>40.5</xmax><ymax>30</ymax></bndbox></object>
</annotation>"""


def _one_image_project(tmp_path: Path, name: str = "site 1/ph oto.png") -> Project:
    write_rgb(tmp_path / "p" / name, 50, 40)
    return open_scanned(tmp_path / "p")


def test_other_tools_files_import_with_the_devkit_convention(tmp_path: Path) -> None:
    ann = tmp_path / "voc" / "Annotations"
    ann.mkdir(parents=True)
    (ann / "a.xml").write_text(LABELIMG.format(name="ph oto.png", w=50, h=40, label="bée"),
                               encoding="utf-8")
    with _one_image_project(tmp_path) as project:
        report = import_project(project, "voc", tmp_path / "voc")
        assert report.images_matched == 1 and report.classes_added == ["bée"]
        (shape,) = project.all_shapes()
        assert shape["kind"] == "box"
        assert shape["geometry"] == [10.0, 20.0, 40.5, 30.0]   # xmin - 1, ymin - 1, xmax, ymax
        assert shape["status"] == "accepted" and shape["source"] == "manual"


def test_unknown_images_and_wrong_sizes_are_reported(tmp_path: Path) -> None:
    ann = tmp_path / "voc"
    ann.mkdir()
    (ann / "a.xml").write_text(LABELIMG.format(name="nope.png", w=50, h=40, label="x"),
                               encoding="utf-8")
    (ann / "b.xml").write_text(LABELIMG.format(name="ph oto.png", w=100, h=80, label="x"),
                               encoding="utf-8")
    with _one_image_project(tmp_path) as project:
        report = import_project(project, "voc", ann)
        assert report.shapes_added == 0 and project.all_shapes() == []
    reasons = {Path(s["item"]).name: s["reason"] for s in report.skipped}
    assert "no image 'nope.png'" in reasons["a.xml"]
    assert "100 x 80" in reasons["b.xml"] and "50 x 40" in reasons["b.xml"]


@pytest.mark.parametrize("text, message", [
    ("<annotation><object><name>x</name>", "not valid XML"),
    ("<annotation><filename>ph oto.png</filename><object><name>x</name></object></annotation>",
     "no <bndbox>"),
    ("<annotation><filename>ph oto.png</filename><object><name>x</name><bndbox><xmin>a</xmin>"
     "<ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>",
     "xmin must be a number"),
    ("<annotation><object><bndbox/></object></annotation>", "has no <name>"),
    ("<labels/>", "root element is <labels>"),
    ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><annotation>&e;</annotation>',
     "DTD"),
])
def test_malformed_xml_is_refused_and_nothing_is_imported(tmp_path: Path, text: str,
                                                           message: str) -> None:
    ann = tmp_path / "voc"
    ann.mkdir()
    # a good file first: it must not be imported either
    (ann / "a.xml").write_text(LABELIMG.format(name="ph oto.png", w=50, h=40, label="ok"),
                               encoding="utf-8")
    (ann / "b.xml").write_text(text, encoding="utf-8")
    with _one_image_project(tmp_path) as project:
        with pytest.raises(FormatError, match=message) as info:
            import_project(project, "voc", ann)
        assert "b.xml" in info.value.message
        assert project.all_shapes() == [] and project.classes() == []
        assert not project.undo_state()["can_undo"]


def test_a_folder_without_xml_says_what_to_choose(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with _one_image_project(tmp_path) as project, pytest.raises(FieldmarkError,
                                                                 match="no .xml files"):
        import_project(project, "voc", tmp_path / "empty")


def test_segmentation_png_of_the_wrong_size_is_refused(rich: Rich, tmp_path: Path,
                                                       fresh_copy: Callable[[Path], Project]
                                                       ) -> None:
    from PIL import Image
    out = export(rich.project, "voc", tmp_path / "one").out
    Image.new("P", (5, 5)).save(out / "SegmentationObject" / "holes.png")
    copy = fresh_copy(rich.project.folder)
    with pytest.raises(FormatError, match="holes.png.*5 x 5"):
        import_project(copy, "voc", out)
    assert copy.all_shapes() == []
