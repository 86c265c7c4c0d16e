"""Test projects for the format tests, built with the real store in ``tmp_path``.

``rich_project`` holds every edge case the exports must handle: unicode and spaces in file and
class names, a sub-folder, an EXIF-rotated JPEG, a 16-bit PNG, an image without shapes, and shapes
of every kind and status (box, polygon, point, masks with several parts and with a hole, a pending
proposal, a rejected shape, a shape without a class).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from backend.geometry import rle
from backend.imaging import SUPPORTED_EXTENSIONS
from backend.store import Project

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def write_rgb(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A decodable RGB image with structure, in the format of the suffix."""
    yy, xx = np.mgrid[0:height, 0:width]
    tint = np.random.default_rng(seed).integers(0, 255, 3)
    rgb = np.stack([(xx * 7 + tint[0]) % 256, (yy * 5 + tint[1]) % 256,
                    (xx + yy + tint[2]) % 256], axis=-1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=95) if path.suffix.lower() in (".jpg", ".jpeg") \
        else Image.fromarray(rgb).save(path)
    return path


def write_exif_jpeg(path: Path, stored_w: int, stored_h: int, orientation: int) -> Path:
    """A JPEG stored ``stored_w x stored_h`` with an EXIF orientation tag; its left third is
    bright in the stored pixels, so orientation mistakes show up in pixel checks."""
    arr = np.full((stored_h, stored_w, 3), 30, np.uint8)
    arr[:, : stored_w // 3] = 220
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, quality=95, exif=exif.tobytes())
    return path


def write_png16(path: Path, width: int, height: int) -> Path:
    arr = (np.arange(width * height, dtype=np.uint32).reshape(height, width) * 97 % 65536
           ).astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def mask_geometry(mask: np.ndarray) -> dict[str, Any]:
    """The store's mask geometry for a full-image bool mask."""
    enc = rle.encode(mask)
    x, y, w, h = rle.to_bbox(enc)
    return {"rle": enc, "bbox": [x, y, x + w, y + h]}


def open_scanned(folder: Path) -> Project:
    project = Project.open(folder)
    project.scan(SUPPORTED_EXTENSIONS)
    return project


@dataclass
class Rich:
    project: Project
    classes: dict[str, int]
    images: dict[str, int]                           # relpath -> image id
    shapes: dict[str, int] = field(default_factory=dict)   # label -> shape id
    masks: dict[str, np.ndarray] = field(default_factory=dict)


MOTH = "moth ü"
LEAF = "leaf litter"


def two_parts_mask() -> np.ndarray:
    m = np.zeros((40, 50), bool)
    m[4:14, 5:20] = True
    m[25:36, 30:46] = True
    m[38, 2] = True          # a one-pixel part: it must survive too
    return m


def holed_mask() -> np.ndarray:
    m = np.zeros((60, 60), bool)
    m[10:40, 10:45] = True
    m[18:28, 20:30] = False  # the hole
    m[48:55, 5:12] = True    # a second part
    return m


def build_rich(folder: Path) -> Rich:
    folder.mkdir(parents=True, exist_ok=True)
    write_rgb(folder / "plain.png", 64, 48, 1)
    write_rgb(folder / "sub dir" / "ünïcode näme.png", 50, 40, 2)
    write_rgb(folder / "holes.png", 60, 60, 3)
    write_exif_jpeg(folder / "rotated.jpg", 40, 24, 6)   # displayed 24 x 40
    write_png16(folder / "deep16.png", 30, 20)
    write_rgb(folder / "empty.png", 32, 32, 4)
    project = open_scanned(folder)
    classes = {name: project.add_class(name)["id"] for name in (MOTH, LEAF)}
    images = {im["relpath"]: im["id"] for im in project.images()}
    rich = Rich(project, classes, images)
    moth, leaf = classes[MOTH], classes[LEAF]

    def add(label: str, relpath: str, kind: str, geometry: Any, class_id: int | None,
            **kw: Any) -> None:
        rich.shapes[label] = project.add_shape(images[relpath], kind, geometry, class_id,
                                               **kw)["id"]

    add("box", "plain.png", "box", [4.5, 6.25, 30.0, 20.0], moth)
    add("polygon", "plain.png", "polygon", [[40, 5], [60, 10], [55, 40], [42, 30]], leaf)
    add("point", "plain.png", "point", [10.0, 40.0], moth)
    add("pending", "plain.png", "box", [2, 30, 20, 46], moth, score=0.75,
        source="owlv2-base@1.0", status="pending")
    add("rejected", "plain.png", "box", [1, 1, 5, 5], moth, status="rejected")
    add("unassigned", "plain.png", "polygon", [[1, 1], [8, 1], [4, 8]], None)
    rich.masks["parts"] = two_parts_mask()
    add("parts", "sub dir/ünïcode näme.png", "mask", mask_geometry(rich.masks["parts"]), moth)
    rich.masks["holes"] = holed_mask()
    add("holes", "holes.png", "mask", mask_geometry(rich.masks["holes"]), leaf)
    add("rotated", "rotated.jpg", "box", [2, 3, 12, 30], moth)     # displayed coordinates
    add("deep16", "deep16.png", "box", [3, 4, 25, 15], leaf)
    return rich


def copy_images(src: Path, dest: Path) -> Path:
    """The image files of a project folder (not its .fieldmark) in a fresh folder."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".fieldmark"))
    return dest


@pytest.fixture
def rich(tmp_path: Path) -> Iterator[Rich]:
    r = build_rich(tmp_path / "proj ü")
    try:
        yield r
    finally:
        r.project.close()


@pytest.fixture
def fresh_copy(tmp_path: Path) -> Iterator[Callable[[Path], Project]]:
    """``fresh_copy(project_folder)``: a new, label-free project with the same image files."""
    opened: list[Project] = []

    def make(folder: Path) -> Project:
        dest = tmp_path / f"copy {len(opened)}"
        copy_images(folder, dest)
        opened.append(open_scanned(dest))
        return opened[-1]

    try:
        yield make
    finally:
        for p in opened:
            p.close()
