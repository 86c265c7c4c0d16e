"""Pascal VOC import: the XMLs (boxes), and masks from ``SegmentationObject`` PNGs.

Reads what :mod:`backend.formats.voc` writes and what the VOC devkit, CVAT and Datumaro write:
``Annotations/*.xml`` (or one XML), boxes in VOC's 1-based inclusive pixels
(:func:`~backend.formats.voc.voc_to_box`). When ``SegmentationObject/<id>.png`` exists, an
object with pixels there (value = its 1-based position in the XML) comes back as a mask instead
of a box. ``labelmap.txt``, when present, gives the class order. Images are matched by the
XML's ``<filename>``, then ``<path>``, then the XML's own name.

All or nothing: any malformed file stops the import with a message naming it, before anything
is written. XML with a DTD or entities is refused (untrusted input).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.parsers import expat

import numpy as np
from PIL import Image

from backend.errors import InvalidArgument
from backend.formats.base import (
    FormatError,
    ImageMatcher,
    ImportReport,
    Progress,
    commit_import,
    report,
)
from backend.formats.importing import add_item, matched_size
from backend.formats.voc import MAX_VALUE, voc_to_box
from backend.geometry import rle
from backend.store.validate import check_class_name

if TYPE_CHECKING:
    from backend.store import Project


@dataclass
class VocAnnotation:
    filename: str | None
    path: str | None
    width: int | None
    height: int | None
    objects: list[tuple[str, list[float]]]      # (name, [x0, y0, x1, y1])


class _DtdRefused(Exception):
    pass


def _refuse(*_: Any) -> None:
    raise _DtdRefused


def parse_xml(data: bytes, path: Path, what: str) -> ET.Element:
    """Parse untrusted XML; documents with a DTD (entity expansion, external entities) are
    refused rather than trusted to the parser's limits.

    The refusal is made by expat itself, as the declaration is read, so it holds in every
    encoding the parser reads (a byte search for "<!DOCTYPE" misses a UTF-16 file), and no
    entity is ever expanded or fetched. The tree is built from the same parse.
    """
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    try:
        parser.Parse(data, True)
    except _DtdRefused:
        raise FormatError(f"The {what} '{path}' declares a DTD or entities, which Fieldmark does "
                          "not read. Remove the <!DOCTYPE ...> part and try again.",
                          detail={"file": str(path)}) from None
    # LookupError / ValueError: an encoding="..." that Python does not know or expat cannot
    # read (multi-byte ones such as shift_jis or utf-7).
    except (expat.ExpatError, LookupError, ValueError) as exc:
        raise FormatError(f"The {what} '{path}' is not valid XML ({exc}). Was it cut short or "
                          "edited by hand?", detail={"file": str(path)}) from exc
    return builder.close()


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
            if im.size != (width, height):   # checked before decoding a possibly huge file
                raise FormatError(f"The segmentation PNG '{path}' is {im.size[0]} x "
                                  f"{im.size[1]} pixels but its image is {width} x {height}.",
                                  detail={"file": str(path)})
            arr = np.asarray(im)
    except FormatError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise FormatError(f"Could not read the segmentation PNG '{path}' ({exc}).",
                          detail={"file": str(path)}) from exc
    return arr


def import_voc(project: Project, src: Path, progress: Progress) -> ImportReport:
    """Import ``src``: a VOC folder (holding ``Annotations/``), an ``Annotations`` folder or
    one ``.xml`` file."""
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
        size, why = matched_size(project, rec, (ann.width, ann.height))
        if size is None:
            skipped.append({"item": str(path), "reason": why})
            continue
        seg = voc_root / "SegmentationObject" / f"{path.stem}.png"
        object_map = _read_object_map(seg, *size) if seg.is_file() else None
        matched.add(rec["id"])
        for k, (name, kind, geometry) in enumerate(voc_to_items(ann, object_map), start=1):
            add_item(items, skipped, f"{path} object {k}", rec["id"], size, name, kind, geometry)
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
