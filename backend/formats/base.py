"""What every format module shares: options, the dataset snapshot, summaries, output, import.

A format module (``coco``, ``yolo``, ``voc``, ...) is a flat set of pure converter pairs over
plain data (``dataset_to_coco(dataset, options) -> dict``, ``coco_to_annotations(data, ...)``)
plus two thin wrappers that :mod:`backend.formats` calls::

    export(dataset: Dataset, root: Path, options: ExportOptions,
           progress: Progress) -> ExportSummary
    import_(project: Project, src: Path, progress: Progress) -> ImportReport

Export: :func:`load_dataset` reads the project once into a :class:`Dataset` (the images and the
shapes to export, already filtered by status, split and — with ``resize`` — rescaled to the
output size), then ``export`` writes files under ``root``, a fresh staging folder. The caller
(:func:`backend.formats.export_project`) turns ``root`` into the final folder or ZIP atomically,
so a module writes plain files (:func:`write_json`, :func:`write_text`) and copies images with
:func:`write_image`. A module never writes outside ``root`` and never sees the final path.

Coordinates in a Dataset are the store's (ARCHITECTURE.md): pixels of the image as displayed
(EXIF applied), origin top-left, box ``[x0, y0, x1, y1]``, polygon ``[[x, y], ...]`` (one ring),
point ``[x, y]``, mask ``{"rle": {"size": [h, w], "counts": str}, "bbox": [...]}`` whose RLE
covers the whole image (``size == [height, width]``). Formats convert at their own boundary.

A shape a format cannot hold goes into ``summary.skipped`` with a reason, never silently away;
a shape written in a different form than asked (a polygon with holes written as RLE) goes into
``summary.notes``.

Import is all or nothing: parse and validate every file first (raise :class:`FormatError`
naming the file and the problem), match images with :class:`ImageMatcher`, collect
:func:`import_item` records, then :func:`commit_import` writes them in one transaction, one
undo step, creating classes by name as needed.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from backend.errors import FieldmarkError, InvalidArgument

if TYPE_CHECKING:
    from backend.store import Project

Progress = Callable[[int, int, str], None] | None
"""``progress(done, total, message)``; may raise (a job's Cancelled) to stop the work."""

SPLIT_NAMES = ("train", "val", "test")
SEGMENTATIONS = ("polygon", "rle")


class FormatError(FieldmarkError):
    """An input file is malformed or an output cannot be written; the message names the file."""

    code = "format_error"


def report(progress: Progress, done: int, total: int, message: str = "") -> None:
    if progress is not None:
        progress(done, total, message)


# -- options and results --------------------------------------------------------------------

@dataclass(frozen=True)
class ExportOptions:
    """What to export and how.

    ``split``: ``(train, val)`` or ``(train, val, test)`` fractions summing to 1; images are
    assigned by :func:`assign_splits` (seeded by ``seed``, stratified by class). ``resize``: the
    longest side of every written image becomes this many pixels (coordinates rescaled to
    match) and the output is a ZIP. ``segmentation``: ``"polygon"`` or ``"rle"`` (COCO).
    """

    include_pending: bool = False
    include_unlabeled: bool = True
    split: tuple[float, ...] | None = None
    seed: int = 0
    resize: int | None = None
    copy_images: bool = True
    segmentation: str = "polygon"

    def __post_init__(self) -> None:
        for name in ("include_pending", "include_unlabeled", "copy_images"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidArgument(f"{name} must be true or false, got "
                                      f"{getattr(self, name)!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise InvalidArgument(f"seed must be an integer, got {self.seed!r}.")
        if self.resize is not None and (isinstance(self.resize, bool)
                                        or not isinstance(self.resize, int)
                                        or not 16 <= self.resize <= 16384):
            raise InvalidArgument(f"resize must be a longest side of 16 to 16384 pixels, got "
                                  f"{self.resize!r}.")
        if self.segmentation not in SEGMENTATIONS:
            raise InvalidArgument(f"segmentation must be one of {', '.join(SEGMENTATIONS)}, "
                                  f"got {self.segmentation!r}.")
        if self.split is not None:
            object.__setattr__(self, "split", check_split(self.split))

    @property
    def statuses(self) -> tuple[str, ...]:
        """Shape statuses that are exported (rejected never are)."""
        return ("accepted", "pending") if self.include_pending else ("accepted",)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ExportOptions:
        """Options from JSON (the bridge); unknown keys are refused by name."""
        if not isinstance(values, dict):
            raise InvalidArgument(f"options must be an object, got {values!r}.")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidArgument(f"options has unknown fields {unknown}; allowed are "
                                  f"{sorted(known)}.")
        split = values.get("split")
        return cls(**{**values, "split": tuple(split) if isinstance(split, list) else split})


def check_split(split: Any) -> tuple[float, ...]:
    """``(train, val[, test])`` fractions, each in [0, 1], train > 0, summing to 1."""
    if isinstance(split, str):
        try:
            split = tuple(float(p) for p in split.split(","))
        except ValueError:
            raise InvalidArgument(f"split must be fractions like 0.8,0.1,0.1, got {split!r}."
                                  ) from None
    if (not isinstance(split, (tuple, list)) or not 2 <= len(split) <= 3
            or not all(isinstance(f, (int, float)) and not isinstance(f, bool)
                       and math.isfinite(f) and 0 <= f <= 1 for f in split)):
        raise InvalidArgument(f"split must be 2 or 3 fractions (train, val[, test]) between "
                              f"0 and 1, got {split!r}.")
    if abs(sum(split) - 1.0) > 1e-6 or split[0] <= 0:
        raise InvalidArgument(f"split fractions must add up to 1 with train above 0, got "
                              f"{list(split)} (sum {sum(split):g}).")
    return tuple(float(f) for f in split)


@dataclass
class ExportSummary:
    """What an export wrote. ``out`` is the final folder or ZIP; ``files`` the annotation and
    metadata files (relative to ``out``; image copies are counted in ``images``, not listed);
    ``skipped``: ``{"image", "shape_id", "reason"}`` for each shape (or image, shape_id None)
    the format could not hold; ``notes``: ``{"image", "shape_id", "note"}`` for shapes written in
    another form than asked."""

    format: str
    out: Path
    images: int = 0
    shapes: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)

    def skip(self, image: ImageItem | str | None, shape: dict[str, Any] | None,
             reason: str) -> None:
        name = image.relpath if isinstance(image, ImageItem) else image
        self.skipped.append({"image": name, "shape_id": shape["id"] if shape else None,
                             "reason": reason})

    def note(self, image: ImageItem, shape: dict[str, Any], note: str) -> None:
        self.notes.append({"image": image.relpath, "shape_id": shape["id"], "note": note})

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["out"] = str(self.out)
        return out


@dataclass
class ImportReport:
    """What an import added. ``classes_added``: names of the classes it created; ``skipped``:
    ``{"item", "reason"}`` for every image or annotation that was not imported."""

    format: str
    images_matched: int = 0
    shapes_added: int = 0
    classes_added: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the dataset snapshot ---------------------------------------------------------------------

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


def _mask_crop(geometry: dict[str, Any]) -> tuple[np.ndarray, int, int] | None:
    """``(crop, x0, y0)``: the mask's pixels inside its bounding box, decoding only the columns
    it touches (a small mask on a large image stays cheap); None for an empty mask."""
    from backend.geometry import rle

    h, _, counts = rle.counts_of(geometry["rle"])
    ones = np.flatnonzero((np.arange(counts.size) % 2 == 1) & (counts > 0))
    if h == 0 or ones.size == 0:
        return None
    ends = np.cumsum(counts)
    starts = ends - counts
    lo = int(starts[ones[0]]) // h * h
    hi = ((int(ends[ones[-1]]) - 1) // h + 1) * h
    clipped = np.clip(np.minimum(ends, hi) - np.maximum(starts, lo), 0, None)
    crop = np.repeat(np.arange(counts.size) % 2 == 1, clipped).reshape((h, -1), order="F")
    rows = np.flatnonzero(crop.any(axis=1))
    return crop[rows[0]:rows[-1] + 1], lo // h, int(rows[0])


# Masks are traced side by side on one canvas of about this many pixels: tracing is numpy work
# whose fixed cost per call dominates for small masks, so 10,000 masks cost ~50 calls, not
# 10,000. One empty column between neighbours keeps their parts apart.
_CANVAS_PIXELS = 1 << 21


def mask_outlines(geometries: Sequence[dict[str, Any]], tolerance: float = 0.0
                  ) -> list[list[list[np.ndarray]]]:
    """Outlines of many mask shapes: per mask, per part, ``[outer ring, *holes]`` as ``(K, 2)``
    float arrays in image pixels (pixel-corner convention, backend.geometry.masks).

    Parts come largest first, as :func:`backend.geometry.masks.mask_to_polygons` gives them
    (``min_area=0``: no part or hole is dropped, however small). With the default
    ``tolerance=0`` the rings are the exact pixel staircase, so rasterizing them (ours or
    pycocotools') gives the mask back exactly. An empty mask has no parts.
    """
    from backend.geometry.masks import mask_to_polygon_arrays

    out: list[list[list[np.ndarray]]] = [[] for _ in geometries]
    crops = [(i, c) for i, g in enumerate(geometries) if (c := _mask_crop(g)) is not None]
    # Similar heights side by side waste the least canvas.
    crops.sort(key=lambda ic: ic[1][0].shape[0])
    batch: list[tuple[int, tuple[np.ndarray, int, int]]] = []
    width = 0

    def flush() -> None:
        height = max(c[0].shape[0] for _, c in batch)
        canvas = np.zeros((height, width), dtype=bool)
        lefts = []
        x = 0
        for _, (crop, _, _) in batch:
            canvas[:crop.shape[0], x:x + crop.shape[1]] = crop
            lefts.append(x)
            x += crop.shape[1] + 1
        starts = np.array(lefts)
        for part in mask_to_polygon_arrays(canvas, tolerance=tolerance, min_area=0.0):
            k = int(np.searchsorted(starts, part[0][:, 0].min(), side="right")) - 1
            index, (_, x0, y0) = batch[k]
            shift = np.array([x0 - lefts[k], y0], dtype=np.float64)
            out[index].append([ring + shift for ring in part])

    for item in crops:
        crop = item[1][0]
        if batch and (width + crop.shape[1]) * max(crop.shape[0], 1) > _CANVAS_PIXELS:
            flush()
            batch, width = [], 0
        batch.append(item)
        width += crop.shape[1] + 1
    if batch:
        flush()
    return out


def mask_parts(geometry: dict[str, Any], tolerance: float = 0.0) -> list[list[np.ndarray]]:
    """:func:`mask_outlines` of one mask."""
    return mask_outlines([geometry], tolerance)[0]


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


# -- writing ----------------------------------------------------------------------------------

def write_text(root: Path, relpath: str, text: str) -> str:
    """Write ``root/relpath`` (UTF-8) inside the staging folder; returns ``relpath``."""
    path = root.joinpath(*PurePosixPath(relpath).parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")
    return relpath


def write_json(root: Path, relpath: str, obj: Any, indent: int | None = None) -> str:
    """UTF-8 JSON (compact unless ``indent``); NaN/inf are refused, as JSON has none."""
    try:
        text = json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False,
                          check_circular=False,   # our data is a tree; skipping is faster
                          separators=None if indent else (",", ":"))
    except ValueError as exc:
        raise FormatError(f"Could not write {relpath}: a value is not a finite number ({exc}).",
                          detail={"file": relpath}) from exc
    return write_text(root, relpath, text)


def write_image(item: ImageItem, dest: Path) -> None:
    """Write ``item``'s image to ``dest`` so that any reader sees it as displayed.

    - Same size, no EXIF rotation: the file is copied byte for byte (16-bit and multi-channel
      data stay as they are: that is the data, and cv2/PIL based trainers reduce it themselves).
    - EXIF-rotated: the pixels are rotated and re-encoded without the tag (JPEG at quality 95),
      because readers disagree on the tag (OpenCV applies it, PIL and many loaders do not) and
      the coordinates are for the displayed image.
    - Resized: the on-screen 8-bit RGB rendering, resampled, as JPEG (quality 95) for JPEG
      sources and PNG otherwise — the "ready to train" path.
    """
    from PIL import Image

    from backend.imaging import load_display, probe, read_array

    dest.parent.mkdir(parents=True, exist_ok=True)
    src = item.path
    try:
        if item.resized:
            arr = load_display(src)
            im = Image.fromarray(arr).resize((item.width, item.height),
                                            Image.Resampling.LANCZOS, reducing_gap=3.0)
            _save(im, dest)
            return
        if probe(src).orientation == 1:
            shutil.copyfile(src, dest)
            return
        arr = read_array(src)
        if src.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(dest, arr)
            return
        try:
            im = Image.fromarray(arr)
        except (TypeError, ValueError):
            im = Image.fromarray(load_display(src))
        _save(im, dest)
    except OSError as exc:
        raise FormatError(f"Could not write '{dest}' ({exc.strerror or exc}). Check the free "
                          "space and that you may write to the export folder.",
                          detail={"file": str(dest)}) from exc


def _save(im: Any, dest: Path) -> None:
    if dest.suffix.lower() in (".jpg", ".jpeg"):
        im.convert("RGB").save(dest, format="JPEG", quality=95)
    else:
        im.save(dest)


# -- import -----------------------------------------------------------------------------------

def _parts(name: str) -> list[str]:
    return [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]


class ImageMatcher:
    """Finds the project image an annotation file names: by relative path (also when the name
    has extra leading folders, "images/train/a/x.jpg" -> "a/x.jpg"), then by a unique base
    name. ``match`` returns ``(image record, "")`` or ``(None, reason)``."""

    def __init__(self, images: Iterable[dict[str, Any]]) -> None:
        self.by_relpath: dict[str, list[dict[str, Any]]] = {}
        self.by_stem: dict[str, list[dict[str, Any]]] = {}
        self.by_name: dict[str, list[dict[str, Any]]] = {}
        self.by_base_stem: dict[str, list[dict[str, Any]]] = {}
        for rec in images:
            rp = rec["relpath"]
            name = rp.rsplit("/", 1)[-1]
            self.by_relpath.setdefault(rp, []).append(rec)
            self.by_stem.setdefault(str(PurePosixPath(rp).with_suffix("")), []).append(rec)
            self.by_name.setdefault(name, []).append(rec)
            self.by_base_stem.setdefault(PurePosixPath(name).stem, []).append(rec)

    def match(self, name: str, *, stem: bool = False) -> tuple[dict[str, Any] | None, str]:
        """``stem=True``: ``name`` has no image suffix (a YOLO label path) — match without it."""
        parts = _parts(name)
        if not parts:
            return None, "empty file name"
        table = self.by_stem if stem else self.by_relpath
        # Drop leading folders one by one, but never down to the bare name: "b/x.jpg" must
        # not pick a top-level "x.jpg" when "a/x.jpg" exists too (the base-name step decides).
        for k in range(max(1, len(parts) - 1)):
            found = table.get("/".join(parts[k:]), [])
            if found:
                break
        else:
            found = (self.by_base_stem if stem else self.by_name).get(parts[-1], [])
        if len(found) == 1:
            return found[0], ""
        if found:
            return None, (f"'{name}' matches {len(found)} images in the project "
                          f"({', '.join(r['relpath'] for r in found[:3])}); rename one")
        return None, f"no image '{name}' in the project"


def import_item(image_id: int, class_name: str | None, kind: str, geometry: Any,
                **extra: Any) -> dict[str, Any]:
    """One shape to import: the store's shape fields plus the image id and a class by name."""
    return {"image_id": image_id, "class_name": class_name, "kind": kind,
            "geometry": geometry, **extra}


def _shape_key(kind: str, geometry: Any) -> tuple[Any, ...]:
    """What makes two shapes "the same" for re-import: a mask's RLE, else the coordinates to
    a thousandth of a pixel (so 3 and 3.0, or YOLO's 8-decimal fractions, compare equal)."""
    if kind == "mask":
        rle = geometry.get("rle", {}) if isinstance(geometry, dict) else {}
        return (kind, str(rle.get("size")), str(rle.get("counts")))
    flat = geometry if kind in ("box", "point") else [c for p in geometry for c in p]
    return (kind, *(round(float(v), 3) for v in flat))


def commit_import(project: Project, fmt: str, items: list[dict[str, Any]],
                  skipped: list[dict[str, Any]], images_matched: int,
                  description: str | None = None,
                  class_names: Sequence[str] = ()) -> ImportReport:
    """Write ``items`` (from :func:`import_item`) in one transaction and one undo step.

    ``class_names``: the source's class list in its order; missing ones are created in that
    order (so a round trip keeps the class order and ids), even those without shapes.

    A shape equal to one already on its image (same class, kind and geometry, see
    :func:`_shape_key`) is skipped, so importing the same file twice, or an export back into
    the project it came from, adds nothing.
    """
    image_ids = sorted({it["image_id"] for it in items})
    names = {c["id"]: c["name"] for c in project.classes()}
    existing = {(s["image_id"], names.get(s["class_id"]), _shape_key(s["kind"], s["geometry"]))
                for s in project.all_shapes(("accepted", "pending", "rejected"),
                                            image_ids=image_ids)}
    fresh = []
    relpaths: dict[int, str] = {}
    for it in items:
        key = (it["image_id"], it["class_name"], _shape_key(it["kind"], it["geometry"]))
        if key in existing:
            if not relpaths:
                relpaths = {im["id"]: im["relpath"] for im in project.images()}
            skipped.append({"item": f"{it['kind']} on {relpaths.get(it['image_id'])}",
                            "reason": "the same shape is already in the project"})
            continue
        existing.add(key)
        fresh.append(it)
    done = project.import_shapes(fresh, description or f"Import {fmt.upper()}",
                                 class_names=[n.strip() for n in class_names])
    return ImportReport(fmt, images_matched, done["shapes_added"], done["classes_added"],
                        skipped)


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file, or raise FormatError naming it and where it is broken."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise FormatError(f"Could not read the {what} '{path}' ({exc.strerror or exc}).",
                          detail={"file": str(path)}) from exc
    except UnicodeDecodeError as exc:
        raise FormatError(f"The {what} '{path}' is not UTF-8 text; is it the right file?",
                          detail={"file": str(path)}) from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise FormatError(f"The {what} '{path}' is not valid JSON ({exc}). Was it cut short "
                          "or edited by hand?", detail={"file": str(path)}) from exc
