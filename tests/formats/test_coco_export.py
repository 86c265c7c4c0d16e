"""COCO export, checked by pycocotools (the reference reader) and supervision."""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from backend.formats import ExportOptions, export_project
from backend.geometry.masks import polygon_area
from tests.formats.conftest import LEAF, MOTH, Rich

warnings.filterwarnings("ignore", message="OpenCV .* is not installed")


def _export(rich: Rich, out: Path, **options: object):
    return export_project(rich.project, "coco", out, ExportOptions(**options))


def _coco(path: Path) -> COCO:
    return COCO(str(path))


def _by_shape(data: dict) -> dict[int, dict]:
    return {a["id"]: a for a in data["annotations"]}


@pytest.mark.parametrize("segmentation", ["polygon", "rle"])
def test_pycocotools_decodes_every_annotation_with_area_and_bbox_of_the_mask(
        rich: Rich, tmp_path: Path, segmentation: str) -> None:
    summary = _export(rich, tmp_path / "out", segmentation=segmentation)
    coco = _coco(summary.out / "annotations.json")
    assert len(coco.anns) == summary.shapes == 6   # box, polygon, 2 masks, rotated, 16-bit
    for ann in coco.anns.values():
        assert ann["iscrowd"] == 0
        mask = coco.annToMask(ann)
        img = coco.imgs[ann["image_id"]]
        assert mask.shape == (img["height"], img["width"])
        assert mask.any()
        rle = coco.annToRLE(ann)
        x, y, w, h = mask_utils.toBbox(rle)
        bx, by, bw, bh = ann["bbox"]
        # bbox from pycocotools' rasterization: whole pixels, so within a pixel of ours
        assert abs(bx - x) <= 1 and abs(by - y) <= 1
        assert abs(bx + bw - (x + w)) <= 1 and abs(by + bh - (y + h)) <= 1
        if isinstance(ann["segmentation"], dict) or ann["id"] in (rich.shapes["parts"],
                                                                   rich.shapes["holes"]):
            assert ann["area"] == mask.sum()    # masks and RLEs: exactly the pixel count
        else:
            # a polygon's exact area vs its rasterization: differ only along the outline
            perimeter = 2 * (bw + bh)
            assert abs(ann["area"] - mask.sum()) <= perimeter / 2 + 1


def test_masks_keep_every_part_and_holes_go_to_rle(rich: Rich, tmp_path: Path) -> None:
    summary = _export(rich, tmp_path / "out")
    coco = _coco(summary.out / "annotations.json")
    parts = coco.anns[rich.shapes["parts"]]
    assert isinstance(parts["segmentation"], list)
    assert len(parts["segmentation"]) == 3          # two blocks and a one-pixel part
    assert np.array_equal(coco.annToMask(parts).astype(bool), rich.masks["parts"])
    holes = coco.anns[rich.shapes["holes"]]
    assert isinstance(holes["segmentation"], dict)
    assert np.array_equal(coco.annToMask(holes).astype(bool), rich.masks["holes"])
    assert [n["shape_id"] for n in summary.notes] == [rich.shapes["holes"]]


def test_polygon_area_is_the_polygon_area_and_box_area_is_w_times_h(rich: Rich,
                                                                    tmp_path: Path) -> None:
    data = json.loads((_export(rich, tmp_path / "o").out / "annotations.json").read_text())
    anns = _by_shape(data)
    ring = [[40, 5], [60, 10], [55, 40], [42, 30]]
    assert anns[rich.shapes["polygon"]]["area"] == pytest.approx(polygon_area(ring))
    assert anns[rich.shapes["polygon"]]["bbox"] == [40, 5, 20, 35]
    box = anns[rich.shapes["box"]]
    assert box["bbox"] == [4.5, 6.25, 25.5, 13.75]
    assert box["area"] == pytest.approx(25.5 * 13.75)


def test_what_coco_cannot_hold_is_reported_and_statuses_filter(rich: Rich,
                                                               tmp_path: Path) -> None:
    summary = _export(rich, tmp_path / "a")
    reasons = {s["shape_id"]: s["reason"] for s in summary.skipped}
    assert set(reasons) == {rich.shapes["point"], rich.shapes["unassigned"]}
    assert "point" in reasons[rich.shapes["point"]]
    assert "no class" in reasons[rich.shapes["unassigned"]]
    anns = _by_shape(json.loads((summary.out / "annotations.json").read_text()))
    assert rich.shapes["pending"] not in anns and rich.shapes["rejected"] not in anns

    with_pending = _export(rich, tmp_path / "b", include_pending=True)
    anns = _by_shape(json.loads((with_pending.out / "annotations.json").read_text()))
    assert anns[rich.shapes["pending"]]["score"] == 0.75
    assert rich.shapes["rejected"] not in anns


def test_ids_are_stable_and_categories_follow_the_class_order(rich: Rich,
                                                              tmp_path: Path) -> None:
    first = (_export(rich, tmp_path / "a").out / "annotations.json").read_bytes()
    second = (_export(rich, tmp_path / "b").out / "annotations.json").read_bytes()
    assert first == second
    data = json.loads(first)
    assert data["categories"] == [{"id": 1, "name": MOTH, "supercategory": ""},
                                  {"id": 2, "name": LEAF, "supercategory": ""}]
    for im in data["images"]:                      # image ids are the project's ids
        assert im["id"] == rich.images[im["file_name"]]
    assert {a["id"] for a in data["annotations"]} <= set(rich.shapes.values())
    assert _by_shape(data)[rich.shapes["polygon"]]["category_id"] == 2


def test_images_are_copied_with_unicode_names_and_16bit_kept(rich: Rich,
                                                             tmp_path: Path) -> None:
    out = _export(rich, tmp_path / "out").out
    data = json.loads((out / "annotations.json").read_text(encoding="utf-8"))
    names = sorted(im["file_name"] for im in data["images"])
    assert "sub dir/ünïcode näme.png" in names and "empty.png" in names
    for name in names:
        assert (out / "images" / name).is_file()
    src16 = rich.project.folder / "deep16.png"
    assert (out / "images" / "deep16.png").read_bytes() == src16.read_bytes()


def test_exif_rotated_image_is_written_upright_with_display_coordinates(
        rich: Rich, tmp_path: Path) -> None:
    out = _export(rich, tmp_path / "out").out
    data = json.loads((out / "annotations.json").read_text())
    info = next(im for im in data["images"] if im["file_name"] == "rotated.jpg")
    assert (info["width"], info["height"]) == (24, 40)        # as displayed
    with Image.open(out / "images" / "rotated.jpg") as im:
        assert im.size == (24, 40)
        assert im.getexif().get(0x0112, 1) == 1               # no tag left to re-apply
        arr = np.asarray(im.convert("L"), dtype=float)
    # stored left third bright -> after orientation 6 (rotate 90 cw) the top third is bright
    assert arr[:10].mean() > 150 and arr[20:].mean() < 80


def test_no_unlabeled_and_no_images(rich: Rich, tmp_path: Path) -> None:
    out = _export(rich, tmp_path / "out", include_unlabeled=False, copy_images=False).out
    data = json.loads((out / "annotations.json").read_text())
    assert "empty.png" not in {im["file_name"] for im in data["images"]}
    assert not (out / "images").exists()


def test_split_files_are_reproducible_and_cover_every_image_once(rich: Rich,
                                                                 tmp_path: Path) -> None:
    a = _export(rich, tmp_path / "a", split=(0.5, 0.25, 0.25), seed=3)
    b = _export(rich, tmp_path / "b", split=(0.5, 0.25, 0.25), seed=3)
    assert a.files == ["annotations/train.json", "annotations/val.json",
                       "annotations/test.json"]
    seen: list[str] = []
    for rel in a.files:
        assert (a.out / rel).read_bytes() == (b.out / rel).read_bytes()
        coco = _coco(a.out / rel)
        seen += [im["file_name"] for im in coco.imgs.values()]
        for ann in coco.anns.values():
            coco.annToMask(ann)
    assert sorted(seen) == sorted(rich.images)


def test_resize_zip_rescales_coordinates_to_the_resized_images(rich: Rich,
                                                               tmp_path: Path) -> None:
    summary = _export(rich, tmp_path / "small", resize=32)
    assert summary.out.name == "small.zip" and summary.out.is_file()
    extract = tmp_path / "x"
    with zipfile.ZipFile(summary.out) as zf:
        zf.extractall(extract)
    full = json.loads((_export(rich, tmp_path / "full").out / "annotations.json").read_text())
    full_anns, full_imgs = _by_shape(full), {im["id"]: im for im in full["images"]}
    coco = _coco(extract / "annotations.json")
    for img in coco.imgs.values():
        with Image.open(extract / "images" / img["file_name"]) as im:
            assert im.size == (img["width"], img["height"])
            assert max(im.size) == 32
    for ann in coco.anns.values():
        img, src = coco.imgs[ann["image_id"]], full_imgs[ann["image_id"]]
        sx, sy = img["width"] / src["width"], img["height"] / src["height"]
        x, y, w, h = full_anns[ann["id"]]["bbox"]
        expected = [x * sx, y * sy, w * sx, h * sy]
        tol = 1.5 if full_anns[ann["id"]]["id"] in (rich.shapes["parts"],
                                                    rich.shapes["holes"]) else 1e-6
        assert ann["bbox"] == pytest.approx(expected, abs=tol)
        assert coco.annToMask(ann).any()
    assert "deep16.png" in {im["file_name"] for im in coco.imgs.values()}
    with Image.open(extract / "images" / "deep16.png") as im:
        assert im.mode == "RGB"          # the resized path writes 8-bit, as displayed


def test_supervision_reads_the_export_as_written(rich: Rich, tmp_path: Path) -> None:
    sv = pytest.importorskip("supervision")
    out = _export(rich, tmp_path / "out", segmentation="rle").out
    data = json.loads((out / "annotations.json").read_text())
    ds = sv.DetectionDataset.from_coco(str(out / "images"), str(out / "annotations.json"),
                                       force_masks=True)
    assert ds.classes == [MOTH, LEAF]
    by_file = {im["file_name"]: im["id"] for im in data["images"]}
    expected: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        expected.setdefault(ann["image_id"], []).append(ann)
    assert len(ds) == len(data["images"])
    for path, _, det in ds:
        rel = Path(path).relative_to(out / "images").as_posix()
        anns = expected.get(by_file[rel], [])
        assert len(det) == len(anns)
        for i, ann in enumerate(sorted(anns, key=lambda a: a["id"])):
            x, y, w, h = ann["bbox"]
            assert det.xyxy[i] == pytest.approx([x, y, x + w, y + h], abs=1e-4)
            assert det.mask[i].sum() == ann["area"]


def test_rle_export_of_boxes_and_polygons_is_pycocotools_encoding_of_their_pixels(
        rich: Rich, tmp_path: Path) -> None:
    """Every box and polygon written as RLE is byte for byte what pycocotools encodes for the
    pixels polygons_to_mask gives the shape on its whole image (the VOC and mask exports paint
    those same pixels), and area and bbox are that mask's."""
    from pycocotools import mask as coco_mask

    from backend.geometry.masks import polygons_to_mask

    out = _export(rich, tmp_path / "out", segmentation="rle").out
    data = json.loads((out / "annotations.json").read_text())
    sizes = {im["id"]: (im["height"], im["width"]) for im in data["images"]}
    shapes = {s["id"]: s for s in rich.project.all_shapes(("accepted",))}
    checked = 0
    for ann in data["annotations"]:
        shape = shapes[ann["id"]]
        if shape["kind"] not in ("box", "polygon"):
            continue
        g = shape["geometry"]
        ring = g if shape["kind"] == "polygon" else [[g[0], g[1]], [g[2], g[1]], [g[2], g[3]],
                                                     [g[0], g[3]]]
        h, w = sizes[ann["image_id"]]
        mask = polygons_to_mask([[ring]], h, w)
        ref = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert ann["segmentation"]["counts"].encode() == ref["counts"]
        assert ann["segmentation"]["size"] == [h, w]
        assert ann["area"] == int(mask.sum())
        assert ann["bbox"] == [float(v) for v in coco_mask.toBbox(ref)]
        checked += 1
    assert checked == 4     # box, polygon, rotated box, 16-bit box
