"""Label Studio JSON tasks, export only: accepted shapes as annotations, model proposals as
predictions, so a team can keep reviewing in Label Studio.

Layout::

    tasks.json            a list of tasks, for Label Studio's "Import" (JSON)
    label_config.xml      the labeling interface the results refer to (paste it into the
                          project's Settings -> Labeling Interface)
    images/<image file name>   (with ``copy_images``)

Each task is ``{"data": {"image": URL, "relpath": ...}, "annotations": [...],
"predictions": [...]}``. ``image`` is a Label Studio local-files URL
(``/data/local-files/?d=images/<name>``; without ``copy_images``, ``?d=<project relpath>``):
serve the export folder (or the project folder) as Label Studio's
``LOCAL_FILES_DOCUMENT_ROOT``, or replace the prefix for your storage.

Shapes with status ``accepted`` form one annotation; ``pending`` ones (model proposals, with
``include_pending``) form one prediction per model (``source``) carrying ``model_version``,
the mean ``score`` and each result's own ``score``. Results are in Label Studio's units:
percentages of the image size (``x = 100 * px / width``), ``original_width``/``height`` in
pixels:

- box -> ``rectanglelabels`` (``x, y, width, height, rotation: 0``), tag ``box``;
- polygon -> ``polygonlabels`` (``points: [[x%, y%], ...], closed: true``), tag ``polygon``;
- point -> ``keypointlabels`` (``x, y, width``), tag ``keypoint``;
- mask -> ``brushlabels`` (``format: "rle"``), tag ``brush``: Label Studio's brush RLE — the
  RGBA image of the mask (every channel 255 on the mask, 0 elsewhere) flattened row by row and
  packed with the rle-pack bit format Label Studio decodes (32-bit length, 5-bit word size,
  four 4-bit run-size classes, then runs). Holes and several parts are kept.

A shape without a class is skipped (Label Studio needs a label).
"""

from __future__ import annotations

import urllib.parse
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
    write_json,
    write_text,
)
from backend.formats.masks import shape_pixels

TAGS = {"box": ("box", "rectanglelabels"), "polygon": ("polygon", "polygonlabels"),
        "point": ("keypoint", "keypointlabels"), "mask": ("brush", "brushlabels")}
CONFIG_TAGS = (("RectangleLabels", "box"), ("PolygonLabels", "polygon"),
               ("KeyPointLabels", "keypoint"), ("BrushLabels", "brush"))
KEYPOINT_WIDTH = 0.5          # marker size in percent of the image width
_RUN_CLASSES = (3, 4, 8, 16)  # bits of the four run-length classes (Label Studio's choice)


# -- brush RLE --------------------------------------------------------------------------------

def brush_rle(pixels: np.ndarray) -> list[int]:
    """Label Studio's brush ``rle`` (a list of byte values) of a bool ``H x W`` mask.

    The encoded data is the mask as RGBA bytes (``H * W * 4`` values, 255 on the mask). Each
    run of equal bytes is one record: ``1``, a 2-bit run-size class, ``length - 1`` in that
    many bits, then the 8-bit value; runs longer than 65536 are split.
    """
    flat = np.asarray(pixels, dtype=bool).ravel()
    n = flat.size * 4
    bits = [f"{n:032b}", f"{8 - 1:05b}", "".join(f"{b - 1:04b}" for b in _RUN_CLASSES)]
    if flat.size:
        change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        starts = np.concatenate(([0], change))
        lengths = np.diff(np.concatenate((starts, [flat.size]))) * 4
        for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
            value = "11111111" if flat[start] else "00000000"
            while length > 0:
                take = min(length, 1 << 16)
                bits.append(_run_record(take) + value)
                length -= take
    text = "".join(bits)
    text += "0" * (-len(text) % 8)
    packed = np.packbits(np.frombuffer(text.encode("ascii"), dtype=np.uint8) - 48)
    return [int(b) for b in packed]


def _run_record(length: int) -> str:
    """Header of a run of ``length`` (1..65536) equal words."""
    for k, size in enumerate(_RUN_CLASSES):
        if length - 1 < (1 << size):
            return f"1{k:02b}{length - 1:0{size}b}"
    raise ValueError(f"run of {length} words is too long for one record")


# -- pure converters --------------------------------------------------------------------------

def shape_to_result(shape: dict[str, Any], label: str, width: int, height: int
                    ) -> tuple[dict[str, Any] | None, str]:
    """One Label Studio result for one shape, or ``(None, reason)``."""
    kind, g = shape["kind"], shape["geometry"]
    from_name, rtype = TAGS[kind]

    def px(x: float) -> float:
        return 100.0 * x / width

    def py(y: float) -> float:
        return 100.0 * y / height

    if kind == "box":
        value: dict[str, Any] = {"x": px(g[0]), "y": py(g[1]), "width": px(g[2] - g[0]),
                                 "height": py(g[3] - g[1]), "rotation": 0}
    elif kind == "polygon":
        value = {"points": [[px(x), py(y)] for x, y in g], "closed": True}
    elif kind == "point":
        value = {"x": px(g[0]), "y": py(g[1]), "width": KEYPOINT_WIDTH}
    else:
        try:
            pixels = shape_pixels(shape, height, width)
        except ValueError as exc:
            return None, str(exc)
        if pixels is None or not pixels.any():
            return None, "its mask is empty"
        value = {"format": "rle", "rle": brush_rle(pixels)}
    value[rtype] = [label]
    result = {"id": f"s{shape['id']}", "type": rtype, "from_name": from_name,
              "to_name": "image", "original_width": width, "original_height": height,
              "image_rotation": 0, "value": value,
              "origin": "manual" if shape["source"] == "manual" else "prediction"}
    if shape.get("score") is not None:
        result["score"] = float(shape["score"])
    return result, ""


def item_to_task(item: ImageItem, names: dict[int, str], image_url: str
                 ) -> tuple[dict[str, Any], list[tuple[dict[str, Any], str]]]:
    """The task of one image and the shapes left out, each with the reason."""
    accepted: list[dict[str, Any]] = []
    predicted: dict[str, list[tuple[dict[str, Any], float | None]]] = {}
    skipped = []
    for shape in item.shapes:
        if shape["class_id"] not in names:
            skipped.append((shape, "it has no class"))
            continue
        result, reason = shape_to_result(shape, names[shape["class_id"]], item.width,
                                         item.height)
        if result is None:
            skipped.append((shape, reason))
        elif shape["status"] == "pending":
            predicted.setdefault(shape["source"], []).append((result, shape.get("score")))
        else:
            accepted.append(result)
    task: dict[str, Any] = {"data": {"image": image_url, "relpath": item.relpath}}
    task["annotations"] = [{"result": accepted, "ground_truth": False}] if accepted else []
    task["predictions"] = [_prediction(source, entries) for source, entries in predicted.items()]
    return task, skipped


def _prediction(source: str, entries: list[tuple[dict[str, Any], float | None]]
                ) -> dict[str, Any]:
    scores = [s for _, s in entries if s is not None]
    out: dict[str, Any] = {"model_version": source, "result": [r for r, _ in entries]}
    if scores:
        out["score"] = float(np.mean(scores))
    return out


def label_config(classes: list[tuple[str, str]]) -> str:
    """The labeling interface: one control tag per kind, each listing every class."""
    view = ET.Element("View")
    ET.SubElement(view, "Image", {"name": "image", "value": "$image", "zoom": "true"})
    for tag, name in CONFIG_TAGS:
        control = ET.SubElement(view, tag, {"name": name, "toName": "image"})
        for label, color in classes:
            ET.SubElement(control, "Label", {"value": label, "background": color})
    ET.indent(view, space="  ")
    return ET.tostring(view, "unicode") + "\n"


def image_url(item: ImageItem, copied: bool) -> str:
    path = f"images/{item.file_name}" if copied else item.relpath
    return "/data/local-files/?d=" + urllib.parse.quote(path, safe="/")


# -- the wrapper ------------------------------------------------------------------------------

def export(dataset: Dataset, root: Path, options: ExportOptions,
           progress: Progress) -> ExportSummary:
    summary = ExportSummary("labelstudio", root)
    names = {c.id: c.name for c in dataset.classes}
    tasks = []
    for n, im in enumerate(dataset.images):
        report(progress, n, len(dataset.images), f"Converting {im.relpath}")
        task, skipped = item_to_task(im, names, image_url(im, options.copy_images))
        if im.split:
            task["data"]["split"] = im.split
        for shape, reason in skipped:
            summary.skip(im, shape, reason)
        tasks.append(task)
        if options.copy_images:
            write_image(im, root.joinpath("images", *PurePosixPath(im.file_name).parts))
        summary.images += 1
        summary.shapes += len(im.shapes) - len(skipped)
    summary.files.append(write_json(root, "tasks.json", tasks, indent=1))
    summary.files.append(write_text(root, "label_config.xml",
                                    label_config([(c.name, c.color) for c in dataset.classes])))
    return summary
