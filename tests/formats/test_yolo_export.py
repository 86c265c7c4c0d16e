"""YOLO detect and segment export, read back by PyYAML, supervision and our rasterizer."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.formats import ExportOptions, export_project
from backend.formats.yolo import data_yaml, join_rings
from backend.formats.yolo_read import parse_names
from backend.geometry.masks import polygons_to_mask
from tests.formats.conftest import LEAF, MOTH, Rich, holed_mask, open_scanned, write_rgb

warnings.filterwarnings("ignore", message="OpenCV .* is not installed")


def _labels(out: Path, split: str = "train") -> dict[str, list[list[float]]]:
    """label path (relative to labels/<split>, no suffix) -> rows of numbers."""
    root = out / "labels" / split
    return {p.relative_to(root).with_suffix("").as_posix():
            [[float(v) for v in line.split()] for line in p.read_text().splitlines()]
            for p in root.rglob("*.txt")}


def test_detect_labels_are_normalized_by_the_displayed_size(rich: Rich, tmp_path: Path
                                                            ) -> None:
    summary = export_project(rich.project, "yolo", tmp_path / "y", ExportOptions())
    labels = _labels(summary.out)
    assert set(labels) == {"plain", "sub dir/ünïcode näme", "holes", "rotated", "deep16",
                           "empty"}
    assert labels["empty"] == []
    assert np.allclose(sorted(labels["plain"]), sorted([
        [0, (4.5 + 30) / 2 / 64, (6.25 + 20) / 2 / 48, 25.5 / 64, 13.75 / 48],
        [1, 50 / 64, 22.5 / 48, 20 / 64, 35 / 48],
    ]), atol=1e-8)
    # rotated.jpg is stored 40 x 24 but displayed 24 x 40: normalized by 24 and 40
    assert labels["rotated"] == [pytest.approx([0, 7 / 24, 16.5 / 40, 10 / 24, 27 / 40])]
    # x from 5 (second part) to 45, y from 10 to 55 (second part)
    assert labels["holes"] == [pytest.approx([1, 25 / 60, 32.5 / 60, 40 / 60, 45 / 60])]
    with Image.open(summary.out / "images" / "train" / "rotated.jpg") as im:
        assert im.size == (24, 40)
    reasons = {s["shape_id"]: s["reason"] for s in summary.skipped}
    assert set(reasons) == {rich.shapes["point"], rich.shapes["unassigned"]}


def test_data_yaml_reads_with_pyyaml_and_our_reader(rich: Rich, tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    out = export_project(rich.project, "yolo", tmp_path / "y",
                         ExportOptions(split=(0.5, 0.3, 0.2))).out
    text = (out / "data.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert data["names"] == {0: MOTH, 1: LEAF} and data["nc"] == 2
    assert (data["train"], data["val"], data["test"]) == ("images/train", "images/val",
                                                          "images/test")
    assert "path" not in data
    for split in ("train", "val", "test"):
        assert (out / data[split]).is_dir()
    assert parse_names(text) == [MOTH, LEAF]


@pytest.mark.parametrize("names", [["a"], ['quote " and \\ back', "tab\there", "ünï 🐛"],
                                   ["#not a comment", "colon: x", "- dash", "  spaced  "]])
def test_awkward_class_names_survive_data_yaml(names: list[str]) -> None:
    yaml = pytest.importorskip("yaml")
    text = data_yaml(names, ["train"])
    assert list(yaml.safe_load(text)["names"].values()) == names
    assert parse_names(text) == names


@pytest.mark.parametrize("text,expected", [
    ("names: [cat, 'dog s', \"bird\"]\n", ["cat", "dog s", "bird"]),
    ("names: {0: cat, 1: dog}\n", ["cat", "dog"]),
    ("nc: 2\nnames:\n  - cat  # a comment\n  - dog\ntrain: x\n", ["cat", "dog"]),
    ("names:\n  1: dog\n  0: cat\n", ["cat", "dog"]),
    ("train: images\n", None),
])
def test_parse_names_reads_the_common_forms(text: str, expected: list[str] | None) -> None:
    assert parse_names(text) == expected
    yaml = pytest.importorskip("yaml")
    if expected is not None:                       # and agrees with PyYAML
        names = yaml.safe_load(text)["names"]
        assert (names if isinstance(names, list) else [names[i] for i in sorted(names)]) \
            == expected


def test_segment_mask_with_parts_and_holes_is_one_exact_ring(rich: Rich,
                                                             tmp_path: Path) -> None:
    summary = export_project(rich.project, "yolo-seg", tmp_path / "s", ExportOptions())
    labels = _labels(summary.out)
    for rel, mask in (("holes", rich.masks["holes"]), ("sub dir/ünïcode näme",
                                                       rich.masks["parts"])):
        (row,) = labels[rel]
        h, w = mask.shape
        ring = [[row[i] * w, row[i + 1] * h] for i in range(1, len(row), 2)]
        assert np.array_equal(polygons_to_mask([[ring]], h, w), mask)
    assert {n["shape_id"] for n in summary.notes} == {rich.shapes["holes"],
                                                       rich.shapes["parts"]}
    box = labels["plain"][0] if labels["plain"][0][0] == 0 else labels["plain"][1]
    assert box == pytest.approx([0, 4.5 / 64, 6.25 / 48, 30 / 64, 6.25 / 48, 30 / 64,
                                 20 / 48, 4.5 / 64, 20 / 48])


def test_join_rings_fills_like_the_separate_rings() -> None:
    from backend.geometry.masks import mask_to_polygons

    mask = holed_mask()
    rings = [np.asarray(r, float) for p in mask_to_polygons(mask, 0, 0) for r in p]
    assert len(rings) == 3
    joined = join_rings(rings)
    assert np.array_equal(polygons_to_mask([[joined.tolist()]], 60, 60), mask)


def test_supervision_reads_detect_and_segment_exports(rich: Rich, tmp_path: Path) -> None:
    sv = pytest.importorskip("supervision")
    for fmt in ("yolo", "yolo-seg"):
        out = export_project(rich.project, fmt, tmp_path / fmt, ExportOptions()).out
        ds = sv.DetectionDataset.from_yolo(str(out / "images" / "train"),
                                           str(out / "labels" / "train"),
                                           str(out / "data.yaml"),
                                           force_masks=fmt == "yolo-seg")
        assert ds.classes == [MOTH, LEAF]
        labels = _labels(out)
        # supervision lists only the top folder (Ultralytics recurses): 5 of the 6 images
        assert len(ds) == 5
        for path, image, det in ds:
            rel = Path(path).relative_to(out / "images" / "train").with_suffix("").as_posix()
            rows = labels[rel]
            assert len(det) == len(rows)
            assert sorted(det.class_id.tolist()) == sorted(int(r[0]) for r in rows)
            if fmt == "yolo":
                h, w = image.shape[:2]
                want = sorted([(r[1] - r[3] / 2) * w, (r[2] - r[4] / 2) * h,
                               (r[1] + r[3] / 2) * w, (r[2] + r[4] / 2) * h] for r in rows)
                got = sorted(det.xyxy.tolist())
                assert np.allclose(got, want, atol=1e-3)
        if fmt == "yolo-seg":
            for path, _, det in ds:
                if Path(path).name == "holes.png":
                    # supervision fills polygons its own way; agree with the mask closely
                    inter = (det.mask[0] & rich.masks["holes"]).sum()
                    union = (det.mask[0] | rich.masks["holes"]).sum()
                    assert inter / union > 0.9


def test_label_name_clash_is_reported_not_overwritten(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    write_rgb(folder / "x.png", 20, 20)
    write_rgb(folder / "x.jpg", 20, 20)
    with open_scanned(folder) as project:
        cid = project.add_class("a")["id"]
        for im in project.images():
            project.add_shape(im["id"], "box", [1, 1, 5, 5], cid)
        summary = export_project(project, "yolo", tmp_path / "y", ExportOptions())
    assert summary.images == 1 and summary.shapes == 1
    (skip,) = summary.skipped
    assert skip["image"] == "x.png" and "same as that of 'x.jpg'" in skip["reason"]


def test_without_split_val_points_at_train_and_resize_zip(rich: Rich, tmp_path: Path) -> None:
    import zipfile

    yaml = pytest.importorskip("yaml")
    summary = export_project(rich.project, "yolo", tmp_path / "y", ExportOptions(resize=20))
    with zipfile.ZipFile(summary.out) as zf:
        data = yaml.safe_load(zf.read("data.yaml").decode("utf-8"))
        names = zf.namelist()
        with zf.open("images/train/rotated.jpg") as fh, Image.open(fh) as im:
            assert im.size == (12, 20)
        rows = zf.read("labels/train/rotated.txt").decode().split()
    assert data["val"] == "images/train"
    assert "labels/train/deep16.txt" in names
    # normalized coordinates do not change with the size
    assert [float(v) for v in rows] == pytest.approx([0, 7 / 24, 16.5 / 40, 10 / 24, 27 / 40])
