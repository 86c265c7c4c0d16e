"""CVAT for images 1.1 (XML), export only: what CVAT's "Upload annotations" reads for a task.

Layout (CVAT's own export)::

    annotations.xml
    images/<image file name>          (with ``copy_images``; the ``name`` attribute matches)

Shapes (coordinates as ours: pixel corners, so written as they are, two decimals as CVAT
writes them):

- box -> ``<box xtl ytl xbr ybr>``; polygon -> ``<polygon points="x,y;x,y;...">``;
  point -> ``<points points="x,y">``.
- mask -> ``<mask rle left top width height>``: CVAT's mask encoding — run lengths over the
  mask's tight box (``width`` x ``height`` pixels from column ``left``, row ``top``), in
  row-major order, starting with a (possibly empty) run of background, written as
  "n, n, n" — what ``cvat_sdk.masks.encode_mask`` produces. Holes and several parts are kept.

``source`` is ``manual`` for manual shapes and ``auto`` for a model's (CVAT has no field for
the score; with ``include_pending`` proposals are written as ordinary ``auto`` shapes).
Labels are declared in ``<meta><task><labels>`` with their colours; ``subset`` is set on each
image when a split is asked for. A shape without a class is skipped (CVAT needs a label).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from backend.formats.base import (
    Dataset,
    ExportOptions,
    ExportSummary,
    ImageItem,
    Progress,
    report,
    write_image,
    write_text,
)
from backend.formats.masks import shape_pixels, tight_box
from backend.formats.voc import XML_BAD

SUBSETS = {"train": "Train", "val": "Validation", "test": "Test"}


def mask_to_cvat(pixels: np.ndarray) -> tuple[list[int], int, int, int, int] | None:
    """``(runs, left, top, width, height)`` of a full-image bool mask, or None if empty.

    Runs alternate background/foreground over the tight box in row-major order, starting
    with background (0 when the box's first pixel is foreground); they sum to width * height.
    """
    box = tight_box(pixels)
    if box is None:
        return None
    c0, r0, c1, r1 = box
    flat = pixels[r0:r1 + 1, c0:c1 + 1].ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], change, [flat.size])))
    if flat[0]:
        runs = np.concatenate(([0], runs))
    return [int(r) for r in runs], c0, r0, c1 - c0 + 1, r1 - r0 + 1


def _f(v: float) -> str:
    return f"{v:.2f}"


def shape_element(shape: dict[str, Any], label: str, width: int, height: int
                  ) -> tuple[ET.Element | None, str]:
    """The XML element of one shape, or ``(None, reason)``."""
    kind, g = shape["kind"], shape["geometry"]
    common = {"label": label, "source": "manual" if shape["source"] == "manual" else "auto",
              "occluded": "0"}
    if kind == "box":
        attrs = {**common, "xtl": _f(g[0]), "ytl": _f(g[1]), "xbr": _f(g[2]), "ybr": _f(g[3])}
        tag = "box"
    elif kind == "polygon":
        attrs = {**common, "points": ";".join(f"{_f(x)},{_f(y)}" for x, y in g)}
        tag = "polygon"
    elif kind == "point":
        attrs = {**common, "points": f"{_f(g[0])},{_f(g[1])}"}
        tag = "points"
    else:
        try:
            pixels = shape_pixels(shape, height, width)
        except ValueError as exc:
            return None, str(exc)
        encoded = mask_to_cvat(pixels) if pixels is not None else None
        if encoded is None:
            return None, "its mask is empty"
        runs, left, top, w, h = encoded
        attrs = {**common, "rle": ", ".join(str(r) for r in runs), "left": str(left),
                 "top": str(top), "width": str(w), "height": str(h)}
        tag = "mask"
    return ET.Element(tag, {**attrs, "z_order": "0"}), ""


def image_element(item: ImageItem, number: int, names: dict[int, str], subset: bool
                  ) -> tuple[ET.Element, list[tuple[dict[str, Any], str]]]:
    attrs = {"id": str(number), "name": item.file_name}
    if subset and item.split:
        attrs["subset"] = SUBSETS[item.split]
    attrs.update(width=str(item.width), height=str(item.height))
    el = ET.Element("image", attrs)
    skipped = []
    for shape in item.shapes:
        if shape["class_id"] not in names:
            skipped.append((shape, "it has no class"))
            continue
        child, reason = shape_element(shape, names[shape["class_id"]], item.width, item.height)
        if child is None:
            skipped.append((shape, reason))
        else:
            el.append(child)
    return el, skipped


def meta_element(dataset: Dataset, size: int) -> ET.Element:
    meta = ET.Element("meta")
    task = ET.SubElement(meta, "task")
    for tag, text in (("id", "0"), ("name", "Fieldmark export"), ("size", str(size)),
                      ("mode", "annotation"), ("overlap", "0"), ("bugtracker", ""),
                      ("flipped", "False"), ("start_frame", "0"),
                      ("stop_frame", str(max(size - 1, 0))), ("frame_filter", "")):
        ET.SubElement(task, tag).text = text
    labels = ET.SubElement(task, "labels")
    for c in dataset.classes:
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = c.name
        ET.SubElement(label, "color").text = c.color
        ET.SubElement(label, "type").text = "any"
        ET.SubElement(label, "attributes")
    return meta


def document(meta: ET.Element, images: list[ET.Element]) -> str:
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    root.append(meta)
    root.extend(images)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def export(dataset: Dataset, root: Path, options: ExportOptions,
           progress: Progress) -> ExportSummary:
    summary = ExportSummary("cvat", root)
    names = {c.id: c.name for c in dataset.classes}
    subset = options.split is not None
    elements: list[ET.Element] = []
    for n, im in enumerate(dataset.images):
        report(progress, n, len(dataset.images), f"Writing {im.relpath}")
        if XML_BAD.search(im.file_name):
            summary.skip(im, None, "its file name has characters XML cannot hold")
            continue
        el, skipped = image_element(im, len(elements), names, subset)
        for shape, reason in skipped:
            summary.skip(im, shape, reason)
        elements.append(el)
        if options.copy_images:
            write_image(im, root.joinpath("images", *PurePosixPath(im.file_name).parts))
        summary.images += 1
        summary.shapes += len(el)
    xml = document(meta_element(dataset, len(elements)), elements)
    summary.files.append(write_text(root, "annotations.xml", xml))
    return summary
