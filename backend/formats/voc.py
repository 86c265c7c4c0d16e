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

Import reads the XMLs (boxes); when ``SegmentationObject/<id>.png`` exists, an object with
pixels there comes back as a mask instead of a box. All or nothing: any malformed file stops
the import with a message naming it, before anything is written.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from backend.errors import FieldmarkError, InvalidArgument
from backend.formats.base import (
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
    report,
    write_image,
    write_text,
)
from backend.formats.masks import paint_order, png_bytes, shape_pixels, tight_box, write_bytes
from backend.geometry import rle
from backend.store.validate import check_class_name

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


# -- parsing ----------------------------------------------------------------------------------

@dataclass
class VocAnnotation:
    filename: str | None
    path: str | None
    width: int | None
    height: int | None
    objects: list[tuple[str, list[float]]]      # (name, [x0, y0, x1, y1])


def parse_xml(data: bytes, path: Path, what: str) -> ET.Element:
    """Parse untrusted XML; documents with a DTD (entity expansion, external entities) are
    refused rather than trusted to the parser's limits."""
    head = data.lower()
    if b"<!doctype" in head or b"<!entity" in head:
        raise FormatError(f"The {what} '{path}' declares a DTD or entities, which Fieldmark does "
                          "not read. Remove the <!DOCTYPE ...> part and try again.",
                          detail={"file": str(path)})
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise FormatError(f"The {what} '{path}' is not valid XML ({exc}). Was it cut short or "
                          "edited by hand?", detail={"file": str(path)}) from exc


def parse_voc(data: bytes, path: Path) -> VocAnnotation:
    root = parse_xml(data, path, "VOC annotation")
    if root.tag != "annotation":
        raise FormatError(f"'{path}' is not a Pascal VOC annotation: its root element is "
                          f"<{root.tag}>, expected <annotation>.", detail={"file": str(path)})
    width = _int_or_none(root.findtext("size/width"), path, "size/width")
    height = _int_or_none(root.findtext("size/height"), path, "size/height")
    objects = []
    for k, obj in enumerate(root.findall("object"), start=1):
        where = f"object {k}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise FormatError(f"In '{path}', {where} has no <name>. Every object needs a class "
                              "name.", detail={"file": str(path), "object": k})
        try:
            name = check_class_name(name)
        except InvalidArgument as exc:
            raise FormatError(f"In '{path}', the <name> of {where} cannot be a class: "
                              f"{exc.message}", detail={"file": str(path), "object": k}) from exc
        bb = obj.find("bndbox")
        if bb is None:
            raise FormatError(f"In '{path}', {where} ({name!r}) has no <bndbox>.",
                              detail={"file": str(path), "object": k})
        coords = [_number(bb.findtext(t), path, f"{where} bndbox/{t}")
                  for t in ("xmin", "ymin", "xmax", "ymax")]
        objects.append((name, voc_to_box(*coords)))
    return VocAnnotation(_text(root, "filename"), _text(root, "path"), width or None,
                         height or None, objects)


def _text(root: ET.Element, tag: str) -> str | None:
    value = (root.findtext(tag) or "").strip()
    return value or None


def _number(text: str | None, path: Path, where: str) -> float:
    try:
        value = float((text or "").strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise FormatError(f"In '{path}', {where} must be a number, got {text!r}.",
                          detail={"file": str(path), "field": where})
    return value


def _int_or_none(text: str | None, path: Path, where: str) -> int | None:
    if text is None or not text.strip():
        return None
    value = _number(text, path, where)
    if value < 0 or value != int(value):
        raise FormatError(f"In '{path}', {where} must be a whole number of pixels, got {text!r}.",
                          detail={"file": str(path), "field": where})
    return int(value)


def voc_to_items(ann: VocAnnotation, object_map: np.ndarray | None
                 ) -> list[tuple[str, str, Any]]:
    """``(class name, kind, geometry)`` per object: a mask where ``object_map`` has pixels
    with the object's 1-based number, else its box."""
    out: list[tuple[str, str, Any]] = []
    for k, (name, box) in enumerate(ann.objects, start=1):
        if object_map is not None and k <= MAX_VALUE:
            pixels = object_map == k
            if pixels.any():
                encoded = rle.encode(pixels)
                x, y, w, h = rle.to_bbox(encoded)
                out.append((name, "mask", {"rle": encoded, "bbox": [x, y, x + w, y + h]}))
                continue
        out.append((name, "box", box))
    return out


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


def _xml_files(src: Path) -> tuple[list[Path], Path]:
    """The annotation files to import and the VOC root (where SegmentationObject/ would be)."""
    if src.is_file():
        root = src.parent.parent if src.parent.name == "Annotations" else src.parent
        return [src], root
    ann = src / "Annotations" if (src / "Annotations").is_dir() else src
    root = src.parent if src.name == "Annotations" else src
    files = sorted(p for p in ann.glob("*.xml") if p.is_file())
    if not files:
        raise FormatError(f"There are no .xml files in '{ann}'. Choose a Pascal VOC folder (the "
                          "one holding Annotations/) or a single .xml file.",
                          detail={"file": str(ann)})
    return files, root


def _read_object_map(path: Path, width: int, height: int) -> np.ndarray:
    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L"):
                raise FormatError(f"'{path}' must be an indexed (palette) or grayscale PNG whose "
                                  f"values are object numbers; it is mode {im.mode}.",
                                  detail={"file": str(path)})
            arr = np.asarray(im)
    except FormatError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise FormatError(f"Could not read the segmentation PNG '{path}' ({exc}).",
                          detail={"file": str(path)}) from exc
    if arr.shape != (height, width):
        raise FormatError(f"The segmentation PNG '{path}' is {arr.shape[1]} x {arr.shape[0]} "
                          f"pixels but its image is {width} x {height}.",
                          detail={"file": str(path)})
    return arr


def import_(project: Project, src: Path, progress: Progress) -> ImportReport:
    if src.is_file() and src.suffix.lower() == ".zip":
        raise FormatError(f"'{src}' is a ZIP file. Unzip it, then import the "
                          "Pascal VOC folder (the one holding Annotations/).",
                          detail={"file": str(src)})
    files, voc_root = _xml_files(src)
    records = project.images()
    matcher = ImageMatcher(records)
    items: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    matched: set[int] = set()
    for n, path in enumerate(files):
        report(progress, n, len(files), f"Reading {path.name}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise FormatError(f"Could not read '{path}' ({exc.strerror or exc}).",
                              detail={"file": str(path)}) from exc
        ann = parse_voc(data, path)
        rec, reason = _match(matcher, ann, path)
        if rec is None:
            skipped.append({"item": str(path), "reason": reason})
            continue
        size = image_size(project, rec)
        if size is None:
            skipped.append({"item": str(path), "reason": f"the project image "
                            f"'{rec['relpath']}' cannot be read, so its size is unknown"})
            continue
        if ann.width and ann.height and (ann.width, ann.height) != size:
            skipped.append({"item": str(path), "reason": f"it is for a {ann.width} x "
                            f"{ann.height} image but '{rec['relpath']}' is {size[0]} x "
                            f"{size[1]} (resized or rotated copy?)"})
            continue
        seg = voc_root / "SegmentationObject" / f"{path.stem}.png"
        object_map = _read_object_map(seg, *size) if seg.is_file() else None
        matched.add(rec["id"])
        for name, kind, geometry in voc_to_items(ann, object_map):
            items.append(import_item(rec["id"], name, kind, geometry))
    report(progress, len(files), len(files), "Saving")
    return commit_import(project, "voc", items, skipped, len(matched), "Import Pascal VOC",
                         class_names=read_labelmap(voc_root / "labelmap.txt"))


def read_labelmap(path: Path) -> list[str]:
    """Class names of a CVAT/Datumaro ``labelmap.txt`` in its order (without "background"),
    or [] when there is none; it keeps the class order, and so the PNG values, on a round
    trip. Lines that do not look like ``name:r,g,b:...`` are ignored."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return []
    names = []
    for line in text.splitlines():
        if line.startswith("#") or line.count(":") < 3:
            continue
        name = line.rsplit(":", 3)[0].strip()
        if name and name != "background":
            try:
                names.append(check_class_name(name))
            except InvalidArgument:
                continue    # only the order comes from here; the XMLs name the classes
    return names


def _match(matcher: ImageMatcher, ann: VocAnnotation, path: Path
           ) -> tuple[dict[str, Any] | None, str]:
    reason = ""
    for name in (ann.filename, ann.path):
        if name:
            rec, why = matcher.match(name)
            if rec is not None:
                return rec, ""
            reason = reason or why
    rec, why = matcher.match(path.stem, stem=True)
    return (rec, "") if rec is not None else (None, reason or why)
