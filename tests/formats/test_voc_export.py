"""Pascal VOC export, read back by supervision and by plain ElementTree."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
import supervision as sv
from PIL import Image

from tests.formats.conftest import LEAF, MOTH, Rich, build_rich, mask_geometry, open_scanned, write_rgb
from tests.formats.helpers_b import VOC_COLORS, centre_raster, export, png_array


def _half_up(v: float) -> int:
    return math.floor(v + 0.5)


def _objects(xml_path: Path) -> list[tuple[str, tuple[int, ...]]]:
    root = ET.parse(xml_path).getroot()
    return [(o.findtext("name"), tuple(int(o.findtext(f"bndbox/{t}"))
                                       for t in ("xmin", "ymin", "xmax", "ymax")))
            for o in root.findall("object")]


def test_supervision_reads_the_boxes_and_names_we_wrote(rich: Rich, tmp_path: Path) -> None:
    out = export(rich.project, "voc", tmp_path / "voc").out
    ds = sv.DetectionDataset.from_pascal_voc(str(out / "JPEGImages"), str(out / "Annotations"))
    by_name = {Path(p).name: det for p, _, det in ds}
    assert set(by_name) == {"plain.png", "ünïcode näme.png", "holes.png", "rotated.jpg",
                            "deep16.png", "empty.png"}

    def boxes(name: str) -> list[tuple[str, list[float]]]:
        det = by_name[name]
        return sorted((ds.classes[c], [float(v) for v in xyxy])
                      for xyxy, c in zip(det.xyxy, det.class_id, strict=True))

    # A box keeps its pixel corners rounded half up: [4.5, 6.25, 30, 20] covers columns 5..29.
    x0, y0, x1, y1 = 4.5, 6.25, 30.0, 20.0
    expected_box = [_half_up(x0), _half_up(y0), x1, y1]
    poly = centre_raster([[40, 5], [60, 10], [55, 40], [42, 30]], 48, 64)
    rows, cols = np.nonzero(poly)
    expected_poly = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
    assert boxes("plain.png") == sorted([(MOTH, expected_box),
                                         (LEAF, [float(v) for v in expected_poly])])
    rows, cols = np.nonzero(rich.masks["holes"])
    assert boxes("holes.png") == [(LEAF, [cols.min(), rows.min(), cols.max() + 1.0,
                                          rows.max() + 1.0])]
    assert boxes("rotated.jpg") == [(MOTH, [2.0, 3.0, 12.0, 30.0])]
    assert boxes("deep16.png") == [(LEAF, [3.0, 4.0, 25.0, 15.0])]
    assert boxes("empty.png") == []


def test_xml_says_file_size_depth_and_segmented(rich: Rich, tmp_path: Path) -> None:
    out = export(rich.project, "voc", tmp_path / "voc").out
    for xml in (out / "Annotations").glob("*.xml"):
        root = ET.parse(xml).getroot()
        name = root.findtext("filename")
        with Image.open(out / "JPEGImages" / name) as im:
            size = (im.width, im.height)   # PIL ignores EXIF: the copy must be upright
            depth = len(im.getbands())
        assert (int(root.findtext("size/width")), int(root.findtext("size/height"))) == size
        assert int(root.findtext("size/depth")) == depth
        segmented = root.findtext("segmented") == "1"
        assert segmented == (out / "SegmentationClass" / f"{xml.stem}.png").is_file()
        for _, (xmin, ymin, xmax, ymax) in _objects(xml):
            assert 1 <= xmin <= xmax <= size[0] and 1 <= ymin <= ymax <= size[1]
    assert (out / "JPEGImages" / "rotated.jpg").is_file()
    assert int(ET.parse(out / "Annotations" / "deep16.xml").getroot().findtext("size/depth")) == 1
    assert (out / "JPEGImages" / "deep16.png").read_bytes() == \
        (rich.project.folder / "deep16.png").read_bytes()


def test_segmentation_pngs_hold_class_and_object_numbers_with_holes(rich: Rich,
                                                                    tmp_path: Path) -> None:
    out = export(rich.project, "voc", tmp_path / "voc").out
    cls, mode = png_array(out / "SegmentationClass" / "holes.png")
    obj, _ = png_array(out / "SegmentationObject" / "holes.png")
    assert mode == "P"
    holes = rich.masks["holes"]
    assert np.array_equal(cls, np.where(holes, 2, 0))      # leaf litter is class 2 (1-based)
    assert np.array_equal(obj, np.where(holes, 1, 0))
    with Image.open(out / "SegmentationClass" / "holes.png") as im:
        palette = np.asarray(im.getpalette()[:768]).reshape(256, 3)
    for index, color in VOC_COLORS.items():
        assert tuple(palette[index]) == color

    cls, _ = png_array(out / "SegmentationClass" / "ünïcode näme.png")
    assert np.array_equal(cls, np.where(rich.masks["parts"], 1, 0))   # one-pixel part too
    # plain.png: objects are box (1), polygon (2); the box paints nothing
    obj, _ = png_array(out / "SegmentationObject" / "plain.png")
    poly = centre_raster([[40, 5], [60, 10], [55, 40], [42, 30]], 48, 64)
    assert np.array_equal(obj == 2, poly)
    assert not (obj == 1).any()
    labelmap = (out / "labelmap.txt").read_text(encoding="utf-8").splitlines()
    assert labelmap[1:] == ["background:0,0,0::", f"{MOTH}:128,0,0::", f"{LEAF}:0,128,0::"]


def test_points_and_classless_shapes_are_reported_not_dropped(rich: Rich,
                                                             tmp_path: Path) -> None:
    summary = export(rich.project, "voc", tmp_path / "voc")
    reasons = {s["shape_id"]: s["reason"] for s in summary.skipped}
    assert set(reasons) == {rich.shapes["point"], rich.shapes["unassigned"]}
    assert "point" in reasons[rich.shapes["point"]]
    assert "no class" in reasons[rich.shapes["unassigned"]]
    assert summary.shapes == 6


def test_image_sets_follow_the_split(rich: Rich, tmp_path: Path) -> None:
    out = export(rich.project, "voc", tmp_path / "split", split=(0.5, 0.25, 0.25), seed=3).out
    main = {p.stem: p.read_text(encoding="utf-8").split("\n")[:-1]
            for p in (out / "ImageSets" / "Main").glob("*.txt")}
    assert set(main) == {"train", "val", "test", "trainval"}
    everything = sorted(p.stem for p in (out / "Annotations").glob("*.xml"))
    assert sorted(main["train"] + main["val"] + main["test"]) == everything
    assert sorted(main["trainval"]) == sorted(main["train"] + main["val"])
    seg = {p.stem: set(p.read_text(encoding="utf-8").splitlines()) for p in
           (out / "ImageSets" / "Segmentation").glob("*.txt")}
    segmented = {p.stem for p in (out / "SegmentationClass").glob("*.png")}
    assert set().union(*seg.values()) <= segmented

    out = export(rich.project, "voc", tmp_path / "nosplit").out
    lists = sorted(p.name for p in (out / "ImageSets" / "Main").glob("*.txt"))
    assert lists == ["trainval.txt"]
    assert sorted((out / "ImageSets/Main/trainval.txt").read_text(encoding="utf-8").split(
        "\n")[:-1]) == everything


def test_same_names_in_different_folders_get_distinct_ids(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    write_rgb(folder / "a" / "x.png", 20, 10)
    write_rgb(folder / "b" / "x.png", 20, 10)
    write_rgb(folder / "X.jpg", 20, 10)
    with open_scanned(folder) as project:
        cid = project.add_class("c")["id"]
        for im in project.images():
            project.add_shape(im["id"], "box", [1, 1, 5, 5], cid)
        out = export(project, "voc", tmp_path / "out").out
    ids = sorted(p.stem for p in (out / "Annotations").glob("*.xml"))
    assert ids == ["X", "a__x", "b__x"]
    assert sorted(p.name for p in (out / "JPEGImages").iterdir()) == ["X.jpg", "a__x.png",
                                                                     "b__x.png"]
    assert ET.parse(out / "Annotations" / "b__x.xml").getroot().findtext("path") == "b/x.png"


def test_resize_into_zip_rescales_boxes_and_masks(rich: Rich, tmp_path: Path) -> None:
    summary = export(rich.project, "voc", tmp_path / "small", resize=120)
    assert summary.out.suffix == ".zip"
    with zipfile.ZipFile(summary.out) as zf:
        root = ET.fromstring(zf.read("Annotations/plain.xml"))
        with Image.open(zf.open("JPEGImages/plain.png")) as im:
            assert im.size == (120, 90)
        cls = np.asarray(Image.open(zf.open("SegmentationClass/holes.png")))
    assert (root.findtext("size/width"), root.findtext("size/height")) == ("120", "90")
    s = 120 / 64
    name, box = _objects_from(root)[0]
    assert name == MOTH
    assert box == (_half_up(4.5 * s) + 1, _half_up(6.25 * s) + 1, _half_up(30 * s),
                   _half_up(20 * s))
    assert cls.shape == (120, 120) and set(np.unique(cls)) == {0, 2}


def _objects_from(root: ET.Element) -> list[tuple[str | None, tuple[int, ...]]]:
    return [(o.findtext("name"), tuple(int(o.findtext(f"bndbox/{t}"))
                                       for t in ("xmin", "ymin", "xmax", "ymax")))
            for o in root.findall("object")]


def test_overlapping_objects_paint_the_smaller_on_top(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    write_rgb(folder / "o.png", 40, 40)
    with open_scanned(folder) as project:
        big, small = project.add_class("big")["id"], project.add_class("small")["id"]
        image = project.images()[0]["id"]
        inner = np.zeros((40, 40), bool)
        inner[10:20, 10:20] = True
        project.add_shape(image, "mask", mask_geometry(inner), small)      # made first
        project.add_shape(image, "polygon", [[0, 0], [40, 0], [40, 40], [0, 40]], big)
        out = export(project, "voc", tmp_path / "out").out
    cls, _ = png_array(out / "SegmentationClass" / "o.png")
    assert np.array_equal(cls == 2, inner)
    assert (cls[~inner] == 1).all()
    # the big object's box is its own extent, not what is left visible
    assert _objects(out / "Annotations" / "o.xml")[1] == ("big", (1, 1, 40, 40))


def test_boxes_reaching_outside_are_clamped_and_noted(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    write_rgb(folder / "o.png", 30, 20)
    with open_scanned(folder) as project:
        cid = project.add_class("c")["id"]
        image = project.images()[0]["id"]
        inside = project.add_shape(image, "box", [-5, 2, 50, 10.4], cid)["id"]
        outside = project.add_shape(image, "box", [40, 2, 50, 10], cid)["id"]
        summary = export(project, "voc", tmp_path / "out")
    assert _objects(summary.out / "Annotations" / "o.xml") == [("c", (1, 3, 30, 10))]
    assert [n["shape_id"] for n in summary.notes] == [inside]
    assert [s["shape_id"] for s in summary.skipped] == [outside]


@pytest.mark.parametrize("copy", [True, False])
def test_copy_images_option(tmp_path: Path, copy: bool) -> None:
    rich = build_rich(tmp_path / "p")
    try:
        out = export(rich.project, "voc", tmp_path / "out", copy_images=copy).out
    finally:
        rich.project.close()
    assert (out / "JPEGImages").is_dir() == copy
    assert len(list((out / "Annotations").glob("*.xml"))) == 6


def test_a_sliver_polygon_is_kept_as_a_box_and_noted(tmp_path: Path) -> None:
    write_rgb(tmp_path / "p" / "o.png", 30, 20)
    with open_scanned(tmp_path / "p") as project:
        cid = project.add_class("c")["id"]
        image = project.images()[0]["id"]
        sliver = project.add_shape(image, "polygon", [[1, 1], [10, 1.2], [1, 1.3]], cid)["id"]
        summary = export(project, "voc", tmp_path / "out")
    # vertex box [1, 1, 10, 1.3]: thinner than a pixel, so one pixel high (ymax = ymin)
    assert _objects(summary.out / "Annotations" / "o.xml") == [("c", (2, 2, 10, 2))]
    assert [n["shape_id"] for n in summary.notes] == [sliver]
    assert not (summary.out / "SegmentationClass").exists()
