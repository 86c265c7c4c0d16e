"""Semantic masks in the pixel-classifier layout: values, 255 unlabeled, weights, config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.formats import masks as fmt_masks
from backend.formats.base import ClassItem, Dataset, ExportOptions, FormatError, ImageItem
from tests.formats.conftest import LEAF, MOTH, Rich, mask_geometry, open_scanned, write_rgb
from tests.formats.helpers_b import centre_raster, export, png_array


def _masks(out: Path) -> dict[str, np.ndarray]:
    found = {}
    for p in out.rglob("*.png"):
        rel = p.relative_to(out).as_posix()
        if "/masks/" in rel:
            arr, mode = png_array(p)
            assert mode == "L" and arr.ndim == 2 and arr.dtype == np.uint8
            found[rel] = arr
    return found


def test_masks_hold_class_indices_and_255_where_unlabeled(rich: Rich, tmp_path: Path) -> None:
    out = export(rich.project, "masks", tmp_path / "m", split=(1.0, 0.0)).out
    m = _masks(out)
    assert set(m) == {f"train/masks/{n}" for n in ("plain.png", "sub dir/ünïcode näme.png",
                                                   "holes.png", "rotated.png", "deep16.png",
                                                   "empty.png")}
    holes = rich.masks["holes"]
    assert np.array_equal(m["train/masks/holes.png"], np.where(holes, 1, 255))   # hole: 255
    assert np.array_equal(m["train/masks/sub dir/ünïcode näme.png"],
                          np.where(rich.masks["parts"], 0, 255))
    leaf = centre_raster([[40, 5], [60, 10], [55, 40], [42, 30]], 48, 64)
    assert np.array_equal(m["train/masks/plain.png"], np.where(leaf, 1, 255))     # boxes: no
    for name in ("rotated.png", "deep16.png", "empty.png"):
        assert (m[f"train/masks/{name}"] == 255).all()
    # every mask has its image's size; the images are copied upright
    for rel, arr in m.items():
        image = next((out / "train" / "images").glob(
            Path(rel.removeprefix("train/masks/")).with_suffix("").as_posix() + ".*"))
        with Image.open(image) as im:
            assert im.size == (arr.shape[1], arr.shape[0])
    assert (out / "train/images/deep16.png").read_bytes() == \
        (rich.project.folder / "deep16.png").read_bytes()


def test_config_and_class_weights_computed_from_the_training_masks(rich: Rich,
                                                                   tmp_path: Path) -> None:
    out = export(rich.project, "masks", tmp_path / "m", split=(0.5, 0.5), seed=2).out
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["classes"] == [MOTH, LEAF]
    assert config["unlabeled_index"] == 255
    assert len(config["class_weights"]) == 2
    assert all(isinstance(w, float) for w in config["class_weights"])
    counts = np.zeros(2, np.int64)
    for p in (out / "train" / "masks").rglob("*.png"):
        arr, _ = png_array(p)
        counts += [(arr == 0).sum(), (arr == 1).sum()]
    present = counts > 0
    expected = np.where(present, counts.sum() / (present.sum() * np.maximum(counts, 1)), 0.0)
    assert config["class_weights"] == pytest.approx(expected.tolist())
    assert config["pixel_counts"]["train"] == counts.tolist()
    folders = {p.name for p in out.iterdir() if p.is_dir()}
    assert folders == {"train", "validation"}
    assert sum(config["images"].values()) == 6


def test_without_a_split_there_is_still_a_validation_set(rich: Rich, tmp_path: Path) -> None:
    out = export(rich.project, "masks", tmp_path / "m").out
    train = list((out / "train" / "masks").rglob("*.png"))
    val = list((out / "validation" / "masks").rglob("*.png"))
    assert len(train) + len(val) == 6 and len(val) >= 1 and len(train) >= len(val)


def test_boxes_and_points_are_reported_as_not_pixels(rich: Rich, tmp_path: Path) -> None:
    summary = export(rich.project, "masks", tmp_path / "m")
    reasons = {s["shape_id"]: s["reason"] for s in summary.skipped}
    for label in ("box", "rotated", "deep16"):
        assert "box does not say which pixels" in reasons[rich.shapes[label]]
    assert "point" in reasons[rich.shapes["point"]]
    assert "no class" in reasons[rich.shapes["unassigned"]]
    assert summary.shapes == 3            # the polygon and the two masks


@pytest.mark.parametrize("small_first", [True, False])
def test_smaller_shapes_win_overlaps_whatever_the_order(tmp_path: Path,
                                                        small_first: bool) -> None:
    write_rgb(tmp_path / "p" / "o.png", 30, 30)
    inner = np.zeros((30, 30), bool)
    inner[5:12, 8:20] = True
    with open_scanned(tmp_path / "p") as project:
        big, small = project.add_class("big")["id"], project.add_class("small")["id"]
        image = project.images()[0]["id"]
        shapes = [("mask", mask_geometry(inner), small),
                  ("polygon", [[0, 0], [30, 0], [30, 30], [0, 30]], big)]
        for kind, geometry, cid in shapes if small_first else shapes[::-1]:
            project.add_shape(image, kind, geometry, cid)
        out = export(project, "masks", tmp_path / "m", split=(1.0, 0.0)).out
    arr, _ = png_array(out / "train" / "masks" / "o.png")
    assert np.array_equal(arr, np.where(inner, 1, 0))


def test_more_classes_than_8_bits_hold_is_refused_before_writing(tmp_path: Path) -> None:
    classes = [ClassItem(i, f"c{i}", "#000000") for i in range(1, 257)]
    dataset = Dataset(classes, [ImageItem(1, "a.png", tmp_path / "a.png", 4, 4)])
    with pytest.raises(FormatError, match="at most 255 classes"):
        fmt_masks.export(dataset, tmp_path / "out", ExportOptions(), None)
    assert not (tmp_path / "out").exists()


def test_class_weights_function_on_known_counts() -> None:
    # 300 labeled pixels over 2 present classes: 300 / (2 * 100) and 300 / (2 * 200)
    assert fmt_masks.class_weights(np.array([100, 200, 0])) == [1.5, 0.75, 0.0]
    assert fmt_masks.class_weights(np.array([0, 0])) == [0.0, 0.0]
