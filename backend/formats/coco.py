"""COCO object detection / instance segmentation JSON.

Export (``dataset_to_coco``), per shape kind:

- box: ``bbox [x, y, w, h]``, ``area = w * h``, ``segmentation`` the box as a 4-corner polygon
  (so pycocotools can decode every annotation).
- polygon: one polygon; ``area`` is its exact (shoelace) area, ``bbox`` around its vertices.
- mask: ``area`` is the mask's pixel count and ``bbox`` its pixel extent (as pycocotools
  computes them). ``segmentation="polygon"``: one exact pixel-outline polygon per part (every
  part kept, however small); COCO polygons cannot hold holes, so a mask with holes is written
  as RLE and listed in ``summary.notes``. ``segmentation="rle"``: compressed RLE for every shape
  (boxes and polygons are rasterized, pixel centers inside; ``area`` and ``bbox`` are then those
  of the rasterized mask, so they agree with what a reader decodes).
- point: COCO has no point annotation (only keypoints of a declared skeleton), so points are
  reported in ``summary.skipped``. So are shapes without a class and shapes with no area.

``iscrowd`` is always 0 (a crowd annotation is ignored by COCO evaluation and by most trainers).
Ids are stable: image id = the project's image id, annotation id = the shape id, category id =
1 + the class's position in the project's class order. A shape's ``score`` is kept when it has
one. Coordinates are displayed-image pixels with the pixel-corner convention, as COCO's.

Import (``coco_to_annotations``): a single polygon equal to its bbox rectangle becomes a box, any
other single polygon a polygon, several polygons or an RLE a mask (rasterized at the image
size), an annotation with no segmentation its bbox. Images are matched by ``file_name``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import mul
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from backend.errors import FieldmarkError
from backend.formats.base import (
    SPLIT_NAMES,
    Dataset,
    ExportOptions,
    ExportSummary,
    FormatError,
    ImageItem,
    ImageMatcher,
    ImportReport,
    Progress,
    commit_import,
    image_size,
    import_item,
    mask_outlines,
    mask_parts,
    read_json,
    report,
    write_image,
    write_json,
)
from backend.geometry import rle as rle_codec
from backend.geometry.masks import polygons_to_mask

if TYPE_CHECKING:
    from backend.store import Project

FORMAT = "coco"


# -- export -----------------------------------------------------------------------------------

def _polygon_stats(ring: list[list[float]]) -> tuple[list[float], list[float], float]:
    """(flat [x, y, ...], bbox [x, y, w, h], shoelace area) of one ring, in plain Python
    (faster than numpy for the dozen vertices of a typical polygon)."""
    xs = [p[0] for p in ring]
    ys = [p[1] for p in ring]
    twice = sum(map(mul, xs, ys[1:] + ys[:1])) - sum(map(mul, xs[1:] + xs[:1], ys))
    x0, y0 = min(xs), min(ys)
    return ([c for p in ring for c in p], [x0, y0, max(xs) - x0, max(ys) - y0],
            abs(twice) / 2)


def _numbers(ring: np.ndarray) -> list[float] | list[int]:
    """A traced ring as a flat list: whole pixel corners as ints (shorter JSON, and written
    faster than floats), anything else as floats."""
    flat = ring.ravel()
    as_int = flat.astype(np.int64)
    return as_int.tolist() if np.array_equal(as_int, flat) else flat.tolist()


def _outline_stats(parts: list[list[np.ndarray]]) -> tuple[list[float], float]:
    """bbox and area of a traced mask outline: exact pixel extent and pixel count, because the
    rings are the pixel staircase (shoelace: outer rings count positive, holes negative)."""
    outer = np.concatenate([p[0] for p in parts])
    lo, hi = outer.min(axis=0), outer.max(axis=0)
    twice = 0.0
    for ring in (r for p in parts for r in p):
        x, y = ring[:, 0], ring[:, 1]
        twice += float(x[:-1] @ y[1:] - x[1:] @ y[:-1] + x[-1] * y[0] - x[0] * y[-1])
    return [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])], twice / 2


def _rasterized_rle(ring: list[list[float]], h: int, w: int
                    ) -> tuple[dict[str, Any], int, list[float]] | None:
    """(RLE, area, bbox) of a polygon rasterized with pixel centers inside; only its bounding
    box is rasterized, and area and bbox come from that crop (they agree with the RLE)."""
    xs = [p[0] for p in ring]
    ys = [p[1] for p in ring]
    x0, y0 = max(0, math.floor(min(xs))), max(0, math.floor(min(ys)))
    x1, y1 = min(w, math.ceil(max(xs))), min(h, math.ceil(max(ys)))
    if x1 <= x0 or y1 <= y0:
        return None
    crop = polygons_to_mask([[[[x - x0, y - y0] for x, y in ring]]], y1 - y0, x1 - x0)
    cols = np.flatnonzero(crop.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(crop.any(axis=1))
    full = np.zeros((h, w), dtype=bool, order="F")   # Fortran order: the RLE walks columns
    full[y0:y1, x0:x1] = crop
    bbox = [float(x0 + cols[0]), float(y0 + rows[0]), float(cols[-1] - cols[0] + 1),
            float(rows[-1] - rows[0] + 1)]
    return rle_codec.encode(full), int(crop.sum()), bbox


def shape_to_annotation(shape: dict[str, Any], image: ImageItem, category_id: int,
                        segmentation: str, summary: ExportSummary,
                        outline: list[list[np.ndarray]] | None = None
                        ) -> dict[str, Any] | None:
    """One COCO annotation for ``shape`` (None, reported in ``summary``, if COCO cannot hold
    it). ``outline``: a mask's :func:`~backend.formats.base.mask_outlines`, when the caller
    traced many at once (polygon segmentation)."""
    kind, g = shape["kind"], shape["geometry"]
    w, h = image.width, image.height
    seg: Any
    if kind == "point":
        summary.skip(image, shape, "COCO has no point annotations (points are only keypoints "
                                   "of a skeleton); use labelme or CVAT to keep points")
        return None
    if kind == "mask":
        rle = g["rle"]
        if list(rle.get("size", [])) != [h, w]:
            summary.skip(image, shape, f"its mask is {rle.get('size')} pixels (height, width) "
                                       f"but the image is [{h}, {w}]")
            return None
        seg = {"size": [h, w], "counts": rle["counts"]}
        if segmentation == "polygon":
            parts = mask_parts(g) if outline is None else outline
            if not parts:
                summary.skip(image, shape, "its mask is empty")
                return None
            bbox, area = _outline_stats(parts)
            if any(len(p) > 1 for p in parts):
                summary.note(image, shape, "has holes, which COCO polygons cannot hold: "
                                           "written as RLE")
            else:
                seg = [_numbers(p[0]) for p in parts]
        else:
            area, bbox = rle_codec.area(rle), rle_codec.to_bbox(rle)
    else:
        if kind == "box":
            x0, y0, x1, y1 = g
            ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
            flat, bbox, area = [x0, y0, x1, y0, x1, y1, x0, y1], [x0, y0, x1 - x0, y1 - y0], \
                (x1 - x0) * (y1 - y0)
        else:
            ring = g
            flat, bbox, area = _polygon_stats(g)
        seg = [flat]
        if segmentation == "rle" and area > 0:
            raster = _rasterized_rle(ring, h, w)
            if raster is None:
                summary.skip(image, shape, "it covers no pixel center, so its RLE would be "
                                           "empty")
                return None
            seg, area, bbox = raster
    if area <= 0:
        summary.skip(image, shape, "it has no area")
        return None
    ann = {"id": shape["id"], "image_id": image.id, "category_id": category_id,
           "segmentation": seg, "area": area, "bbox": bbox, "iscrowd": 0}
    if shape.get("score") is not None:
        ann["score"] = shape["score"]
    return ann


def dataset_to_coco(dataset: Dataset, options: ExportOptions, summary: ExportSummary,
                    images: list[ImageItem] | None = None,
                    progress: Progress = None) -> dict[str, Any]:
    """The COCO dict for ``images`` (default: all of the dataset's)."""
    images = dataset.images if images is None else images
    index = dataset.class_index()
    outlines: dict[int, list[list[np.ndarray]]] = {}
    if options.segmentation == "polygon":
        report(progress, 0, len(images), "Tracing masks")
        masks = [s for im in images for s in im.shapes if s["kind"] == "mask"
                 and s["class_id"] is not None]
        outlines = dict(zip([s["id"] for s in masks],
                            mask_outlines([s["geometry"] for s in masks]), strict=True))
    out_images, annotations = [], []
    for n, im in enumerate(images):
        if n % 1000 == 0:
            report(progress, n, len(images), "Writing annotations")
        out_images.append({"id": im.id, "file_name": im.file_name, "width": im.width,
                           "height": im.height})
        for shape in im.shapes:
            if shape["class_id"] is None:
                summary.skip(im, shape, "it has no class")
                continue
            ann = shape_to_annotation(shape, im, index[shape["class_id"]] + 1,
                                      options.segmentation, summary, outlines.get(shape["id"]))
            if ann is not None:
                annotations.append(ann)
    from backend import __version__

    return {
        "info": {"description": "Exported by Fieldmark", "version": __version__},
        "licenses": [],
        "images": out_images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": c.name, "supercategory": ""}
                       for i, c in enumerate(dataset.classes)],
    }


def export(dataset: Dataset, root: Path, options: ExportOptions,
           progress: Progress = None) -> ExportSummary:
    """``annotations.json`` (or ``annotations/<split>.json``) and ``images/<file_name>``."""
    summary = ExportSummary(FORMAT, root)
    if options.split:
        groups = {name: [im for im in dataset.images if im.split == name]
                  for name, frac in zip(SPLIT_NAMES, options.split, strict=False) if frac > 0}
    else:
        groups = {"": dataset.images}
    for name, images in groups.items():
        data = dataset_to_coco(dataset, options, summary, images, progress)
        summary.shapes += len(data["annotations"])
        rel = f"annotations/{name}.json" if name else "annotations.json"
        summary.files.append(write_json(root, rel, data))
    summary.images = len(dataset.images)
    if options.copy_images:
        for n, im in enumerate(dataset.images):
            report(progress, n, len(dataset.images), f"Copying {im.relpath}")
            write_image(im, root.joinpath("images", *im.file_name.split("/")))
    return summary


# -- import -----------------------------------------------------------------------------------

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
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not np.isfinite(value):
            raise self.fail(where, f"must be a number, got {value!r}")
        return float(value)

    def numbers(self, value: Any, where: str, n: int | None = None) -> list[float]:
        if not isinstance(value, list) or (n is not None and len(value) != n):
            raise self.fail(where, f"must be a list of {n or 'some'} numbers, got {value!r}"[:200])
        return [self.number(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _parse_segmentation(ann: dict[str, Any], where: str, check: _Checker, width: int,
                        height: int) -> tuple[str, Any] | None:
    """(kind, geometry) for the annotation's segmentation, or None when it has none."""
    seg = ann.get("segmentation")
    if seg is None or seg == []:
        return None
    if isinstance(seg, dict):
        size = seg.get("size")
        if size is not None and list(size) != [height, width]:
            raise check.fail(f"{where}.segmentation.size", f"is {size} but the image is "
                                                            f"[{height}, {width}] (height, width)")
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
        categories[cat["id"]] = cat["name"].strip()
    images: dict[Any, dict[str, Any]] = {}
    skipped: list[dict[str, Any]] = []
    matched: dict[Any, dict[str, Any] | None] = {}
    unmatched: dict[Any, list[Any]] = {}      # COCO image id -> [file_name, reason, count]
    for i, img in enumerate(check.list_of(data, "images")):
        if not isinstance(img, dict) or "id" not in img or not isinstance(
                img.get("file_name"), str):
            raise check.fail(f"images[{i}]", "must have an id and a file_name")
        images[img["id"]] = img
        rec, reason = matcher.match(img["file_name"])
        if rec is not None:
            if rec["id"] not in sizes:
                sizes[rec["id"]] = size_of(rec)
            size = sizes[rec["id"]]
            want = (img.get("width"), img.get("height"))
            if size is None:
                rec, reason = None, "the project image cannot be read, so its size is unknown"
            elif None not in want and tuple(want) != size:
                rec, reason = None, (f"COCO gives its size as {want[0]} x {want[1]} but the "
                                     f"image is {size[0]} x {size[1]} as displayed (resized, "
                                     "or rotated by its EXIF orientation?)")
        if rec is None:
            unmatched[img["id"]] = [img["file_name"], reason, 0]
        matched[img["id"]] = rec
    items: list[dict[str, Any]] = []
    for i, ann in enumerate(check.list_of(data, "annotations")):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise check.fail(where, "must be an object")
        if ann.get("image_id") not in images:
            raise check.fail(f"{where}.image_id", f"{ann.get('image_id')!r} is not in images")
        if ann.get("category_id") not in categories:
            raise check.fail(f"{where}.category_id",
                             f"{ann.get('category_id')!r} is not in categories")
        rec = matched[ann["image_id"]]
        bbox = ann.get("bbox")
        box = None
        if bbox is not None:
            x, y, bw, bh = check.numbers(bbox, f"{where}.bbox", 4)
            box = [x, y, x + bw, y + bh]
        if rec is None:
            unmatched[ann["image_id"]][2] += 1   # reported once per image, below
            continue
        width, height = sizes[rec["id"]] or (0, 0)
        parsed = _parse_segmentation(ann, where, check, width, height)
        extra: dict[str, Any] = {}
        if ann.get("score") is not None:
            extra["score"] = check.number(ann["score"], f"{where}.score")
        cls = categories[ann["category_id"]]
        name = images[ann["image_id"]]["file_name"]
        if parsed is None:
            if box is None:
                raise check.fail(where, "has neither a segmentation nor a bbox")
            if box[2] <= box[0] or box[3] <= box[1]:
                skipped.append({"item": f"{name}: {where}", "reason": "its bbox has no area"})
                continue
            items.append(import_item(rec["id"], cls, "box", box, **extra))
        elif parsed[0] == "polygon":
            ring = parsed[1]
            corners = _as_box(ring)
            if corners is not None:
                items.append(import_item(rec["id"], cls, "box", corners, **extra))
            else:
                items.append(import_item(rec["id"], cls, "polygon", ring, **extra))
        else:
            mask = parsed[1]
            if not mask.any():
                skipped.append({"item": f"{name}: {where}", "reason": "its mask is empty"})
                continue
            rle = rle_codec.encode(mask)
            x, y, bw, bh = rle_codec.to_bbox(rle)
            items.append(import_item(rec["id"], cls, "mask",
                                     {"rle": rle, "bbox": [x, y, x + bw, y + bh]}, **extra))
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


def import_(project: Project, src: Path, progress: Progress = None) -> ImportReport:
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
