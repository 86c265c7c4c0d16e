"""Pascal VOC: one XML per image, plus segmentation PNGs when there are polygons or masks.

Layout (the VOC devkit's)::

    Annotations/<id>.xml
    JPEGImages/<id><suffix>                 (with ``copy_images``; the file keeps its format)
    SegmentationClass/<id>.png              (images with a polygon or mask)
    SegmentationObject/<id>.png
    ImageSets/Main/{trainval,train,val,test}.txt
    ImageSets/Segmentation/{trainval,train,val,test}.txt
    labelmap.txt                            (class names and colours, CVAT/Datumaro style)

``<id>`` is the image's file name without suffix; when two images would share it (same name
in different folders, "x.jpg" next to "x.png"), their folders are joined into it with "__"
("a/x.jpg" -> "a__x"), and the ``<path>`` element keeps the project-relative path so that an
import finds the image again. ``trainval.txt`` lists every image that is not in the test
split (all of them without a split option).

Box convention (the devkit's): ``xmin ymin xmax ymax`` are **1-based, inclusive pixel
indices**. Our box ``[x0, y0, x1, y1]`` has pixel-corner coordinates (pixel ``c`` covers
``[c, c+1]``), so pixels ``round(x0) .. round(x1) - 1`` are covered and::

    xmin = round(x0) + 1    xmax = round(x1)        (round half up; same for y)
    import:  [xmin - 1, ymin - 1, xmax, ymax]

which is also what supervision and torchvision-style readers do. Coordinates are whole pixels
(many readers parse them with ``int()``), clamped to the image; a box reaching outside the
image is clamped and noted in the summary, one entirely outside is skipped. A box thinner than
a pixel becomes one pixel wide.

Polygons and masks are objects whose ``bndbox`` is the tight box of their pixels, and whose
pixels are painted into the PNGs (palette PNGs with the VOC colormap): SegmentationClass holds
class index + 1 (0 = background, classes in project order, see ``labelmap.txt``),
SegmentationObject holds the object's 1-based position among the XML's objects (box objects
keep their number but paint nothing). Pixels no shape covers are background (0), as in VOC.
We do not write VOC's 255 "void" band around objects: our outlines are exact, so there is no
uncertain boundary to hide. Overlaps: larger objects are painted first, so a smaller object on
a larger one stays visible (as in the semantic masks export). Values stop at 254, so a 255th
class or object can be in the XML but not in the PNGs (reported). Points cannot be held.

Import (:mod:`backend.formats.voc_read`) reads the XMLs (boxes); when
``SegmentationObject/<id>.png`` exists, an object with pixels there comes back as a mask
instead of a box. All or nothing: any malformed file stops the import with a message naming
it, before anything is written.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from backend.errors import FieldmarkError
from backend.formats.base import (
    Dataset,
    ExportOptions,
    ExportSummary,
    ImageItem,
    ImportReport,
    Progress,
    report,
    write_image,
    write_text,
)
from backend.formats.masks import paint_order, png_bytes, shape_pixels, tight_box, write_bytes

if TYPE_CHECKING:
    from backend.store import Project

MAX_VALUE = 254          # 255 is VOC's "void"; 0 is background
XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# -- pure converters --------------------------------------------------------------------------

def voc_colormap(n: int = 256) -> np.ndarray:
    """The VOC devkit's ``labelcolormap``: ``(n, 3)`` uint8, bits of the index spread over RGB."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def _half_up(v: float) -> int:
    return math.floor(v + 0.5)


def box_to_voc(box: list[float], width: int, height: int
               ) -> tuple[tuple[int, int, int, int] | None, bool]:
    """``((xmin, ymin, xmax, ymax), clamped)`` in VOC's 1-based inclusive pixels, or
    ``(None, True)`` for a box entirely outside the image."""
    x0, y0, x1, y1 = box
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        return None, True
    clamped = x0 < 0 or y0 < 0 or x1 > width or y1 > height
    xmin = min(max(_half_up(x0) + 1, 1), width)
    ymin = min(max(_half_up(y0) + 1, 1), height)
    xmax = max(min(_half_up(x1), width), xmin)
    ymax = max(min(_half_up(y1), height), ymin)
    return (xmin, ymin, xmax, ymax), clamped


def voc_to_box(xmin: float, ymin: float, xmax: float, ymax: float) -> list[float]:
    """Our ``[x0, y0, x1, y1]`` (pixel corners) of a VOC box."""
    return [float(xmin) - 1, float(ymin) - 1, float(xmax), float(ymax)]


@dataclass
class VocObject:
    name: str
    box: tuple[int, int, int, int]
    shape: dict[str, Any] | None = None
    pixels: np.ndarray | None = None        # bool H x W for segmented objects


@dataclass
class VocImage:
    """What one image becomes: objects in XML order, the PNG arrays (None when the image has
    no segmented object), and shapes left out or changed, each with the reason."""

    objects: list[VocObject]
    class_map: np.ndarray | None = None
    object_map: np.ndarray | None = None
    skipped: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    notes: list[tuple[dict[str, Any], str]] = field(default_factory=list)


def shapes_to_voc(shapes: list[dict[str, Any]], names: dict[int, str],
                  class_index: dict[int, int], width: int, height: int) -> VocImage:
    out = VocImage([])
    for shape in shapes:
        cid, kind = shape["class_id"], shape["kind"]
        if cid not in names:
            out.skipped.append((shape, "it has no class"))
            continue
        if kind == "point":
            out.skipped.append((shape, "Pascal VOC has no points"))
            continue
        pixels = None
        if kind == "box":
            box, clamped = box_to_voc(shape["geometry"], width, height)
        else:
            try:
                pixels = shape_pixels(shape, height, width)
            except ValueError as exc:
                out.skipped.append((shape, str(exc)))
                continue
            tight = tight_box(pixels) if pixels is not None else None
            if tight is None and kind == "mask":
                out.skipped.append((shape, "its mask is empty"))
                continue
            if tight is None:
                pixels = None
                xs, ys = [p[0] for p in shape["geometry"]], [p[1] for p in shape["geometry"]]
                box, clamped = box_to_voc([min(xs), min(ys), max(xs), max(ys)], width, height)
                if box is not None:
                    out.notes.append((shape, "it covers no pixel centre, so it is written as "
                                             "a box without segmentation"))
            else:
                box, clamped = (tight[0] + 1, tight[1] + 1, tight[2] + 1, tight[3] + 1), False
        if box is None:
            out.skipped.append((shape, "it lies entirely outside the image"))
            continue
        if clamped:
            out.notes.append((shape, "its box reaches outside the image and was clamped"))
        out.objects.append(VocObject(names[cid], box, shape, pixels))
    _paint(out, class_index, width, height)
    return out


def _paint(out: VocImage, class_index: dict[int, int], width: int, height: int) -> None:
    segmented = [(number, obj.shape["class_id"], obj.pixels)
                 for number, obj in enumerate(out.objects, start=1)
                 if obj.pixels is not None and obj.shape is not None]
    if not segmented:
        return
    out.class_map = np.zeros((height, width), dtype=np.uint8)
    out.object_map = np.zeros((height, width), dtype=np.uint8)
    for i in paint_order([pixels for _, _, pixels in segmented]):
        number, class_id, pixels = segmented[i]
        value = class_index[class_id] + 1
        if value > MAX_VALUE or number > MAX_VALUE:
            what = "class" if value > MAX_VALUE else "object on its image"
            shape = out.objects[number - 1].shape or {}
            out.notes.append((shape, f"VOC PNGs hold 254 values, so this {what} is in the XML "
                                     "but not painted in the segmentation PNGs"))
            continue
        out.class_map[pixels] = value
        out.object_map[pixels] = number


def voc_xml(filename: str, relpath: str, width: int, height: int, depth: int,
            objects: list[VocObject], segmented: bool) -> str:
    """The ``<annotation>`` document of one image, indented, UTF-8 declaration included."""
    root = ET.Element("annotation")
    _sub(root, "folder", "JPEGImages")
    _sub(root, "filename", filename)
    _sub(root, "path", relpath)
    _sub(_sub(root, "source"), "database", "Fieldmark")
    size = _sub(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", depth)):
        _sub(size, tag, str(value))
    _sub(root, "segmented", "1" if segmented else "0")
    for obj in objects:
        el = _sub(root, "object")
        _sub(el, "name", obj.name)
        _sub(el, "pose", "Unspecified")
        _sub(el, "truncated", "0")
        _sub(el, "difficult", "0")
        bb = _sub(el, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), obj.box, strict=True):
            _sub(bb, tag, str(value))
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def voc_ids(file_names: list[str]) -> list[str]:
    """Flat, unique (ignoring case) VOC ids for "/"-separated file names (module docstring)."""
    stems = [PurePosixPath(n).stem for n in file_names]
    ids = _dedupe(stems, lambda i: "__".join(PurePosixPath(file_names[i]).with_suffix("").parts))
    ids = _dedupe(ids, lambda i: "__".join(PurePosixPath(file_names[i]).parts))
    return _dedupe(ids, lambda i: f"{ids[i]}__{i}")


def _dedupe(ids: list[str], longer: Any) -> list[str]:
    seen: dict[str, int] = {}
    for s in ids:
        seen[s.casefold()] = seen.get(s.casefold(), 0) + 1
    return [longer(i) if seen[s.casefold()] > 1 else s for i, s in enumerate(ids)]


def labelmap(names: list[str]) -> str:
    """``labelmap.txt`` as CVAT and Datumaro write it for VOC: ``name:r,g,b::`` per value."""
    cmap = voc_colormap()
    lines = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
    for i, name in enumerate(names[:MAX_VALUE], start=1):
        r, g, b = (int(v) for v in cmap[i])
        lines.append(f"{name.replace(':', '_')}:{r},{g},{b}::")
    return "\n".join(lines) + "\n"


# -- the wrappers -----------------------------------------------------------------------------

def export(dataset: Dataset, root: Path, options: ExportOptions,
           progress: Progress) -> ExportSummary:
    summary = ExportSummary("voc", root)
    names = {c.id: c.name for c in dataset.classes}
    index = dataset.class_index()
    palette = voc_colormap()
    ids = voc_ids([im.file_name for im in dataset.images])
    lists: dict[str, list[str]] = {}
    for n, (im, voc_id) in enumerate(zip(dataset.images, ids, strict=True)):
        report(progress, n, len(dataset.images), f"Writing {im.relpath}")
        if XML_BAD.search(im.relpath):
            summary.skip(im, None, "its file name has characters XML cannot hold")
            continue
        out = shapes_to_voc(im.shapes, names, index, im.width, im.height)
        for shape, reason in out.skipped:
            summary.skip(im, shape, reason)
        for shape, note in out.notes:
            summary.note(im, shape, note)
        filename = voc_id + PurePosixPath(im.file_name).suffix
        segmented = out.class_map is not None
        xml = voc_xml(filename, im.relpath, im.width, im.height, _depth(im), out.objects,
                      segmented)
        summary.files.append(write_text(root, f"Annotations/{voc_id}.xml", xml))
        if out.class_map is not None and out.object_map is not None:
            summary.files.append(write_bytes(root, f"SegmentationClass/{voc_id}.png",
                                             png_bytes(out.class_map, palette)))
            summary.files.append(write_bytes(root, f"SegmentationObject/{voc_id}.png",
                                             png_bytes(out.object_map, palette)))
        if options.copy_images:
            write_image(im, root / "JPEGImages" / filename)
        for listed in _lists_of(im, segmented):
            lists.setdefault(listed, []).append(voc_id)
        summary.images += 1
        summary.shapes += len(out.objects)
    for listed, members in sorted(lists.items()):
        summary.files.append(write_text(root, f"ImageSets/{listed}.txt",
                                        "".join(f"{m}\n" for m in members)))
    summary.files.append(write_text(root, "labelmap.txt",
                                    labelmap([c.name for c in dataset.classes])))
    return summary


def _lists_of(im: ImageItem, segmented: bool) -> list[str]:
    names = [] if im.split == "test" else ["trainval"]
    if im.split:
        names.append(im.split)
    sets = ["Main"] + (["Segmentation"] if segmented else [])
    return [f"{s}/{n}" for s in sets for n in names]


def _depth(im: ImageItem) -> int:
    if im.resized:
        return 3
    from backend.imaging import probe

    try:
        return probe(im.path).channels
    except FieldmarkError:
        return 3


def import_(project: Project, src: Path, progress: Progress) -> ImportReport:
    """Import a Pascal VOC folder or one XML (:func:`backend.formats.voc_read.import_voc`)."""
    from backend.formats.voc_read import import_voc

    return import_voc(project, src, progress)
