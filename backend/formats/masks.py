"""Semantic masks in the pixel-classifier training layout (export only), and the pixel helpers
the other raster-writing formats (VOC, CVAT, Label Studio) share.

Layout::

    config.json
    train/images/<image>          (with ``copy_images``)
    train/masks/<image stem>.png
    validation/images/...  validation/masks/...
    test/images/...        test/masks/...      (only with a three-way split)

A mask is a single-channel 8-bit PNG the size of its image: the value of a pixel is the
0-based index of its class (the project's class order, as in ``config.json["classes"]``), and
**255 means unlabeled** — so sparse labels train: a loss that ignores 255 learns only from the
pixels someone labeled. Hence at most 255 classes (0..254).

Decisions (they shape what a trainer sees):

- Only polygons and masks say which pixels are the object. Boxes and points are **not** drawn
  (a filled box would teach that the background inside it is the object); each one is listed
  in the summary's ``skipped`` with the reason.
- Overlaps: shapes are painted from the largest to the smallest (pixel count), so a small
  shape lying on a large one stays visible (a "lesion" on a "leaf"); equal sizes paint in
  shape order, the later on top.
- Polygons are rasterized by pixel centers (``backend.geometry.masks.polygons_to_mask``).
- Splits: ``train`` -> ``train/``, ``val`` -> ``validation/``, ``test`` -> ``test/``. Without a
  split option the images are split 80/20 (seeded, stratified, :func:`assign_splits`), because
  a pixel classifier needs a validation set.
- ``class_weights[c] = N / (K * n_c)``: inverse frequency over the *labeled* pixels of the
  training masks (``n_c`` pixels of class ``c``, ``N`` labeled pixels in all, ``K`` classes
  with ``n_c > 0``), so the weights average to 1 over labeled pixels. A class with no training
  pixel gets 0.0 (nothing to weigh). Validation pixels are left out so that nothing about the
  validation set leaks into training; ``config.json["pixel_counts"]`` has every split's counts.
"""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from backend.formats.base import (
    Dataset,
    ExportOptions,
    ExportSummary,
    FormatError,
    ImageItem,
    Progress,
    assign_splits,
    report,
    write_image,
    write_json,
)
from backend.geometry import rle
from backend.geometry.masks import polygons_to_mask

UNLABELED = 255
MAX_CLASSES = 255
FOLDERS = {"train": "train", "val": "validation", "test": "test"}
DEFAULT_SPLIT = (0.8, 0.2)

NOT_PIXELS = {
    "box": "a box does not say which pixels are the object; draw a polygon or a mask to "
           "label pixels",
    "point": "a point does not cover pixels; draw a polygon or a mask to label pixels",
}


# -- pixel helpers shared by the raster formats -----------------------------------------------

def shape_pixels(shape: dict[str, Any], height: int, width: int) -> np.ndarray | None:
    """bool ``height x width`` pixels of a polygon or mask shape; None for boxes and points.

    Raises ValueError when a mask's RLE is not the image's size (callers report the shape).
    """
    kind, geometry = shape["kind"], shape["geometry"]
    if kind == "polygon":
        return polygons_to_mask([[geometry]], height, width)
    if kind == "mask":
        h, w, _ = rle.counts_of(geometry["rle"])
        if (h, w) != (height, width):
            raise ValueError(f"its mask is {w} x {h} pixels but the image is {width} x {height}")
        return rle.decode(geometry["rle"])
    return None


def paint_order(pixels: list[np.ndarray]) -> list[int]:
    """Indices of ``pixels`` in painting order: largest first, so smaller shapes end on top;
    equal sizes keep their order (the later is painted later, so it is on top)."""
    areas = [int(p.sum()) for p in pixels]
    return sorted(range(len(pixels)), key=lambda i: (-areas[i], i))


def tight_box(pixels: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(col0, row0, col1, row1)`` inclusive pixel indices around the set pixels, or None."""
    cols = np.flatnonzero(pixels.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(pixels.any(axis=1))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def unique_stems(names: list[str]) -> list[str]:
    """``names`` ("/"-separated file names) without their suffix, made unique.

    "a/x.jpg" -> "a/x"; when two names would give the same stem (ignoring case, as Windows and
    macOS file systems do), those keep their suffix instead: "x.jpg" -> "x.jpg", "x.png" ->
    "x.png" (so their masks become "x.jpg.png" and "x.png.png").
    """
    stems = [str(PurePosixPath(n).with_suffix("")) for n in names]
    seen: dict[str, int] = {}
    for s in stems:
        seen[s.casefold()] = seen.get(s.casefold(), 0) + 1
    return [n if seen[s.casefold()] > 1 else s for n, s in zip(names, stems, strict=True)]


def png_bytes(array: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """PNG of a 2-D uint8 array: mode "L", or mode "P" with ``palette`` (N x 3 uint8)."""
    if palette is None:
        im = Image.fromarray(array.astype(np.uint8), mode="L")
    else:
        im = Image.fromarray(array.astype(np.uint8), mode="P")
        im.putpalette(palette.astype(np.uint8).ravel().tolist())
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def write_bytes(root: Path, relpath: str, data: bytes) -> str:
    """Write ``root/relpath`` inside the staging folder; returns ``relpath``."""
    path = root.joinpath(*PurePosixPath(relpath).parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return relpath


# -- pure converters --------------------------------------------------------------------------

def shapes_to_label_map(shapes: list[dict[str, Any]], class_index: dict[int, int], height: int,
                        width: int) -> tuple[np.ndarray, list[tuple[dict[str, Any], str]]]:
    """uint8 ``height x width`` class-index map (255 unlabeled) and the shapes left out, each
    with the reason. ``class_index``: class id -> 0-based index (< 255)."""
    skipped: list[tuple[dict[str, Any], str]] = []
    drawn: list[tuple[int, np.ndarray]] = []
    for shape in shapes:
        if shape["kind"] in NOT_PIXELS:
            skipped.append((shape, NOT_PIXELS[shape["kind"]]))
            continue
        if shape["class_id"] not in class_index:
            skipped.append((shape, "it has no class"))
            continue
        try:
            pixels = shape_pixels(shape, height, width)
        except ValueError as exc:
            skipped.append((shape, str(exc)))
            continue
        if pixels is None or not pixels.any():
            skipped.append((shape, "it covers no pixel centre of the image"))
            continue
        drawn.append((class_index[shape["class_id"]], pixels))
    label = np.full((height, width), UNLABELED, dtype=np.uint8)
    for i in paint_order([p for _, p in drawn]):
        value, pixels = drawn[i]
        label[pixels] = value
    return label, skipped


def pixel_counts(label: np.ndarray, n_classes: int) -> np.ndarray:
    """int64 ``(n_classes,)`` labeled-pixel counts of a label map (255 not counted)."""
    values = label[label != UNLABELED]
    return np.bincount(values.ravel(), minlength=n_classes)[:n_classes].astype(np.int64)


def class_weights(counts: np.ndarray) -> list[float]:
    """Inverse-frequency weights ``N / (K * n_c)`` (see the module docstring); 0.0 for a class
    without pixels."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    if not present.any():
        return [0.0] * int(counts.size)
    total = counts.sum()
    weights = np.zeros_like(counts)
    weights[present] = total / (present.sum() * counts[present])
    return [float(w) for w in weights]


def folders_for(dataset: Dataset, options: ExportOptions) -> dict[int, str]:
    """image id -> output folder ("train", "validation", "test")."""
    if options.split:
        return {im.id: FOLDERS[im.split or "train"] for im in dataset.images}
    names = assign_splits(dataset.images, DEFAULT_SPLIT, options.seed)
    return {image_id: FOLDERS[name] for image_id, name in names.items()}


def build_config(dataset: Dataset, counts: dict[str, np.ndarray],
                 images: dict[str, int]) -> dict[str, Any]:
    train = counts.get("train", np.zeros(len(dataset.classes), dtype=np.int64))
    order = [f for f in FOLDERS.values() if f in counts]
    return {
        "classes": [c.name for c in dataset.classes],
        "class_weights": class_weights(train),
        "unlabeled_index": UNLABELED,
        "colors": [c.color for c in dataset.classes],
        "mask_format": "single-channel 8-bit PNG, value = class index, 255 = unlabeled",
        "images": {f: images[f] for f in order},
        "pixel_counts": {f: [int(n) for n in counts[f]] for f in order},
    }


# -- the wrapper ------------------------------------------------------------------------------

def export(dataset: Dataset, root: Path, options: ExportOptions,
           progress: Progress) -> ExportSummary:
    summary = ExportSummary("masks", root)
    n_classes = len(dataset.classes)
    if n_classes > MAX_CLASSES:
        raise FormatError(f"Semantic masks hold at most {MAX_CLASSES} classes (values 0-254; 255 "
                          f"means unlabeled) but the project has {n_classes}. Merge or delete "
                          "classes, or export COCO instead.", detail={"classes": n_classes})
    index = dataset.class_index()
    folders = folders_for(dataset, options)
    stems = unique_stems([im.file_name for im in dataset.images])
    counts: dict[str, np.ndarray] = {}
    images: dict[str, int] = {}
    for n, (im, stem) in enumerate(zip(dataset.images, stems, strict=True)):
        report(progress, n, len(dataset.images), f"Writing the mask of {im.relpath}")
        folder = folders[im.id]
        label = _label_map(im, index, summary)
        summary.files.append(write_bytes(root, f"{folder}/masks/{stem}.png", png_bytes(label)))
        counts.setdefault(folder, np.zeros(n_classes, dtype=np.int64))
        counts[folder] += pixel_counts(label, n_classes)
        images[folder] = images.get(folder, 0) + 1
        if options.copy_images:
            write_image(im, root.joinpath(folder, "images", *PurePosixPath(im.file_name).parts))
        summary.images += 1
    summary.files.append(write_json(root, "config.json",
                                    build_config(dataset, counts, images), indent=2))
    report(progress, len(dataset.images), len(dataset.images), "Masks written")
    return summary


def _label_map(im: ImageItem, index: dict[int, int], summary: ExportSummary) -> np.ndarray:
    label, skipped = shapes_to_label_map(im.shapes, index, im.height, im.width)
    for shape, reason in skipped:
        summary.skip(im, shape, reason)
    summary.shapes += len(im.shapes) - len(skipped)
    return label
