"""The dataset snapshot an export works from: classes, images and their shapes, already
filtered by status, split and (with ``resize``) rescaled to the output size.

Coordinates are the store's (ARCHITECTURE.md): displayed-image pixels, EXIF applied, origin
top-left; a mask's RLE covers the whole image (``size == [height, width]``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from backend.errors import FieldmarkError
from backend.formats.options import (
    SPLIT_NAMES,
    ExportOptions,
    Progress,
    check_split,
    report,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from backend.store import Project


@dataclass(frozen=True)
class ClassItem:
    id: int
    name: str
    color: str


@dataclass
class ImageItem:
    """One image to export. ``width``/``height`` and the shapes' coordinates are those of the
    image as written (after ``resize``); ``source_size`` is the displayed size in the project.
    ``file_name``: where the image goes below the export's images folder ("/"-separated; the
    relpath, with a new suffix when ``resize`` re-encodes it as PNG). ``path``: the project file.
    """

    id: int
    relpath: str
    path: Path
    width: int
    height: int
    shapes: list[dict[str, Any]] = field(default_factory=list)
    split: str | None = None
    file_name: str = ""
    source_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not self.file_name:
            self.file_name = self.relpath
        if self.source_size is None:
            self.source_size = (self.width, self.height)

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]

    @property
    def resized(self) -> bool:
        return self.source_size != (self.width, self.height)


@dataclass
class Dataset:
    """A read-only snapshot: classes in project order, images in natural path order.
    ``skipped`` holds what :func:`load_dataset` already had to leave out (same shape as
    ``ExportSummary.skipped``)."""

    classes: list[ClassItem]
    images: list[ImageItem]
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def class_index(self) -> dict[int, int]:
        """class id -> 0-based position (YOLO ids; COCO category id = position + 1)."""
        return {c.id: i for i, c in enumerate(self.classes)}

    def splits(self) -> list[str | None]:
        """Split names in use, in SPLIT_NAMES order ([None] without a split)."""
        used = {im.split for im in self.images}
        if used <= {None}:
            return [None]
        return [s for s in SPLIT_NAMES if s in used]


def load_dataset(project: Project, options: ExportOptions | None = None,
                 progress: Progress = None) -> Dataset:
    """Snapshot ``project`` for export: one query for the images, one for the shapes.

    Images whose size the store does not know yet are probed (header only); one that cannot be
    read is left out and reported in ``skipped``, as is a missing file when images are copied
    and a mask whose RLE is not the image's size. With ``include_unlabeled=False`` images with no
    exported shape are left out. Splits are assigned, then ``resize`` rescales everything.
    """
    from backend.imaging import probe
    from backend.store.images import MISSING
    from backend.store.relpaths import check_relpath

    options = options or ExportOptions()
    classes = [ClassItem(c["id"], c["name"], c["color"]) for c in project.classes()]
    records = project.images()
    by_image: dict[int, list[dict[str, Any]]] = {}
    for shape in project.all_shapes(options.statuses):
        by_image.setdefault(shape["image_id"], []).append(shape)
    images: list[ImageItem] = []
    skipped: list[dict[str, Any]] = []
    folder = Path(project.folder)
    for n, rec in enumerate(records):
        shapes = by_image.get(rec["id"], [])
        if not shapes and not options.include_unlabeled:
            continue
        if rec["error"] == MISSING and options.copy_images:
            skipped.append({"image": rec["relpath"], "shape_id": None,
                            "reason": f"the image file is missing, so it cannot be copied "
                                      f"(with its {len(shapes)} shapes); put it back or "
                                      "export without images"})
            continue
        # check_relpath: the database may come from elsewhere; never read outside the folder.
        path = folder / check_relpath(rec["relpath"])
        width, height = rec["width"], rec["height"]
        if not width or not height:
            report(progress, n, len(records), f"Reading the size of {rec['relpath']}")
            try:
                info = probe(path)
            except FieldmarkError as exc:
                skipped.append({"image": rec["relpath"], "shape_id": None,
                                "reason": f"the image cannot be read, so its size is unknown "
                                          f"({exc.message})"})
                continue
            width, height = info.width, info.height
        images.append(ImageItem(rec["id"], rec["relpath"], path, width, height,
                                _fitting_masks(shapes, rec["relpath"], width, height, skipped)))
    if options.split:
        names = assign_splits(images, options.split, options.seed)
        for im in images:
            im.split = names[im.id]
    if options.resize:
        _rescale_all(images, options.resize)
    return Dataset(classes, images, skipped)


def _fitting_masks(shapes: list[dict[str, Any]], relpath: str, width: int, height: int,
                   skipped: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``shapes`` without masks whose RLE is not image-sized (each reported): every format
    then relies on ``rle.size == [height, width]``."""
    out = []
    for s in shapes:
        size = s["geometry"].get("rle", {}).get("size") if s["kind"] == "mask" else None
        if size is not None and list(size) != [height, width]:
            skipped.append({"image": relpath, "shape_id": s["id"],
                            "reason": f"its mask is {size} pixels (height, width) but the "
                                      f"image is [{height}, {width}]; the file may have "
                                      "changed since the mask was made"})
            continue
        out.append(s)
    return out


# -- splits -----------------------------------------------------------------------------------

def assign_splits(images: Sequence[ImageItem], fractions: Sequence[float],
                  seed: int = 0) -> dict[int, str]:
    """image id -> "train" | "val" | "test", reproducible for the same relpaths, classes and
    seed (also in another project with the same images).

    Stratified by class where possible: images are grouped by their rarest class (unlabeled
    images last), shuffled within each group by ``seed``, and dealt out in that order to the
    split furthest below its share so far. So every group is spread over the splits in
    proportion, and the split sizes match the fractions to within one image.
    """
    fractions = check_split(tuple(fractions))
    def classes_of(im: ImageItem) -> set[int]:
        return {s["class_id"] for s in im.shapes if s["class_id"] is not None}

    frequency: dict[Any, int] = {}
    for im in images:
        for cid in classes_of(im):
            frequency[cid] = frequency.get(cid, 0) + 1

    def stratum(im: ImageItem) -> tuple[int, str]:
        cids = classes_of(im)
        if not cids:
            return (1 << 62, "")
        rarest = min(cids, key=lambda c: (frequency[c], repr(c)))
        return (frequency[rarest], repr(rarest))

    rng = random.Random(seed)
    groups: dict[tuple[int, str], list[int]] = {}
    for im in sorted(images, key=lambda im: im.relpath):   # not ids: they differ by project
        groups.setdefault(stratum(im), []).append(im.id)
    order: list[int] = []
    for key in sorted(groups):
        ids = groups[key]
        rng.shuffle(ids)
        order += ids
    counts = [0] * len(fractions)
    out: dict[int, str] = {}
    for n, image_id in enumerate(order, start=1):
        k = max(range(len(fractions)), key=lambda i: (fractions[i] * n - counts[i], -i))
        counts[k] += 1
        out[image_id] = SPLIT_NAMES[k]
    return out


# -- resize -----------------------------------------------------------------------------------

def resized_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """Size with the longest side ``longest`` (images smaller than that are enlarged too)."""
    s = longest / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def _rescale_all(images: list[ImageItem], longest: int) -> None:
    relpaths = {im.relpath for im in images}
    names: set[str] = set()
    for im in images:
        w, h = resized_size(im.width, im.height, longest)
        sx, sy = w / im.width, h / im.height
        im.shapes = [rescale_shape(s, sx, sy, w, h) for s in im.shapes]
        im.width, im.height = w, h
        # Re-encoded as JPEG (JPEG sources) or PNG (everything else): the suffix must say so.
        name = im.relpath
        if PurePosixPath(name).suffix.lower() not in (".jpg", ".jpeg", ".png"):
            name = str(PurePosixPath(name).with_suffix(".png"))
            if name in relpaths or name in names:   # "a.tif" next to "a.png"
                name = im.relpath + ".png"
        names.add(name)
        im.file_name = name


def rescale_shape(shape: dict[str, Any], sx: float, sy: float, width: int,
                  height: int) -> dict[str, Any]:
    """A copy of ``shape`` with coordinates scaled by (sx, sy); a mask is resampled to
    ``height x width`` (area-weighted, so thin parts survive as well as they can)."""
    g = shape["geometry"]
    kind = shape["kind"]
    if kind == "box":
        geo: Any = [g[0] * sx, g[1] * sy, g[2] * sx, g[3] * sy]
    elif kind == "point":
        geo = [g[0] * sx, g[1] * sy]
    elif kind == "polygon":
        geo = [[x * sx, y * sy] for x, y in g]
    else:
        from PIL import Image

        from backend.geometry import rle

        mask = rle.decode(g["rle"]).astype(np.uint8) * 255
        small = np.asarray(Image.fromarray(mask).resize((width, height), Image.Resampling.BOX))
        new = rle.encode(small >= 128)
        x, y, w, h = rle.to_bbox(new)
        geo = {**g, "rle": new, "bbox": [x, y, x + w, y + h]}
    return {**shape, "geometry": geo}


def image_size(project: Project, record: dict[str, Any]) -> tuple[int, int] | None:
    """Displayed ``(width, height)`` of a project image: from the store, else probed from the
    file (None if it cannot be read)."""
    from backend.imaging import probe

    if record.get("width") and record.get("height"):
        return int(record["width"]), int(record["height"])
    try:
        info = probe(project.image_path(record["id"]))
    except FieldmarkError:
        return None
    return info.width, info.height
