"""CVAT for images 1.1 XML: well-formed, the documented elements and attributes, masks that
decode as CVAT reads them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

from tests.formats.conftest import LEAF, MOTH, Rich
from tests.formats.helpers_b import cvat_mask, export


def _parse(rich: Rich, tmp_path: Path, **options: object) -> tuple[ET.Element, Path, object]:
    summary = export(rich.project, "cvat", tmp_path / "cvat", **options)
    return ET.parse(summary.out / "annotations.xml").getroot(), summary.out, summary


def test_document_structure_and_labels(rich: Rich, tmp_path: Path) -> None:
    root, out, _ = _parse(rich, tmp_path)
    assert root.tag == "annotations" and root.findtext("version") == "1.1"
    task = root.find("meta/task")
    assert task is not None and task.findtext("mode") == "annotation"
    assert int(task.findtext("size")) == 6
    labels = [(lb.findtext("name"), lb.findtext("color")) for lb in task.findall("labels/label")]
    colors = {c["name"]: c["color"] for c in rich.project.classes()}
    assert labels == [(MOTH, colors[MOTH]), (LEAF, colors[LEAF])]
    images = root.findall("image")
    assert [int(im.get("id")) for im in images] == list(range(6))
    for im in images:
        with Image.open(out / "images" / im.get("name")) as pic:
            assert (int(im.get("width")), int(im.get("height"))) == pic.size
    names = {im.get("name") for im in images}
    assert "sub dir/ünïcode näme.png" in names and "rotated.jpg" in names


def test_shapes_have_cvat_attributes_and_our_coordinates(rich: Rich, tmp_path: Path) -> None:
    root, _, summary = _parse(rich, tmp_path, include_pending=True)
    plain = next(im for im in root.findall("image") if im.get("name") == "plain.png")
    tags = [el.tag for el in plain]
    assert tags == ["box", "polygon", "points", "box"]     # unassigned skipped, rejected out
    for el in plain:
        assert el.get("occluded") == "0" and el.get("z_order") == "0"
        assert el.get("label") in (MOTH, LEAF)
    box, poly, point, pending = list(plain)
    assert [box.get(k) for k in ("xtl", "ytl", "xbr", "ybr")] == ["4.50", "6.25", "30.00",
                                                                  "20.00"]
    assert box.get("source") == "manual" and pending.get("source") == "auto"
    assert poly.get("points") == "40.00,5.00;60.00,10.00;55.00,40.00;42.00,30.00"
    assert point.get("points") == "10.00,40.00"
    assert [s["shape_id"] for s in summary.skipped] == [rich.shapes["unassigned"]]


def test_masks_decode_as_cvat_reads_them(rich: Rich, tmp_path: Path) -> None:
    root, _, _ = _parse(rich, tmp_path)
    by_name = {im.get("name"): im for im in root.findall("image")}
    for name, key in (("holes.png", "holes"), ("sub dir/ünïcode näme.png", "parts")):
        (el,) = by_name[name].findall("mask")
        truth = rich.masks[key]
        assert np.array_equal(cvat_mask(el, *truth.shape), truth)
        rows, cols = np.nonzero(truth)
        assert (int(el.get("left")), int(el.get("top"))) == (cols.min(), rows.min())
        assert int(el.get("width")) == cols.max() - cols.min() + 1
        assert ", " in el.get("rle")                        # CVAT writes "n, n, n"


def test_split_sets_the_subset_attribute(rich: Rich, tmp_path: Path) -> None:
    root, _, _ = _parse(rich, tmp_path, split=(0.5, 0.5))
    assert {im.get("subset") for im in root.findall("image")} == {"Train", "Validation"}
    root, _, _ = _parse(rich, tmp_path / "again")
    assert all(im.get("subset") is None for im in root.findall("image"))
