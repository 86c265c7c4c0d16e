"""labelme: one JSON per image, next to the image (labelme 5.x's ``LabelFile`` layout).

Layout: ``<image file name>`` and ``<image stem>.json`` side by side, in the project's folder
structure, under ``train/``, ``val/``, ``test/`` when a split is asked for. ``imagePath`` is
the image's name relative to its JSON, ``imageData`` is null (labelme then reads the file),
``imageHeight``/``imageWidth`` are the displayed size. Without ``copy_images`` the JSON files
alone are written: put them next to the images (the project folder mirrors the layout) and
labelme opens them.

Coordinates: labelme's canvas has the same convention as ours (pixel ``c`` covers ``[c, c+1]``,
EXIF orientation applied when it loads an image), so points are written as they are.

Shapes (``shape_type``):

- box -> ``rectangle`` with two corner points; polygon -> ``polygon``; point -> ``point``.
- mask -> with ``segmentation="polygon"`` (the default) one ``polygon`` per part, the parts of
  one mask sharing a ``group_id`` (labelme's "same instance"); a mask with holes cannot be
  polygons, so it is written as a labelme ``mask`` shape instead (noted in the summary). With
  ``segmentation="rle"`` every mask is a ``mask`` shape: ``points`` are the inclusive pixel
  indices of its box ``[[x1, y1], [x2, y2]]`` and ``mask`` a base64 PNG of that crop, as
  ``labelme.utils.shapes_to_label`` reads it.

Import reads ``rectangle``, ``polygon``, ``point`` and ``mask`` shapes; polygons and masks of
one label sharing a ``group_id`` become one mask shape. ``circle``, ``line``, ``linestrip``
and other types are skipped with the reason. All or nothing: a malformed file stops the
import, naming the file and the shape, before anything is written.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

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
    mask_parts,
    read_json,
    report,
    write_image,
    write_json,
)
from backend.formats.importing import (
    FAR_REASON,
    add_item,
    is_number,
    matched_size,
    valid_class_name,
    within_reach,
)
from backend.formats.masks import png_bytes, tight_box, unique_stems
from backend.geometry import rle
from backend.geometry.masks import polygons_to_mask

if TYPE_CHECKING:
    from backend.store import Project

VERSION = "5.5.0"
HOLES_NOTE = ("it has holes, which labelme polygons cannot hold, so it is written as a "
              "labelme mask shape")


# -- pure converters: export ------------------------------------------------------------------

def labelme_shape(label: str, points: list[list[float]], shape_type: str,
                  group_id: int | None = None, mask: str | None = None) -> dict[str, Any]:
    """One entry of ``shapes``, with the keys labelme 5.x writes, in its order."""
    return {"label": label, "points": points, "group_id": group_id, "description": "",
            "shape_type": shape_type, "flags": {}, "mask": mask}


def encode_mask(pixels: np.ndarray) -> tuple[list[list[float]], str] | None:
    """``(points, base64 PNG)`` of a labelme mask shape for a full-image bool mask; None if
    it is empty. ``points`` are the inclusive pixel indices of the crop's corners."""
    box = tight_box(pixels)
    if box is None:
        return None
    c0, r0, c1, r1 = box
    crop = pixels[r0:r1 + 1, c0:c1 + 1].astype(np.uint8)
    data = base64.b64encode(png_bytes(crop)).decode("ascii")
    return [[float(c0), float(r0)], [float(c1), float(r1)]], data


def shape_to_labelme(shape: dict[str, Any], label: str, segmentation: str,
                     next_group: int) -> tuple[list[dict[str, Any]], str | None]:
    """labelme shapes for one of ours, and a note when it is written in another form than
    asked. ``next_group``: the group_id to use if the shape needs one. An empty list means
    the shape cannot be written (the note says why)."""
    kind, g = shape["kind"], shape["geometry"]
    if kind == "box":
        return [labelme_shape(label, [[g[0], g[1]], [g[2], g[3]]], "rectangle")], None
    if kind == "point":
        return [labelme_shape(label, [[g[0], g[1]]], "point")], None
    if kind == "polygon":
        return [labelme_shape(label, [list(p) for p in g], "polygon")], None
    note = None
    if segmentation == "polygon":
        parts = mask_parts(g)
        if not parts:
            return [], "its mask is empty"
        if all(len(rings) == 1 for rings in parts):
            group = next_group if len(parts) > 1 else None
            return [labelme_shape(label, rings[0].tolist(), "polygon", group)
                    for rings in parts], None
        note = HOLES_NOTE
    encoded = encode_mask(rle.decode(g["rle"]))
    if encoded is None:
        return [], "its mask is empty"
    points, data = encoded
    return [labelme_shape(label, points, "mask", mask=data)], note


def item_to_labelme(item: ImageItem, names: dict[int, str], image_path: str,
                    segmentation: str) -> tuple[dict[str, Any], list[tuple[dict[str, Any], str]],
                                                list[tuple[dict[str, Any], str]]]:
    """The labelme document of one image, the shapes left out and the shapes noted."""
    shapes: list[dict[str, Any]] = []
    skipped: list[tuple[dict[str, Any], str]] = []
    notes: list[tuple[dict[str, Any], str]] = []
    group = 1
    for shape in item.shapes:
        if shape["class_id"] not in names:
            skipped.append((shape, "it has no class"))
            continue
        written, note = shape_to_labelme(shape, names[shape["class_id"]], segmentation, group)
        if not written:
            skipped.append((shape, note or "labelme cannot hold it"))
            continue
        if note:
            notes.append((shape, note))
        if any(s["group_id"] is not None for s in written):
            group += 1
        shapes += written
    doc: dict[str, Any] = {"version": VERSION, "flags": {}, "shapes": shapes,
                           "imagePath": image_path, "imageData": None,
                           "imageHeight": item.height, "imageWidth": item.width}
    return doc, skipped, notes


# -- pure converters: import ------------------------------------------------------------------

def decode_mask(points: list[list[float]], data: Any, width: int, height: int,
                where: str) -> np.ndarray:
    """Full-image bool mask of a labelme mask shape (crop placed at ``points[0]``)."""
    if not isinstance(data, str):
        raise ValueError(f"{where}: a mask shape needs 'mask', a base64 PNG")
    if len(points) != 2:
        raise ValueError(f"{where}: a mask shape needs 2 points (its box), got {len(points)}")
    (x1, y1), (x2, y2) = ((int(round(x)), int(round(y))) for x, y in points)
    # binascii.Error (bad base64) is a ValueError.
    unreadable = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
    try:
        im = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
    except unreadable as exc:
        raise ValueError(f"{where}: 'mask' is not a base64 PNG ({exc})") from exc
    with im:
        # Checked before decoding: a small file may declare a huge image.
        if im.size != (x2 - x1 + 1, y2 - y1 + 1):
            raise ValueError(f"{where}: the mask PNG is {im.size[0]} x {im.size[1]} but its "
                             f"points span {x2 - x1 + 1} x {y2 - y1 + 1} pixels")
        try:
            crop = np.asarray(im)
        except unreadable as exc:
            raise ValueError(f"{where}: 'mask' is not a readable PNG ({exc})") from exc
    if crop.ndim != 2:
        raise ValueError(f"{where}: 'mask' must be a one-channel PNG, got shape {crop.shape}")
    out = np.zeros((height, width), dtype=bool)
    ys, xs = slice(max(y1, 0), min(y2 + 1, height)), slice(max(x1, 0), min(x2 + 1, width))
    if ys.start < ys.stop and xs.start < xs.stop:
        out[ys, xs] = crop[ys.start - y1:ys.stop - y1, xs.start - x1:xs.stop - x1] != 0
    return out


def _points(value: Any, where: str) -> list[list[Any]]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: 'points' must be a non-empty list of [x, y]")
    out = []
    for p in value:
        if not isinstance(p, list) or len(p) != 2 or not all(is_number(v) for v in p):
            raise ValueError(f"{where}: 'points' must be [x, y] pairs of numbers, got {p!r}")
        out.append([p[0], p[1]])     # ints stay ints, so a round trip writes the same text
    return out


def _mask_geometry(pixels: np.ndarray) -> dict[str, Any]:
    encoded = rle.encode(pixels)
    x, y, w, h = rle.to_bbox(encoded)
    return {"rle": encoded, "bbox": [x, y, x + w, y + h]}


class _Group:
    def __init__(self, key: tuple[str | None, int]) -> None:
        self.key = key


def labelme_to_items(doc: Any, width: int, height: int
                     ) -> tuple[list[tuple[str | None, str, Any, str]], list[tuple[str, str]]]:
    """``(class name or None, kind, geometry, where)`` for every shape of a labelme document,
    and ``(where, reason)`` for shapes it leaves out. Raises ValueError naming the shape."""
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        raise ValueError("it has no 'shapes' list, so it is not a labelme file")
    items: list[Any] = []      # (name, kind, geometry), or a group key resolved below
    skipped: list[tuple[str, str]] = []
    groups: dict[tuple[str | None, int], list[tuple[str, list[list[float]], Any, str]]] = {}
    for i, s in enumerate(doc["shapes"]):
        where = f"shapes[{i}]"
        if not isinstance(s, dict):
            raise ValueError(f"{where} must be an object")
        label = s.get("label")
        if not isinstance(label, str):
            raise ValueError(f"{where}: 'label' must be text, got {label!r}")
        try:
            name = valid_class_name(label) if label.strip() else None
        except ValueError as exc:
            raise ValueError(f"{where}: 'label' cannot be a class name ({exc})") from exc
        kind = s.get("shape_type") or "polygon"
        points = _points(s.get("points"), where)
        group = s.get("group_id")
        if group is not None and (isinstance(group, bool) or not isinstance(group, int)):
            raise ValueError(f"{where}: 'group_id' must be an integer or null, got {group!r}")
        if kind == "rectangle":
            if len(points) != 2:
                raise ValueError(f"{where}: a rectangle needs 2 points, got {len(points)}")
            (x0, y0), (x1, y1) = points
            items.append((name, "box", [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)],
                          where))
        elif kind == "point":
            if len(points) != 1:
                raise ValueError(f"{where}: a point needs 1 point, got {len(points)}")
            items.append((name, "point", points[0], where))
        elif kind in ("polygon", "mask"):
            if kind == "polygon" and len(points) < 3:
                raise ValueError(f"{where}: a polygon needs at least 3 points, got {len(points)}")
            if kind == "mask":  # decode now, so a broken mask fails even inside a group
                decode_mask(points, s.get("mask"), width, height, where)
            key = (name, group) if group is not None else (name, -1 - i)
            if key not in groups:
                items.append(_Group(key))  # resolved below; shapes keep the file's order
            groups.setdefault(key, []).append((kind, points, s.get("mask"), where))
        else:
            skipped.append((where, f"labelme '{kind}' shapes have no Fieldmark equivalent "
                                   "(boxes, polygons, points and masks are imported)"))
    out: list[tuple[str | None, str, Any, str]] = []
    for entry in items:
        if not isinstance(entry, _Group):
            out.append(entry)
            continue
        name, members = entry.key[0], groups[entry.key]
        if len(members) == 1 and members[0][0] == "polygon":
            out.append((name, "polygon", members[0][1], members[0][3]))
            continue
        if not within_reach(points for _, points, _, _ in members):
            skipped.append((members[0][3], FAR_REASON))
            continue
        union = np.zeros((height, width), dtype=bool)
        for kind, points, data, where in members:
            union |= (decode_mask(points, data, width, height, where) if kind == "mask"
                      else polygons_to_mask([[points]], height, width))
        if union.any():
            out.append((name, "mask", _mask_geometry(union), members[0][3]))
        else:
            skipped.append((members[0][3], "its mask covers no pixel of the image"))
    return out, skipped


# -- the wrappers -----------------------------------------------------------------------------

def export(dataset: Dataset, root: Path, options: ExportOptions,
           progress: Progress) -> ExportSummary:
    summary = ExportSummary("labelme", root)
    names = {c.id: c.name for c in dataset.classes}
    prefixes = [f"{im.split}/" if im.split else "" for im in dataset.images]
    stems = unique_stems([p + im.file_name for p, im in zip(prefixes, dataset.images,
                                                             strict=True)])
    for n, (im, prefix, stem) in enumerate(zip(dataset.images, prefixes, stems, strict=True)):
        report(progress, n, len(dataset.images), f"Writing {im.relpath}")
        image_name = PurePosixPath(im.file_name).name
        doc, skipped, notes = item_to_labelme(im, names, image_name, options.segmentation)
        for shape, reason in skipped:
            summary.skip(im, shape, reason)
        for shape, note in notes:
            summary.note(im, shape, note)
        summary.files.append(write_json(root, f"{stem}.json", doc, indent=2))
        if options.copy_images:
            write_image(im, root.joinpath(*PurePosixPath(prefix + im.file_name).parts))
        summary.images += 1
        summary.shapes += len(im.shapes) - len(skipped)
    return summary


def _json_files(src: Path) -> tuple[list[Path], Path]:
    if src.is_file():
        return [src], src.parent
    files = sorted(p for p in src.rglob("*.json")
                   if p.is_file() and not any(part.startswith(".")
                                              for part in p.relative_to(src).parts))
    if not files:
        raise FormatError(f"There are no .json files in '{src}'. Choose a folder of labelme "
                          "files or one labelme .json file.", detail={"file": str(src)})
    return files, src


def _image_names(doc: dict[str, Any], path: Path, base: Path) -> list[tuple[str, bool]]:
    """Names to try for the image of ``path``: imagePath relative to the JSON's folder, as
    written, then the JSON's own stem (``True``: match without suffix)."""
    rel_dir = list(path.parent.relative_to(base).parts)
    out: list[tuple[str, bool]] = []
    image_path = doc.get("imagePath")
    if isinstance(image_path, str) and image_path.strip():
        written = PureWindowsPath(image_path).as_posix()
        parts = list(rel_dir)
        for part in written.split("/"):
            if part == "..":
                if parts:
                    parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        out += [("/".join(parts), False), (written, False)]
    out.append(("/".join([*rel_dir, path.stem]), True))
    return out


def import_(project: Project, src: Path, progress: Progress) -> ImportReport:
    if src.is_file() and src.suffix.lower() == ".zip":
        raise FormatError(f"'{src}' is a ZIP file. Unzip it, then import the "
                          "folder of labelme .json files.",
                          detail={"file": str(src)})
    files, base = _json_files(src)
    matcher = ImageMatcher(project.images())
    items: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    matched: set[int] = set()
    for n, path in enumerate(files):
        report(progress, n, len(files), f"Reading {path.name}")
        doc = read_json(path, "labelme file")
        if not (isinstance(doc, dict) and "shapes" in doc):
            if src.is_file():
                raise FormatError(f"'{path}' is not a labelme file: it has no 'shapes' list.",
                                  detail={"file": str(path)})
            skipped.append({"item": str(path), "reason": "not a labelme file (no 'shapes')"})
            continue
        rec, reason = None, ""
        for name, stem in _image_names(doc, path, base):
            rec, why = matcher.match(name, stem=stem)
            if rec is not None:
                break
            reason = reason or why
        if rec is None:
            skipped.append({"item": str(path), "reason": reason})
            continue
        size, why = matched_size(project, rec, (doc.get("imageWidth"), doc.get("imageHeight")))
        if size is None:
            skipped.append({"item": str(path), "reason": why})
            continue
        try:
            shapes, left_out = labelme_to_items(doc, *size)
        except ValueError as exc:
            raise FormatError(f"The labelme file '{path}' is malformed: {exc}. Nothing was "
                              "imported.", detail={"file": str(path)}) from exc
        matched.add(rec["id"])
        skipped += [{"item": f"{path} {where}", "reason": why} for where, why in left_out]
        for name, kind, geometry, where in shapes:
            add_item(items, skipped, f"{path} {where}", rec["id"], size, name, kind, geometry)
    report(progress, len(files), len(files), "Saving")
    return commit_import(project, "labelme", items, skipped, len(matched), "Import labelme")
