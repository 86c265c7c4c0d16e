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

Import (:mod:`backend.formats.coco_read`): a single polygon equal to its bbox rectangle becomes
a box, any other single polygon a polygon, several polygons or an RLE a mask (rasterized at the
image size), an annotation with no segmentation its bbox. Images are matched by ``file_name``.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import mul
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from backend.formats.base import (
    SPLIT_NAMES,
    Dataset,
    ExportOptions,
    ExportSummary,
    ImageItem,
    ImportReport,
    Progress,
    mask_outlines,
    mask_parts,
    report,
    write_image,
    write_json,
)
from backend.formats.shape_rle import Raster, shape_rles
from backend.geometry import rle as rle_codec

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


def shape_to_annotation(shape: dict[str, Any], image: ImageItem, category_id: int,
                        segmentation: str, summary: ExportSummary,
                        outline: list[list[np.ndarray]] | None = None,
                        rasters: Mapping[int, Raster | None] | None = None
                        ) -> dict[str, Any] | None:
    """One COCO annotation for ``shape`` (None, reported in ``summary``, if COCO cannot hold
    it). ``outline``: a mask's :func:`~backend.formats.base.mask_outlines`, when the caller
    traced many at once (polygon segmentation); ``rasters``: shape id ->
    :func:`~backend.formats.shape_rle.shape_rles` entry of boxes and polygons, when the caller
    rasterized many at once (RLE segmentation)."""
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
        elif rasters is not None and shape["id"] in rasters:
            _, area, bbox = rasters[shape["id"]]   # type: ignore[misc]
        else:
            area, bbox = rle_codec.area_and_bbox(rle)
    else:
        if kind == "box":
            x0, y0, x1, y1 = g
            flat, bbox, area = [x0, y0, x1, y0, x1, y1, x0, y1], [x0, y0, x1 - x0, y1 - y0], \
                (x1 - x0) * (y1 - y0)
        else:
            flat, bbox, area = _polygon_stats(g)
        seg = [flat]
        if segmentation == "rle" and area > 0:
            if rasters is not None and shape["id"] in rasters:
                raster = rasters[shape["id"]]
            else:
                raster = shape_rles([(kind, g)], [(h, w)])[0]
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
    rasters: dict[int, Raster | None] = {}
    if options.segmentation == "polygon":
        report(progress, 0, len(images), "Tracing masks")
        masks = [s for im in images for s in im.shapes if s["kind"] == "mask"
                 and s["class_id"] is not None]
        outlines = dict(zip([s["id"] for s in masks],
                            mask_outlines([s["geometry"] for s in masks]), strict=True))
    else:
        report(progress, 0, len(images), "Rasterizing shapes")
        drawn = [(s, im) for im in images for s in im.shapes
                 if s["kind"] in ("box", "polygon") and s["class_id"] is not None]
        rasters = dict(zip([s["id"] for s, _ in drawn],
                           shape_rles([(s["kind"], s["geometry"]) for s, _ in drawn],
                                      [(im.height, im.width) for _, im in drawn]), strict=True))
        masks = [s for im in images for s in im.shapes if s["kind"] == "mask"
                 and s["class_id"] is not None
                 and list(s["geometry"]["rle"].get("size", [])) == [im.height, im.width]]
        stats = rle_codec.area_and_bbox_many([s["geometry"]["rle"] for s in masks])
        rasters.update((s["id"], (s["geometry"]["rle"], a, b))
                       for s, (a, b) in zip(masks, stats, strict=True))
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
                                      options.segmentation, summary, outlines.get(shape["id"]),
                                      rasters)
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


def import_(project: Project, src: Path, progress: Progress = None) -> ImportReport:
    """Import a COCO file or folder (:func:`backend.formats.coco_read.import_coco`)."""
    from backend.formats.coco_read import import_coco

    return import_coco(project, src, progress)
