"""labelme export: the file structure labelme's LabelFile reads, and what the shapes mean."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import supervision as sv
from PIL import Image

from tests.formats.conftest import LEAF, MOTH, Rich
from tests.formats.helpers_b import centre_raster, export, labelme_mask, png_array

# labelme/_label_file.py: the keys LabelFile.save writes, and the ones a shape may have.
FILE_KEYS = ["version", "flags", "shapes", "imagePath", "imageData", "imageHeight",
             "imageWidth"]
SHAPE_KEYS = {"label", "points", "group_id", "shape_type", "flags", "description", "mask"}


def _check_like_labelme(doc: dict, json_path: Path) -> None:
    """The checks of labelme's LabelFile.load / _load_shape_json_obj, plus the image size."""
    assert list(doc) == FILE_KEYS
    assert doc["imageData"] is None and doc["flags"] == {}
    image = json_path.parent / doc["imagePath"]          # relative to the JSON file
    with Image.open(image) as im:
        assert (im.width, im.height) == (doc["imageWidth"], doc["imageHeight"])
    for shape in doc["shapes"]:
        assert set(shape) == SHAPE_KEYS
        assert isinstance(shape["label"], str) and shape["label"]
        assert isinstance(shape["points"], list) and shape["points"]
        assert all(isinstance(p, list) and len(p) == 2
                   and all(isinstance(v, (int, float)) for v in p) for p in shape["points"])
        assert shape["shape_type"] in ("rectangle", "polygon", "point", "mask")
        assert isinstance(shape["flags"], dict) and isinstance(shape["description"], str)
        assert shape["group_id"] is None or isinstance(shape["group_id"], int)
        n = len(shape["points"])
        assert {"rectangle": n == 2, "point": n == 1, "mask": n == 2,
                "polygon": n >= 3}[shape["shape_type"]]
        assert (shape["mask"] is not None) == (shape["shape_type"] == "mask")


def _docs(out: Path) -> dict[str, dict]:
    return {p.relative_to(out).as_posix(): json.loads(p.read_text(encoding="utf-8"))
            for p in out.rglob("*.json")}


def test_every_file_has_labelme_structure_next_to_its_image(rich: Rich, tmp_path: Path) -> None:
    out = export(rich.project, "labelme", tmp_path / "lm").out
    docs = _docs(out)
    assert set(docs) == {"plain.json", "sub dir/ünïcode näme.json", "holes.json",
                         "rotated.json", "deep16.json", "empty.json"}
    for rel, doc in docs.items():
        _check_like_labelme(doc, out / rel)
    assert docs["empty.json"]["shapes"] == []
    assert (docs["rotated.json"]["imageWidth"], docs["rotated.json"]["imageHeight"]) == (24, 40)
    plain = {s["shape_type"]: s for s in docs["plain.json"]["shapes"]}
    assert plain["rectangle"]["points"] == [[4.5, 6.25], [30.0, 20.0]]
    assert plain["rectangle"]["label"] == MOTH
    assert plain["polygon"]["points"] == [[40, 5], [60, 10], [55, 40], [42, 30]]
    assert plain["point"]["points"] == [[10.0, 40.0]]


def test_mask_parts_become_grouped_polygons_and_holes_a_labelme_mask(rich: Rich,
                                                                    tmp_path: Path) -> None:
    summary = export(rich.project, "labelme", tmp_path / "lm")
    docs = _docs(summary.out)
    parts = docs["sub dir/ünïcode näme.json"]["shapes"]
    assert [s["shape_type"] for s in parts] == ["polygon"] * 3
    assert len({s["group_id"] for s in parts}) == 1 and parts[0]["group_id"] is not None
    union = np.zeros((40, 50), bool)
    for s in parts:                  # staircase outlines: pixel centres decide exactly
        union |= centre_raster(s["points"], 40, 50)
    assert np.array_equal(union, rich.masks["parts"])
    (holes,) = docs["holes.json"]["shapes"]
    assert holes["shape_type"] == "mask" and holes["label"] == LEAF
    assert np.array_equal(labelme_mask(holes, 60, 60), rich.masks["holes"])
    _, mode = png_array(base64.b64decode(holes["mask"]))
    assert mode in ("1", "L")
    assert [n["shape_id"] for n in summary.notes] == [rich.shapes["holes"]]
    assert [s["shape_id"] for s in summary.skipped] == [rich.shapes["unassigned"]]


def test_rle_segmentation_writes_every_mask_as_a_labelme_mask(rich: Rich,
                                                              tmp_path: Path) -> None:
    summary = export(rich.project, "labelme", tmp_path / "lm", segmentation="rle")
    (parts,) = _docs(summary.out)["sub dir/ünïcode näme.json"]["shapes"]
    assert parts["shape_type"] == "mask"
    assert np.array_equal(labelme_mask(parts, 40, 50), rich.masks["parts"])
    assert summary.notes == []


def test_supervision_reads_rectangles_and_polygons(rich: Rich, tmp_path: Path) -> None:
    out = export(rich.project, "labelme", tmp_path / "lm").out
    ds = sv.DetectionDataset.from_labelme(str(out), str(out))
    dets = {Path(p).name: d for p, _, d in ds}
    plain = dets["plain.png"]
    names = sorted(ds.classes[c] for c in plain.class_id)
    assert names == sorted([MOTH, LEAF])        # the point is not a supervision shape
    assert plain.mask is not None               # polygons make masks
    leaf = [i for i, c in enumerate(plain.class_id) if ds.classes[c] == LEAF][0]
    expected = centre_raster([[40, 5], [60, 10], [55, 40], [42, 30]], 48, 64)
    overlap = (plain.mask[leaf] & expected).sum() / (plain.mask[leaf] | expected).sum()
    assert overlap > 0.85                       # PIL fills the outline too (labelme's way)


@pytest.mark.parametrize("split", [None, (0.5, 0.5)])
def test_split_folders_and_json_only_without_images(rich: Rich, tmp_path: Path,
                                                    split: tuple | None) -> None:
    out = export(rich.project, "labelme", tmp_path / "lm", split=split, copy_images=False).out
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert all(f.endswith(".json") for f in files) and len(files) == 6
    if split:
        assert {f.split("/")[0] for f in files} == {"train", "val"}
    else:
        assert "sub dir/ünïcode näme.json" in files
