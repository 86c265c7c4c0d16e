"""YOLO (Ultralytics layout): detect (``yolo``) and segment (``yolo-seg``, :data:`SEGMENT`).

Layout written::

    data.yaml                       train/val[/test] folders, nc, names (0..K-1, class order)
    images/<split>/<file_name>      with copy_images
    labels/<split>/<file_name minus suffix>.txt

Without a split everything is in ``train`` and ``data.yaml`` points ``val`` at it too (Ultralytics
requires a val set). ``data.yaml`` has no ``path:`` key, so Ultralytics resolves the folders next
to the file wherever the export is moved. Every exported image gets a label file, empty when it
has no shapes (a background image). Without image copies, put the images into ``images/<split>/``
yourself: Ultralytics finds labels by replacing ``/images/`` with ``/labels/`` in image paths.

Lines: ``class cx cy w h`` (detect) or ``class x1 y1 x2 y2 ...`` (segment), normalized by the
displayed image size (EXIF applied; copied images are written upright, see
:func:`backend.formats.base.write_image`), clipped to [0, 1] because Ultralytics drops every
label of an image that has a coordinate outside it. Detect writes the bounding box of every
shape kind; segment writes a box as its 4 corners and a mask as its exact pixel outline. A
segment line holds one ring, so a mask with several parts or holes is written as one ring
whose parts and holes are joined by zero-width cuts (what Ultralytics' own COCO converter does);
such shapes are listed in ``summary.notes``. Points and shapes without a class are skipped.

Import (:mod:`backend.formats.yolo_read`) reads both line kinds (a trailing confidence, as in Ultralytics predictions, becomes the
score), class names from ``data.yaml`` (or ``classes.txt`` / ``obj.names``), and matches label
files to project images by path without the suffix.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from backend import __version__
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
    write_text,
)
from backend.geometry import rle as rle_codec

if TYPE_CHECKING:
    from backend.store import Project


# -- export -----------------------------------------------------------------------------------

def _clip(v: float) -> float:
    return 0.0 if v < 0.0 else 1.0 if v > 1.0 else v


def _fmt(values: list[float]) -> str:
    # 8 decimals (not the usual 6): 1e-8 of a 10,000-pixel side is 0.0001 px, so coordinates
    # survive a round trip; trailing zeros are dropped to keep the files small.
    return " ".join(f"{_clip(v):.8f}".rstrip("0").rstrip(".") for v in values)


def join_rings(rings: list[np.ndarray]) -> np.ndarray:
    """One ring through all ``rings`` (parts and holes), joined by zero-width cuts.

    Each further ring is linked from its nearest vertex to the nearest vertex of what is joined
    so far; the path goes out along the cut, round the ring, and back. A cut encloses no area,
    so even-odd and non-zero filling both give the union of the parts minus the holes.
    """
    out = rings[0]
    for ring in rings[1:]:
        d = ((out[:, None, :] - ring[None, :, :]) ** 2).sum(axis=2)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        loop = np.concatenate([ring[j:], ring[:j + 1]])
        out = np.concatenate([out[:i + 1], loop, out[i:]])
    return out


def shape_to_line(shape: dict[str, Any], image: ImageItem, class_index: int, segment: bool,
                  summary: ExportSummary, outline: list[list[np.ndarray]] | None = None
                  ) -> str | None:
    """The label line of ``shape`` (None, reported in ``summary``, when YOLO cannot hold it).
    ``outline``: a mask's :func:`~backend.formats.base.mask_outlines`, when already traced."""
    kind, g = shape["kind"], shape["geometry"]
    w, h = image.width, image.height
    if kind == "point":
        summary.skip(image, shape, "YOLO labels hold boxes and polygons, not points")
        return None
    ring: np.ndarray
    if kind == "mask":
        if list(g["rle"].get("size", [])) != [h, w]:
            summary.skip(image, shape, f"its mask is {g['rle'].get('size')} pixels (height, "
                                       f"width) but the image is [{h}, {w}]")
            return None
        if not segment:
            x, y, bw, bh = rle_codec.to_bbox(g["rle"])
            box = [x, y, x + bw, y + bh]
        else:
            rings = [r for part in (mask_parts(g) if outline is None else outline)
                     for r in part]
            if not rings:
                summary.skip(image, shape, "its mask is empty")
                return None
            if len(rings) > 1:
                summary.note(image, shape, "has several parts or holes: joined into one "
                                           "outline by zero-width cuts")
            ring = join_rings(rings)
    elif kind == "box":
        box = list(g)
        ring = np.array([[g[0], g[1]], [g[2], g[1]], [g[2], g[3]], [g[0], g[3]]], float)
    else:
        ring = np.asarray(g, dtype=np.float64)
        box = [float(ring[:, 0].min()), float(ring[:, 1].min()),
               float(ring[:, 0].max()), float(ring[:, 1].max())]
    if segment:
        norm = (ring / np.array([w, h], dtype=np.float64)).clip(0.0, 1.0)
        if np.ptp(norm[:, 0]) == 0 or np.ptp(norm[:, 1]) == 0:
            summary.skip(image, shape, "it lies outside the image or has no area")
            return None
        return f"{class_index} {_fmt(norm.ravel().tolist())}"
    x0, y0 = _clip(box[0] / w), _clip(box[1] / h)
    x1, y1 = _clip(box[2] / w), _clip(box[3] / h)
    if x1 <= x0 or y1 <= y0:
        summary.skip(image, shape, "it lies outside the image or has no area")
        return None
    return f"{class_index} {_fmt([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])}"


def dataset_to_labels(dataset: Dataset, segment: bool, summary: ExportSummary
                      ) -> dict[int, str]:
    """image id -> the text of its label file."""
    index = dataset.class_index()
    outlines: dict[int, list[list[np.ndarray]]] = {}
    if segment:   # trace every mask in a few batched calls
        masks = [s for im in dataset.images for s in im.shapes
                 if s["kind"] == "mask" and s["class_id"] is not None]
        outlines = dict(zip([s["id"] for s in masks],
                            mask_outlines([s["geometry"] for s in masks]), strict=True))
    out = {}
    for im in dataset.images:
        lines = []
        for shape in im.shapes:
            if shape["class_id"] is None:
                summary.skip(im, shape, "it has no class")
                continue
            line = shape_to_line(shape, im, index[shape["class_id"]], segment, summary,
                                 outlines.get(shape["id"]))
            if line is not None:
                lines.append(line)
        summary.shapes += len(lines)
        out[im.id] = "".join(line + "\n" for line in lines)
    return out


def _yaml_quote(text: str) -> str:
    """A YAML double-quoted scalar (escapes only what YAML requires)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable() and ch not in "\u2028\u2029\ufeff":
            out.append(ch)
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def data_yaml(names: list[str], splits: list[str]) -> str:
    """``data.yaml`` text; ``splits`` are the folder names under images/ that exist."""
    lines = [f"# YOLO dataset exported by Fieldmark {__version__}.",
             "# Folders are relative to this file (no 'path:' key, so the export can move)."]
    for key in ("train", "val", "test"):
        if key in splits:
            lines.append(f"{key}: images/{key}")
        elif key == "val":
            lines.append("val: images/train  # no validation split was made")
    lines.append(f"nc: {len(names)}")
    lines.append("names:" if names else "names: {}")
    lines += [f"  {i}: {_yaml_quote(name)}" for i, name in enumerate(names)]
    return "\n".join(lines) + "\n"


def _export(dataset: Dataset, root: Path, options: ExportOptions, progress: Progress,
            segment: bool) -> ExportSummary:
    summary = ExportSummary("yolo-seg" if segment else "yolo", root)
    splits = ([n for n, f in zip(SPLIT_NAMES, options.split, strict=False) if f > 0]
              if options.split else ["train"])
    taken: dict[str, str] = {}
    images = []
    for im in dataset.images:
        label = f"labels/{im.split or 'train'}/{PurePosixPath(im.file_name).with_suffix('')}.txt"
        if label in taken:
            summary.skip(im, None, f"its label file would be the same as that of "
                                   f"'{taken[label]}' (YOLO names labels by the image name "
                                   f"without its suffix), so its {len(im.shapes)} shapes are "
                                   "not exported; rename one of the two images")
            continue
        taken[label] = im.relpath
        images.append((im, label))
    kept = Dataset(dataset.classes, [im for im, _ in images])
    labels = dataset_to_labels(kept, segment, summary)
    for n, (im, label) in enumerate(images):
        write_text(root, label, labels[im.id])
        if options.copy_images:
            report(progress, n, len(images), f"Copying {im.relpath}")
            write_image(im, root.joinpath("images", im.split or "train",
                                          *im.file_name.split("/")))
    for split in splits:
        root.joinpath("labels", split).mkdir(parents=True, exist_ok=True)
        root.joinpath("images", split).mkdir(parents=True, exist_ok=True)
    summary.files.append(write_text(root, "data.yaml",
                                    data_yaml([c.name for c in dataset.classes], splits)))
    summary.images = len(images)
    return summary


def export(dataset: Dataset, root: Path, options: ExportOptions,
           progress: Progress = None) -> ExportSummary:
    """YOLO detect: one ``class cx cy w h`` line per shape."""
    return _export(dataset, root, options, progress, segment=False)


def export_segment(dataset: Dataset, root: Path, options: ExportOptions,
                   progress: Progress = None) -> ExportSummary:
    """YOLO segment: one ``class x1 y1 x2 y2 ...`` line per shape."""
    return _export(dataset, root, options, progress, segment=True)


def import_(project: Project, src: Path, progress: Progress = None) -> ImportReport:
    """Import a YOLO folder (:func:`backend.formats.yolo_read.import_yolo`)."""
    from backend.formats.yolo_read import import_yolo

    return import_yolo(project, src, progress)


SEGMENT = SimpleNamespace(export=export_segment, import_=import_)
"""The ``yolo-seg`` format: segment labels on export; import reads both kinds of line."""
