"""COCO import: validate a COCO JSON file and turn its annotations into shapes.

A single polygon equal to its bbox rectangle becomes a box (that is how a box is written as a
COCO polygon), any other single polygon a polygon, several polygons or an RLE a mask
(rasterized at the image size), an annotation with no segmentation its bbox. Images are matched
by ``file_name`` (then by a unique base name) and must have the size COCO says. Every problem in
the file is reported with the file and the JSON path of what is wrong, before anything is
written (all or nothing).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.errors import FieldmarkError
from backend.formats.base import (
    FormatError,
    ImageMatcher,
    ImportReport,
    Progress,
    commit_import,
    image_size,
    read_json,
    report,
)
from backend.formats.importing import FAR_REASON, add_item, valid_class_name, within_reach
from backend.geometry import rle as rle_codec
from backend.geometry.masks import polygons_to_mask

if TYPE_CHECKING:
    from backend.store import Project

FORMAT = "coco"


class _Checker:
    """Validation that names the file and the JSON path of what is wrong."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> FormatError:
        return FormatError(f"The COCO file '{self.path}' is not valid: {where} {problem}.",
                           detail={"file": str(self.path), "field": where})

    def list_of(self, data: dict[str, Any], key: str) -> list[Any]:
        value = data.get(key)
        if not isinstance(value, list):
            raise self.fail(key, "must be a list")
        return value

    def number(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"must be a number, got {_short(value)}")
        try:
            number = float(value)
        except OverflowError:       # an integer with hundreds of digits
            number = math.inf
        if not math.isfinite(number):
            raise self.fail(where, f"must be a finite number, got {_short(value)}")
        return number

    def numbers(self, value: Any, where: str, n: int | None = None) -> list[float]:
        if not isinstance(value, list) or (n is not None and len(value) != n):
            raise self.fail(where, f"must be a list of {n or 'some'} numbers, got "
                                   f"{_short(value)}")
        return [self.number(v, f"{where}[{i}]") for i, v in enumerate(value)]

    def key(self, value: Any, where: str) -> int | str:
        """An id: COCO's are integers; text is let through (some tools write it)."""
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.fail(where, f"must be an integer id, got {_short(value)}")
        return value

    def size(self, value: Any, where: str) -> int | None:
        if value is None:
            return None
        number = self.number(value, where)
        if number <= 0 or number != int(number):
            raise self.fail(where, f"must be a whole number of pixels, got {_short(value)}")
        return int(number)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _rle_counts(seg: dict[str, Any], where: str, check: _Checker, width: int,
                height: int) -> None:
    """Refuse what would make the RLE decoder fail in numpy rather than with a message."""
    size = seg.get("size")
    if not isinstance(size, list) or [type(v) for v in size] != [int, int]:
        raise check.fail(f"{where}.size", f"must be [height, width], got {_short(size)}")
    if size != [height, width]:
        raise check.fail(f"{where}.size", f"is {size} but the image is [{height}, {width}] "
                                          "(height, width)")
    counts = seg.get("counts")
    if isinstance(counts, list) and not all(
            type(c) is int and 0 <= c <= height * width for c in counts):
        raise check.fail(f"{where}.counts", "must be a string or a list of pixel counts, got "
                                            f"{_short(counts)}")


def _parse_segmentation(ann: dict[str, Any], where: str, check: _Checker, width: int,
                        height: int) -> tuple[str, Any] | None:
    """(kind, geometry) for the annotation's segmentation, or None when it has none; ("far",
    None) for polygons too far outside any image to rasterize."""
    seg = ann.get("segmentation")
    if seg is None or seg == []:
        return None
    if isinstance(seg, dict):
        _rle_counts(seg, f"{where}.segmentation", check, width, height)
        try:
            mask = rle_codec.decode(seg)
        except FieldmarkError as exc:  # the codec's InvalidArgument says what is wrong
            raise check.fail(f"{where}.segmentation", f"is not a valid RLE ({exc})") from exc
        return "mask", mask
    if not isinstance(seg, list):
        raise check.fail(f"{where}.segmentation", "must be a list of polygons or an RLE")
    rings = []
    for i, poly in enumerate(seg):
        flat = check.numbers(poly, f"{where}.segmentation[{i}]")
        if len(flat) < 6 or len(flat) % 2:
            raise check.fail(f"{where}.segmentation[{i}]",
                             "must hold at least 3 points as x, y pairs")
        rings.append([[flat[k], flat[k + 1]] for k in range(0, len(flat), 2)])
    if len(rings) == 1:
        return "polygon", rings[0]
    if not within_reach(rings):
        return "far", None
    return "mask", polygons_to_mask([[r] for r in rings], height, width)


def _as_box(ring: list[list[float]]) -> list[float] | None:
    """``[x0, y0, x1, y1]`` when ``ring`` is exactly the four corners of an axis-aligned
    rectangle (how a box is written as a COCO polygon), else None."""
    if len(ring) != 4:
        return None
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
    corners = {(x0, y0), (x1, y0), (x1, y1), (x0, y1)}
    return [x0, y0, x1, y1] if x1 > x0 and y1 > y0 and \
        {(x, y) for x, y in ring} == corners else None


def coco_to_annotations(data: Any, path: Path, matcher: ImageMatcher,
                        size_of: Callable[[dict[str, Any]], tuple[int, int] | None]
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], set[int],
                                   list[str]]:
    """Validate a COCO dict (read from ``path``, named in errors) and make import items.

    ``size_of(image record)``: the project image's displayed (width, height), or None when it
    cannot be read. Returns ``(items, skipped, ids of the matched project images, category
    names in id order)``; raises FormatError on malformed input.
    """
    sizes: dict[int, tuple[int, int] | None] = {}
    check = _Checker(path)
    if not isinstance(data, dict):
        raise check.fail("the top level", "must be an object with images, annotations and "
                                          "categories")
    categories: dict[Any, str] = {}
    for i, cat in enumerate(check.list_of(data, "categories")):
        if not isinstance(cat, dict) or "id" not in cat or not isinstance(cat.get("name"), str) \
                or not cat["name"].strip():
            raise check.fail(f"categories[{i}]", "must have an id and a name")
        key = check.key(cat["id"], f"categories[{i}].id")
        if key in categories:
            raise check.fail(f"categories[{i}].id", f"{_short(key)} is used by two categories")
        try:
            categories[key] = valid_class_name(cat["name"])
        except ValueError as exc:
            raise check.fail(f"categories[{i}].name", f"cannot be a class name: {exc}") from exc
    images: dict[Any, dict[str, Any]] = {}
    skipped: list[dict[str, Any]] = []
    matched: dict[Any, dict[str, Any] | None] = {}
    unmatched: dict[Any, list[Any]] = {}      # COCO image id -> [file_name, reason, count]
    for i, img in enumerate(check.list_of(data, "images")):
        if not isinstance(img, dict) or "id" not in img or not isinstance(
                img.get("file_name"), str):
            raise check.fail(f"images[{i}]", "must have an id and a file_name")
        key = check.key(img["id"], f"images[{i}].id")
        if key in images:
            raise check.fail(f"images[{i}].id", f"{_short(key)} is used by two images")
        images[key] = img
        want = (check.size(img.get("width"), f"images[{i}].width"),
                check.size(img.get("height"), f"images[{i}].height"))
        rec, reason = matcher.match(img["file_name"])
        if rec is not None:
            if rec["id"] not in sizes:
                sizes[rec["id"]] = size_of(rec)
            size = sizes[rec["id"]]
            if size is None:
                rec, reason = None, "the project image cannot be read, so its size is unknown"
            elif None not in want and tuple(want) != size:
                rec, reason = None, (f"COCO gives its size as {want[0]} x {want[1]} but the "
                                     f"image is {size[0]} x {size[1]} as displayed (resized, "
                                     "or rotated by its EXIF orientation?)")
        if rec is None:
            unmatched[key] = [img["file_name"], reason, 0]
        matched[key] = rec
    items: list[dict[str, Any]] = []
    for i, ann in enumerate(check.list_of(data, "annotations")):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise check.fail(where, "must be an object")
        image_id, category_id = ann.get("image_id"), ann.get("category_id")
        if isinstance(image_id, bool) or not isinstance(image_id, (int, str)) or \
                image_id not in images:
            raise check.fail(f"{where}.image_id", f"{_short(image_id)} is not in images")
        if isinstance(category_id, bool) or not isinstance(category_id, (int, str)) or \
                category_id not in categories:
            raise check.fail(f"{where}.category_id", f"{_short(category_id)} is not in "
                                                     "categories")
        rec = matched[ann["image_id"]]
        bbox = ann.get("bbox")
        box = None
        if bbox is not None:
            x, y, bw, bh = check.numbers(bbox, f"{where}.bbox", 4)
            box = [x, y, x + bw, y + bh]
        if rec is None:
            unmatched[ann["image_id"]][2] += 1   # reported once per image, below
            continue
        size = sizes[rec["id"]] or (0, 0)
        width, height = size
        parsed = _parse_segmentation(ann, where, check, width, height)
        extra: dict[str, Any] = {}
        if ann.get("score") is not None:
            extra["score"] = check.number(ann["score"], f"{where}.score")
        cls = categories[ann["category_id"]]
        what = f"{images[ann['image_id']]['file_name']}: {where}"
        if parsed is None:
            if box is None:
                raise check.fail(where, "has neither a segmentation nor a bbox")
            add_item(items, skipped, what, rec["id"], size, cls, "box", box, **extra)
        elif parsed[0] == "polygon":
            ring = parsed[1]
            corners = _as_box(ring)
            kind, geometry = ("box", corners) if corners is not None else ("polygon", ring)
            add_item(items, skipped, what, rec["id"], size, cls, kind, geometry, **extra)
        elif parsed[0] == "far":
            skipped.append({"item": what, "reason": FAR_REASON})
        else:
            mask = parsed[1]
            if not mask.any():
                skipped.append({"item": what, "reason": "its mask is empty"})
                continue
            rle = rle_codec.encode(mask)
            x, y, bw, bh = rle_codec.to_bbox(rle)
            add_item(items, skipped, what, rec["id"], size, cls, "mask",
                     {"rle": rle, "bbox": [x, y, x + bw, y + bh]}, **extra)
    for file_name, reason, count in unmatched.values():
        skipped.append({"item": file_name, "reason": f"{reason} ({count} annotation"
                                                     f"{'' if count == 1 else 's'} not imported)"})
    order = list(dict.fromkeys(categories[k] for k in sorted(
        categories, key=lambda k: (not isinstance(k, int), k if isinstance(k, int) else 0))))
    return items, skipped, {r["id"] for r in matched.values() if r is not None}, order


def _annotation_files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    if (src / "annotations.json").is_file():
        return [src / "annotations.json"]
    found = sorted((src / "annotations").glob("*.json")) if (src / "annotations").is_dir() \
        else sorted(src.glob("*.json"))
    if not found:
        raise FormatError(f"No COCO annotation file in '{src}': expected annotations.json, "
                          "annotations/*.json or a .json file.", detail={"file": str(src)})
    return found


def import_coco(project: Project, src: Path, progress: Progress = None) -> ImportReport:
    """Import ``src``: a COCO .json file, or a folder with ``annotations.json`` or
    ``annotations/*.json`` (every split)."""
    files = _annotation_files(src)
    matcher = ImageMatcher(project.images())
    items: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    matched: set[int] = set()
    names: list[str] = []
    for n, path in enumerate(files):
        report(progress, n, len(files), f"Reading {path.name}")
        got, skips, ids, cats = coco_to_annotations(read_json(path, "COCO file"), path,
                                                    matcher, lambda r: image_size(project, r))
        items += got
        skipped += skips
        matched |= ids
        names += cats
    report(progress, len(files), len(files), "Saving")
    return commit_import(project, FORMAT, items, skipped, len(matched),
                         class_names=list(dict.fromkeys(names)))
