"""Importers fuzzed: malformed COCO / YOLO / VOC / labelme input never crashes and never
half-imports.

Each example starts from a valid document for a small real project and breaks it (see
``fuzz_strategies.py``). Whatever the input, ``import_project`` must either

- succeed with a report whose counts are what was added, every new shape valid (finite,
  inside its image, a polygon with at least 3 points, a known class), one undo step that
  restores the project exactly; or
- raise :class:`FormatError` whose message names the file, leaving shapes, classes, image
  statuses and the undo log exactly as they were.

Any other exception is a bug. One project per test function (the store's own undo rolls each
successful import back), so an example costs one import, not a project.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from backend.formats import FormatError, import_project
from backend.geometry import rle
from backend.store import Project
from tests.formats.conftest import open_scanned, write_rgb
from tests.reliability import fuzz_strategies as fs
from tests.reliability import fuzz_text_formats as ft

ALL = ("accepted", "pending", "rejected")
# Examples per format. Measured on the shared 2-core machine: 4 x 2000 took 40 s (8-12 s per
# format; one example in five imports, and the import and its undo each commit with fsync),
# so 4 x 2500 is ~50 s. FIELDMARK_FUZZ_SCALE multiplies them for a longer local run.
EXAMPLES = 2500
SCALE = float(os.environ.get("FIELDMARK_FUZZ_SCALE", "1"))


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])


OUTCOMES: dict[str, Counter[str]] = {}


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("import-fuzz")


@pytest.fixture(scope="module")
def project(fuzz_root: Path) -> Iterator[Project]:
    """Three real images (one with its size in the store, two only on disk, two sharing a base
    name), two classes and a shape already there, so re-import and name matching are in play."""
    folder = fuzz_root / "project"
    for seed, (relpath, (w, h)) in enumerate(fs.IMAGES.items()):
        write_rgb(folder / relpath, w, h, seed)
    with open_scanned(folder) as project:
        ids = {im["relpath"]: im["id"] for im in project.images()}
        project.update_image_info(ids["a.png"], width=32, height=24)
        moth = project.add_class("moth")["id"]
        project.add_class("leaf")
        project.add_shape(ids["a.png"], "box", [8, 6, 18, 14], moth)
        yield project


def _write(src: Path, files: dict[str, bytes]) -> Path:
    """Make ``src`` hold exactly ``files``. Folders are kept between examples (empty ones do
    not matter to any importer): removing and recreating them was half the run time."""
    src.mkdir(parents=True, exist_ok=True)
    for old in [p for p in src.rglob("*") if p.is_file()]:
        if old.relative_to(src).as_posix() not in files:
            old.unlink()
    for name, data in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return src


def _undo_log(project: Project) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{project.db_path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT seq, description, undone FROM undo_log ORDER BY seq").fetchall()
    finally:
        conn.close()


def _snapshot(project: Project) -> dict[str, Any]:
    return {"classes": project.classes(), "shapes": project.all_shapes(ALL),
            "images": [(im["id"], im["status"]) for im in project.images()]}


def _inside(x: float, y: float, size: tuple[int, int]) -> bool:
    return math.isfinite(x) and math.isfinite(y) and \
        -1e-9 <= x <= size[0] + 1e-9 and -1e-9 <= y <= size[1] + 1e-9


def _check_shape(shape: dict[str, Any], size: tuple[int, int], class_ids: set[int]) -> None:
    assert shape["class_id"] is None or shape["class_id"] in class_ids, shape
    assert shape["score"] is None or math.isfinite(shape["score"]), shape
    g = shape["geometry"]
    if shape["kind"] == "box":
        assert len(g) == 4 and g[0] < g[2] and g[1] < g[3], shape
        assert _inside(g[0], g[1], size) and _inside(g[2], g[3], size), (shape, size)
    elif shape["kind"] == "point":
        assert _inside(*g, size), (shape, size)
    elif shape["kind"] == "polygon":
        assert len(g) >= 3 and all(_inside(x, y, size) for x, y in g), (shape, size)
    else:
        assert shape["kind"] == "mask", shape
        assert g["rle"]["size"] == [size[1], size[0]], (shape, size)
        assert rle.decode(g["rle"]).any(), shape
        x0, y0, x1, y1 = g["bbox"]
        assert _inside(x0, y0, size) and _inside(x1, y1, size), shape


def check_import(project: Project, fmt: str, src: Path, *, must_fail: bool = False,
                 forbidden: tuple[str, ...] = ()) -> str:
    """Import ``src`` and check the property in the module docstring; returns the outcome.
    ``forbidden``: text that must not reach a class name or the report (expanded entities)."""
    before, log = _snapshot(project), _undo_log(project)
    try:
        report = import_project(project, fmt, src)
    except FormatError as exc:
        assert str(src) in exc.message, f"the message does not name the file: {exc.message}"
        assert len(exc.message) < 1000, f"not a message for a person: {exc.message[:2000]}"
        exc.message.encode("utf-8")
        assert _snapshot(project) == before, "a failed import changed the project"
        assert _undo_log(project) == log, "a failed import left an undo step"
        if currently_in_test_context():  # --hypothesis-show-statistics: which checks are hit
            event(re.sub(r"'[^']*'|\d+", "_", exc.message.replace(str(src), ""))[:60])
        return "refused"
    except Exception:
        if _undo_log(project) != log:   # keep the shared project clean while shrinking
            project.undo()
        raise
    added = _undo_log(project) != log
    try:
        _check_report(project, report, before, log, must_fail, forbidden)
    finally:
        if added:          # roll back even when a check failed, so later examples start clean
            project.undo()
    assert _snapshot(project) == before, "undoing the import did not restore the project"
    return "imported" if added else "nothing added"


def _check_report(project: Project, report: Any, before: dict[str, Any],
                  log: list[tuple[Any, ...]], must_fail: bool,
                  forbidden: tuple[str, ...]) -> None:
    assert not must_fail, f"accepted a document it must refuse: {report}"
    after = _snapshot(project)
    text = json.dumps(report.to_dict(), ensure_ascii=False) + str(after["classes"])
    assert not [t for t in forbidden if t in text], text
    old = {s["id"]: s for s in before["shapes"]}
    assert [s for s in after["shapes"] if s["id"] in old] == before["shapes"]
    new = [s for s in after["shapes"] if s["id"] not in old]

    def plain(classes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k != "count"} for c in classes]

    assert plain(after["classes"][:len(before["classes"])]) == plain(before["classes"])
    assert [c["name"] for c in after["classes"][len(before["classes"]):]] == \
        report.classes_added
    assert report.shapes_added == len(new)
    assert report.images_matched <= len(fs.IMAGES)
    # The bridge sends the report as JSON and the CLI prints it to a UTF-8 terminal.
    json.dumps(report.to_dict(), ensure_ascii=False).encode("utf-8")
    assert all(isinstance(s.get("item"), str) and isinstance(s.get("reason"), str) and
               s["reason"] for s in report.skipped), report.skipped
    sizes = {im["id"]: fs.IMAGES[im["relpath"]] for im in project.images()}
    class_ids = {c["id"] for c in after["classes"]}
    for shape in new:
        _check_shape(shape, sizes[shape["image_id"]], class_ids)
    steps = _undo_log(project)
    if not (new or report.classes_added):
        assert steps == log, "an import that added nothing left an undo step"
    else:
        # One new step on top of the old ones (the redo stack is dropped and the store may
        # trim the oldest steps, see the report on undo.MAX_STEPS).
        old = [s for s in log if not s[2]]
        assert steps[-1][1].startswith("Import") and steps[-1][0] > log[-1][0], steps[-3:]
        assert steps[:-1] == old[len(old) - len(steps) + 1:], (log[-3:], steps[-3:])


def _record(fmt: str, outcome: str) -> None:
    OUTCOMES.setdefault(fmt, Counter())[outcome] += 1


@pytest.fixture(scope="module", autouse=True)
def _print_outcomes() -> Iterator[None]:
    yield
    for fmt, counts in sorted(OUTCOMES.items()):
        print(f"\nimport fuzz {fmt}: {sum(counts.values())} cases {dict(counts)}")


# -- the fuzz tests ---------------------------------------------------------------------------


@fuzz_settings(EXAMPLES)
@given(files=fs.coco_files(), as_file=st.booleans())
def test_coco_import_survives_malformed_files(project: Project, fuzz_root: Path,
                                              files: dict[str, bytes], as_file: bool) -> None:
    src = _write(fuzz_root / "coco", files)
    _record("coco", check_import(project, "coco", src / "annotations.json" if as_file else src))


@fuzz_settings(EXAMPLES)
@given(files=ft.yolo_files())
def test_yolo_import_survives_malformed_files(project: Project, fuzz_root: Path,
                                              files: dict[str, bytes]) -> None:
    src = _write(fuzz_root / "yolo", files)
    _record("yolo", check_import(project, "yolo", src))


def _declares_dtd(data: bytes) -> bool:
    for encoding in ("utf-8", "utf-16", "utf-32"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "<!doctype" in text.lower() or "<!entity" in text.lower():
            return True
    return False


@fuzz_settings(EXAMPLES)
@given(data=st.data())
def test_voc_import_survives_malformed_files(project: Project, fuzz_root: Path,
                                             data: Any) -> None:
    secret = fuzz_root / "secret.txt"
    secret.write_text(ft.SECRET, encoding="utf-8")
    files = data.draw(ft.voc_files(secret.as_posix()))
    src = _write(fuzz_root / "voc", files)
    dtd = any(_declares_dtd(b) for name, b in files.items() if name.endswith(".xml"))
    _record("voc", check_import(project, "voc", src, must_fail=dtd,
                                forbidden=(ft.SECRET, "lollol")))


@fuzz_settings(EXAMPLES)
@given(files=fs.labelme_files(), as_file=st.booleans())
def test_labelme_import_survives_malformed_files(project: Project, fuzz_root: Path,
                                                 files: dict[str, bytes], as_file: bool) -> None:
    src = _write(fuzz_root / "labelme", files)
    _record("labelme", check_import(project, "labelme", src / "a.json" if as_file else src))


# -- the valid documents import, so the fuzzers start from somewhere real --------------------


@pytest.mark.parametrize("fmt, files, shapes, skipped", [
    # The annotation on an image the project lacks is skipped.
    ("coco", {"annotations.json": json.dumps(fs.coco_document()).encode()}, 7, 1),
    # The circle is skipped.
    ("labelme", {"a.json": json.dumps(fs.labelme_document("a.png", (32, 24))).encode()}, 6, 1),
    # The label file of an image the project lacks is skipped.
    ("yolo", ft.valid_yolo_files(), 5, 1),
    ("voc", ft.valid_voc_files(), 5, 0),
])
def test_the_unmutated_documents_import_every_shape(project: Project, fuzz_root: Path,
                                                    fmt: str, files: dict[str, bytes],
                                                    shapes: int, skipped: int) -> None:
    before = len(project.all_shapes(ALL))
    report = import_project(project, fmt, _write(fuzz_root / f"valid-{fmt}", files))
    try:
        assert (report.shapes_added, len(report.skipped)) == (shapes, skipped), report
        assert len(project.all_shapes(ALL)) - before == shapes
    finally:
        project.undo()


def test_random_bytes_are_refused_by_every_format(project: Project, fuzz_root: Path) -> None:
    noise = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    for fmt, name in (("coco", "annotations.json"), ("labelme", "a.json"),
                      ("voc", "Annotations/a.xml"), ("yolo", "labels/a.txt")):
        assert check_import(project, fmt, _write(fuzz_root / f"noise-{fmt}", {name: noise}),
                            must_fail=True) == "refused"


# -- what the fuzzers found, pinned -----------------------------------------------------------


BILLION_LAUGHS = ft.ENTITY_PREFIXES[0] + "<annotation><filename>a.png</filename><object><name>" \
    "&lol3;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax><ymax>4</ymax></bndbox>" \
    "</object></annotation>"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("payload", ["laughs", "external", "remote dtd"])
def test_xml_with_a_dtd_is_refused_in_every_encoding(project: Project, fuzz_root: Path,
                                                     encoding: str, payload: str) -> None:
    """A byte search for "<!DOCTYPE" let a UTF-16 file through to the parser; the parser
    itself now refuses the declaration, so nothing is expanded or fetched in any encoding."""
    secret = fuzz_root / "secret.txt"
    secret.write_text(ft.SECRET, encoding="utf-8")
    text = {"laughs": BILLION_LAUGHS,
            "external": ft.ENTITY_PREFIXES[1].replace("{secret}", secret.as_posix())
            + "<annotation><filename>&xxe;</filename></annotation>",
            "remote dtd": ft.ENTITY_PREFIXES[3] + "<annotation/>"}[payload]
    src = _write(fuzz_root / f"dtd-{encoding}", {"Annotations/a.xml": text.encode(encoding)})
    with pytest.raises(FormatError, match="declares a DTD or entities"):
        import_project(project, "voc", src)
    assert check_import(project, "voc", src, must_fail=True) == "refused"


@pytest.mark.parametrize("fmt", ["coco", "labelme"])
def test_deeply_nested_json_is_a_clear_error(project: Project, fuzz_root: Path,
                                             fmt: str) -> None:
    """json.loads raised RecursionError, which no caller expected."""
    src = _write(fuzz_root / f"deep-{fmt}", {"a.json": b"[" * 100_000 + b"]" * 100_000})
    with pytest.raises(FormatError, match="nested too deeply"):
        import_project(project, fmt, src / "a.json")


def test_shapes_reaching_outside_the_image_are_cut_to_it_and_those_outside_skipped(
        project: Project, fuzz_root: Path) -> None:
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 24}],
           "categories": [{"id": 1, "name": "edge"}],
           "annotations": [
               {"id": 1, "image_id": 1, "category_id": 1, "bbox": [-4, 20, 10, 10]},
               {"id": 2, "image_id": 1, "category_id": 1, "bbox": [40, 2, 5, 5]},
               {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1e308, 1e308]},
               {"id": 4, "image_id": 1, "category_id": 1,
                "segmentation": [[20, 10, 40, 10, 20, 30]]}]}
    src = _write(fuzz_root / "edges", {"annotations.json": json.dumps(doc).encode()})
    report = import_project(project, "coco", src)
    try:
        edge = next(c["id"] for c in project.classes() if c["name"] == "edge")
        got = sorted((s["kind"], s["geometry"]) for s in project.all_shapes(ALL)
                     if s["class_id"] == edge)
        assert got == [("box", [0, 20, 6, 24]),
                       ("polygon", [[20, 24], [20, 10], [32, 10], [32, 18], [26, 24]])]
        assert sorted(s["reason"] for s in report.skipped) == [
            "a coordinate is not a pixel position (far outside any image)",
            "it lies outside the 32 x 24 image"]
    finally:
        project.undo()
