"""The shared export/import framework: options, splits, the snapshot, output, store methods."""

from __future__ import annotations

import types
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import backend.formats as formats
from backend.errors import FieldmarkError, InvalidArgument
from backend.formats import ExportOptions, export_project, load_dataset
from backend.formats.base import (
    ExportSummary,
    ImageItem,
    ImageMatcher,
    assign_splits,
    write_image,
    write_text,
)
from backend.imaging import read_array
from tests.formats.conftest import Rich, open_scanned, write_exif_jpeg, write_rgb


@pytest.mark.parametrize("kwargs,field", [
    ({"split": (0.5, 0.6)}, "split"), ({"split": (0.0, 1.0)}, "split"),
    ({"split": (1.0,)}, "split"), ({"split": "a,b"}, "split"), ({"resize": 0}, "resize"),
    ({"resize": True}, "resize"), ({"segmentation": "mask"}, "segmentation"),
    ({"seed": 1.5}, "seed"), ({"copy_images": "yes"}, "copy_images"),
])
def test_bad_options_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        ExportOptions(**kwargs)


def test_options_from_json() -> None:
    opts = ExportOptions.from_dict({"split": [0.8, 0.2], "resize": 640})
    assert opts.split == (0.8, 0.2) and opts.resize == 640
    assert ExportOptions(split="0.7,0.2,0.1").split == (0.7, 0.2, 0.1)
    with pytest.raises(InvalidArgument, match="unknown fields"):
        ExportOptions.from_dict({"spilt": [0.8, 0.2]})


def _items(classes_per_image: list[list[int]]) -> list[ImageItem]:
    return [ImageItem(i + 1, f"img{i:03d}.png", Path("x"), 10, 10,
                      [{"id": 0, "class_id": c} for c in cls])
            for i, cls in enumerate(classes_per_image)]


def test_split_is_reproducible_sized_and_seed_dependent() -> None:
    images = _items([[i % 3] for i in range(100)])
    a = assign_splits(images, (0.8, 0.1, 0.1), seed=1)
    assert a == assign_splits(list(reversed(images)), (0.8, 0.1, 0.1), seed=1)
    assert Counter(a.values()) == {"train": 80, "val": 10, "test": 10}
    assert a != assign_splits(images, (0.8, 0.1, 0.1), seed=2)


def test_split_is_stratified_so_a_rare_class_reaches_every_split() -> None:
    # 90 images of class 0, 10 of the rare class 1 (which also carry class 0)
    images = _items([[0]] * 90 + [[0, 1]] * 10)
    for seed in range(5):
        names = assign_splits(images, (0.8, 0.1, 0.1), seed)
        rare = Counter(names[im.id] for im in images if len(im.shapes) == 2)
        assert rare == {"train": 8, "val": 1, "test": 1}


def test_load_dataset_filters_statuses_and_unlabeled(rich: Rich) -> None:
    def ids(ds: Any) -> set[int]:
        return {s["id"] for im in ds.images for s in im.shapes}

    accepted = load_dataset(rich.project, ExportOptions())
    assert rich.shapes["pending"] not in ids(accepted)
    assert rich.shapes["rejected"] not in ids(accepted)
    pending = load_dataset(rich.project, ExportOptions(include_pending=True))
    assert rich.shapes["pending"] in ids(pending) and rich.shapes["rejected"] not in ids(pending)
    assert "empty.png" in {im.relpath for im in accepted.images}
    labeled = load_dataset(rich.project, ExportOptions(include_unlabeled=False))
    assert "empty.png" not in {im.relpath for im in labeled.images}
    rotated = next(im for im in accepted.images if im.relpath == "rotated.jpg")
    assert (rotated.width, rotated.height) == (24, 40)      # probed, EXIF applied


def test_unreadable_image_is_reported_not_fatal(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    write_rgb(folder / "ok.png", 10, 10)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with open_scanned(folder) as project:
        ds = load_dataset(project, ExportOptions())
    assert [im.relpath for im in ds.images] == ["ok.png"]
    assert ds.skipped[0]["image"] == "broken.png" and "cannot be read" in ds.skipped[0]["reason"]


def test_image_matcher() -> None:
    recs = [{"id": i, "relpath": rp} for i, rp in enumerate(
        ["a/x.jpg", "b/x.jpg", "c/y.png", "z.png", "z.jpg", "top.png"])]
    m = ImageMatcher(recs)
    assert m.match("a/x.jpg")[0]["id"] == 0
    assert m.match("images/train/b/x.jpg")[0]["id"] == 1
    assert m.match("elsewhere\\y.png")[0]["id"] == 2          # unique base name
    record, reason = m.match("x.jpg")
    assert record is None and "matches 2 images" in reason
    assert m.match("d/top.png")[0]["id"] == 5
    assert m.match("labels/train/c/y", stem=True)[0]["id"] == 2
    assert m.match("z", stem=True)[0] is None
    assert "no image" in m.match("nope.png")[1]


@pytest.mark.parametrize("orientation", [2, 3, 5, 6, 7, 8])
def test_write_image_applies_exif_orientation(tmp_path: Path, orientation: int) -> None:
    src = write_exif_jpeg(tmp_path / "in.jpg", 30, 18, orientation)
    shown = read_array(src)
    item = ImageItem(1, "in.jpg", src, shown.shape[1], shown.shape[0])
    write_image(item, tmp_path / "out.jpg")
    with Image.open(tmp_path / "out.jpg") as im:
        assert im.getexif().get(0x0112, 1) == 1
        raw = np.asarray(im, dtype=float)
    assert raw.shape == shown.shape
    assert np.abs(raw - shown).mean() < 4                  # JPEG re-encode at quality 95


def _fake_format(fail: bool) -> types.SimpleNamespace:
    def export(dataset: Any, root: Path, options: Any, progress: Any) -> ExportSummary:
        write_text(root, "labels.txt", "\n".join(im.relpath for im in dataset.images))
        if fail:
            raise FieldmarkError("the disk is full (simulated)")
        return ExportSummary("fake", root, images=len(dataset.images), files=["labels.txt"])

    return types.SimpleNamespace(export=export)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "fake_fmt", types.SimpleNamespace(
        OK=_fake_format(False), BAD=_fake_format(True)))
    monkeypatch.setitem(formats.FORMATS, "fake", "fake_fmt:OK")
    monkeypatch.setitem(formats.FORMATS, "failing", "fake_fmt:BAD")
    monkeypatch.setitem(formats.FORMATS, "missing", "backend.formats.no_such_module")


def test_existing_output_is_refused_unless_overwrite(rich: Rich, tmp_path: Path,
                                                     fake: None) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FieldmarkError, match="already exists"):
        export_project(rich.project, "fake", out)
    assert (out / "keep.txt").read_text() == "mine"
    summary = export_project(rich.project, "fake", out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["labels.txt"]
    assert summary.out == out.resolve()


def test_failed_export_leaves_nothing_behind(rich: Rich, tmp_path: Path, fake: None) -> None:
    with pytest.raises(FieldmarkError, match="simulated"):
        export_project(rich.project, "failing", tmp_path / "out")
    assert list(tmp_path.iterdir()) == [rich.project.folder]
    old = tmp_path / "old"
    old.mkdir()
    (old / "a.txt").write_text("previous export")
    with pytest.raises(FieldmarkError):
        export_project(rich.project, "failing", old, overwrite=True)
    assert (old / "a.txt").read_text() == "previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old", rich.project.folder.name]


def test_zip_output_and_location_rules(rich: Rich, tmp_path: Path, fake: None) -> None:
    import zipfile

    summary = export_project(rich.project, "fake", tmp_path / "d.zip")
    with zipfile.ZipFile(summary.out) as zf:
        assert zf.namelist() == ["labels.txt"]
    with pytest.raises(FieldmarkError, match="inside the project folder"):
        export_project(rich.project, "fake", rich.project.folder / "export")
    # labels only, or a hidden folder, inside the project are fine (the scan skips them)
    export_project(rich.project, "fake", rich.project.folder / "labels",
                   ExportOptions(copy_images=False))
    export_project(rich.project, "fake", rich.project.folder / ".exports" / "a")
    with pytest.raises(FieldmarkError, match="holds the project"):
        export_project(rich.project, "fake", rich.project.folder.parent, overwrite=True)


def test_unknown_and_unavailable_formats(rich: Rich, tmp_path: Path, fake: None) -> None:
    with pytest.raises(InvalidArgument, match="Unknown format 'pdf'"):
        export_project(rich.project, "pdf", tmp_path / "o")
    with pytest.raises(FieldmarkError, match="not available") as info:
        export_project(rich.project, "missing", tmp_path / "o")
    assert info.value.code == "format_unavailable"
    with pytest.raises(FieldmarkError, match="can export fake but not import"):
        formats.import_project(rich.project, "fake", tmp_path)
    described = {d["name"]: d for d in formats.describe_formats()}
    assert {k: described["coco"][k] for k in ("name", "label", "available", "can_import")} == {
        "name": "coco", "label": formats.LABELS["coco"], "available": True, "can_import": True}
    assert described["missing"]["available"] is False
    assert described["fake"]["can_import"] is False and described["fake"]["import_source"] is None


# -- the store methods this package added ------------------------------------------------------

def test_all_shapes_matches_per_image_reads(rich: Rich) -> None:
    p = rich.project
    every = p.all_shapes(("accepted", "pending", "rejected"))
    per_image = [s for im in p.images() for s in p.shapes(im["id"],
                                                          ("accepted", "pending", "rejected"))]
    assert sorted(every, key=lambda s: s["id"]) == sorted(per_image, key=lambda s: s["id"])
    assert {s["status"] for s in p.all_shapes("accepted")} == {"accepted"}
    one = rich.images["plain.png"]
    assert {s["image_id"] for s in p.all_shapes(image_ids=[one])} == {one}


def test_import_shapes_is_all_or_nothing(rich: Rich) -> None:
    p = rich.project
    before = (p.all_shapes(), p.classes(), p.undo_state())
    image = rich.images["empty.png"]
    good = {"image_id": image, "class_name": "new class", "kind": "box",
            "geometry": [1, 1, 5, 5]}
    for bad in ({**good, "kind": "blob"}, {**good, "image_id": 99999},
                {**good, "class_name": " "}, {**good, "geometry": [[1, 2]]}):
        with pytest.raises(FieldmarkError):
            p.import_shapes([good, bad])
        assert (p.all_shapes(), p.classes(), p.undo_state()) == before
    done = p.import_shapes([good, {**good, "class_name": None, "status": "pending"}],
                           "Import test", class_names=["zeta", "new class"])
    assert done == {"shapes_added": 2, "classes_added": ["zeta", "new class"]}
    assert [c["name"] for c in p.classes()][-2:] == ["zeta", "new class"]
    assert p.image(image)["status"] == "in_progress"
    assert p.undo()["description"] == "Import test (2 shapes)"
    assert (p.all_shapes(), p.classes()) == before[:2]


@pytest.mark.parametrize("canvas", [1 << 21, 200])      # one canvas, or one per few masks
def test_mask_outlines_match_tracing_each_mask_alone(monkeypatch: pytest.MonkeyPatch,
                                                    canvas: int) -> None:
    from backend.formats import base, outlines
    from backend.geometry import rle
    from backend.geometry.masks import mask_to_polygons

    monkeypatch.setattr(outlines, "_CANVAS_PIXELS", canvas)
    rng = np.random.default_rng(7)
    masks = []
    for k in range(40):
        m = np.zeros((int(rng.integers(5, 50)), int(rng.integers(5, 60))), bool)
        for _ in range(int(rng.integers(0, 4))):
            y, x = rng.integers(0, m.shape[0]), rng.integers(0, m.shape[1])
            m[y:y + rng.integers(1, 20), x:x + rng.integers(1, 20)] ^= True
        if k % 9 == 0:
            m[:, -1] = True           # touching the right edge: must not join a neighbour
        masks.append(m)
    got = base.mask_outlines([{"rle": rle.encode(m)} for m in masks])
    for m, parts in zip(masks, got, strict=True):
        assert [[r.tolist() for r in p] for p in parts] == mask_to_polygons(m, 0, 0)


def test_a_mask_that_does_not_fit_its_image_is_reported(tmp_path: Path) -> None:
    from tests.formats.conftest import mask_geometry

    folder = tmp_path / "p"
    write_rgb(folder / "a.png", 20, 10)
    with open_scanned(folder) as project:
        image = project.images()[0]["id"]
        cid = project.add_class("c")["id"]
        wrong = project.add_shape(image, "mask", mask_geometry(np.ones((5, 5), bool)), cid)
        right = project.add_shape(image, "mask", mask_geometry(np.ones((10, 20), bool)), cid)
        ds = load_dataset(project, ExportOptions())
    assert [s["id"] for s in ds.images[0].shapes] == [right["id"]]
    assert ds.skipped[0]["shape_id"] == wrong["id"] and "[5, 5]" in ds.skipped[0]["reason"]


def test_a_missing_image_file_is_reported_when_images_are_copied(rich: Rich,
                                                                 tmp_path: Path) -> None:
    rich.project.update_image_info(rich.images["holes.png"], width=60, height=60)  # probed
    (rich.project.folder / "holes.png").unlink()
    rich.project.scan([".png", ".jpg"])
    summary = export_project(rich.project, "coco", tmp_path / "o")
    (skip,) = [s for s in summary.skipped if s["image"] == "holes.png"]
    assert "missing" in skip["reason"] and "1 shapes" in skip["reason"]
    assert summary.images == 5
    # without copies the labels still go out: the app probed the size before
    labels_only = export_project(rich.project, "coco", tmp_path / "p",
                                 ExportOptions(copy_images=False))
    assert labels_only.images == 6
