"""What every import shares: matching annotation files to project images, reading JSON, and
committing the shapes as one transaction and one undo step.

Import is all or nothing: parse and validate every file first (raise
:class:`~backend.formats.options.FormatError` naming the file and the problem; class names
through :func:`valid_class_name`), match images with :class:`ImageMatcher`, collect records
with :func:`add_item`, which cuts each shape to its image and skips, with the reason, one
with nothing inside (:func:`fit_to_image`), then :func:`commit_import`. Files are untrusted:
every malformed input must end in a FormatError, never another exception or a half import
(``tests/reliability/test_import_fuzz.py`` checks that on thousands of broken files).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from backend.errors import InvalidArgument
from backend.formats.options import FormatError, ImportReport
from backend.store.validate import check_class_name

if TYPE_CHECKING:
    from backend.store import Project


def _parts(name: str) -> list[str]:
    return [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]


class ImageMatcher:
    """Finds the project image an annotation file names: by relative path (also when the name
    has extra leading folders, "images/train/a/x.jpg" -> "a/x.jpg"), then by a unique base
    name. ``match`` returns ``(image record, "")`` or ``(None, reason)``."""

    def __init__(self, images: Iterable[dict[str, Any]]) -> None:
        self.by_relpath: dict[str, list[dict[str, Any]]] = {}
        self.by_stem: dict[str, list[dict[str, Any]]] = {}
        self.by_name: dict[str, list[dict[str, Any]]] = {}
        self.by_base_stem: dict[str, list[dict[str, Any]]] = {}
        for rec in images:
            rp = rec["relpath"]
            name = rp.rsplit("/", 1)[-1]
            self.by_relpath.setdefault(rp, []).append(rec)
            self.by_stem.setdefault(str(PurePosixPath(rp).with_suffix("")), []).append(rec)
            self.by_name.setdefault(name, []).append(rec)
            self.by_base_stem.setdefault(PurePosixPath(name).stem, []).append(rec)

    def match(self, name: str, *, stem: bool = False) -> tuple[dict[str, Any] | None, str]:
        """``stem=True``: ``name`` has no image suffix (a YOLO label path) — match without it."""
        parts = _parts(name)
        if not parts:
            return None, "empty file name"
        table = self.by_stem if stem else self.by_relpath
        # Drop leading folders one by one, but never down to the bare name: "b/x.jpg" must
        # not pick a top-level "x.jpg" when "a/x.jpg" exists too (the base-name step decides).
        for k in range(max(1, len(parts) - 1)):
            found = table.get("/".join(parts[k:]), [])
            if found:
                break
        else:
            found = (self.by_base_stem if stem else self.by_name).get(parts[-1], [])
        if len(found) == 1:
            return found[0], ""
        if found:
            return None, (f"'{name}' matches {len(found)} images in the project "
                          f"({', '.join(r['relpath'] for r in found[:3])}); rename one")
        return None, f"no image '{name}' in the project"


def import_item(image_id: int, class_name: str | None, kind: str, geometry: Any,
                **extra: Any) -> dict[str, Any]:
    """One shape to import: the store's shape fields plus the image id and a class by name."""
    return {"image_id": image_id, "class_name": class_name, "kind": kind,
            "geometry": geometry, **extra}


def valid_class_name(name: Any) -> str:
    """A class name read from a file, stripped; ValueError saying what is wrong with it (the
    caller names the file). Checked here, not left to the store, whose message cannot say
    which file and field the name came from."""
    try:
        name = check_class_name(name)
    except InvalidArgument as exc:
        raise ValueError(exc.message) from exc
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:   # a lone surrogate, from a JSON "\ud800" escape
        raise ValueError(f"name must be Unicode text, got {name!r}.") from None
    return name


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool); False for an integer too large for a float too,
    where ``math.isfinite`` would raise OverflowError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


# Beyond this many pixels a coordinate is not a position in any image (and clipping arithmetic
# on it could overflow to inf - inf = nan).
_FAR = 1e9
FAR_REASON = "a coordinate is not a pixel position (far outside any image)"


def within_reach(rings: Iterable[Iterable[Sequence[float]]]) -> bool:
    """Whether every point of ``rings`` can be a pixel position; rasterize only those."""
    return all(abs(v) <= _FAR for ring in rings for p in ring for v in p)


def _clip_ring(ring: list[list[float]], width: float, height: float) -> list[list[float]]:
    """The part of a ring inside ``[0, width] x [0, height]`` (Sutherland-Hodgman: the image
    is convex, so one pass per edge gives the exact intersection)."""
    pts = ring
    for axis, limit, below in ((0, 0.0, False), (0, width, True), (1, 0.0, False),
                               (1, height, True)):
        out: list[list[float]] = []
        for k, cur in enumerate(pts):
            prev = pts[k - 1]
            cur_in = cur[axis] <= limit if below else cur[axis] >= limit
            prev_in = prev[axis] <= limit if below else prev[axis] >= limit
            if cur_in != prev_in:
                t = (limit - prev[axis]) / (cur[axis] - prev[axis])
                cross = [prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])]
                cross[axis] = limit
                out.append(cross)
            if cur_in:
                out.append(cur)
        pts = out
        if not pts:
            break
    clamped = [[min(max(x, 0.0), width), min(max(y, 0.0), height)] for x, y in pts]
    return [p for k, p in enumerate(clamped) if p != clamped[k - 1]] if len(clamped) > 1 \
        else clamped


def _area(ring: list[list[float]]) -> float:
    return abs(sum(ring[k - 1][0] * y - x * ring[k - 1][1] for k, (x, y) in enumerate(ring))) / 2


def fit_to_image(kind: str, geometry: Any, size: tuple[int, int]) -> tuple[Any, str]:
    """``(geometry, "")`` with what lies outside the ``(width, height)`` image cut off, or
    ``(None, reason)`` when nothing of the shape is left. Shapes inside are returned as they
    are (so round trips stay exact). Masks are made at the image size and pass through."""
    if kind == "mask":
        return geometry, ""
    width, height = size
    flat = geometry if kind in ("box", "point") else [v for p in geometry for v in p]
    if not all(is_number(v) and abs(v) <= _FAR for v in flat):
        return None, FAR_REASON
    outside = f"it lies outside the {width} x {height} image"
    if kind == "point":
        x, y = geometry
        return (geometry, "") if 0 <= x <= width and 0 <= y <= height else (None, outside)
    if kind == "box":
        x0, y0, x1, y1 = geometry
        if x1 <= x0 or y1 <= y0:
            return None, "its box has no area"
        box = [min(max(x0, 0), width), min(max(y0, 0), height),
               min(max(x1, 0), width), min(max(y1, 0), height)]
        if box[2] <= box[0] or box[3] <= box[1]:
            return None, outside
        return (geometry if box == list(geometry) else box), ""
    if _area(geometry) <= 0:
        return None, "its polygon has no area"
    if all(0 <= x <= width and 0 <= y <= height for x, y in geometry):
        return geometry, ""
    ring = _clip_ring(geometry, width, height)
    if len(ring) < 3 or _area(ring) <= 0:
        return None, outside
    return ring, ""


def matched_size(project: Project, rec: dict[str, Any], written: Sequence[Any]
                 ) -> tuple[tuple[int, int] | None, str]:
    """``((w, h), "")`` of the project image an annotation file matched, or ``(None, why)`` the
    file is skipped: the image's size is unknown, or ``written`` (the width and height the file
    states, when it states them) is another size."""
    from backend.formats.dataset import image_size

    size = image_size(project, rec)
    if size is None:
        return None, f"the project image '{rec['relpath']}' cannot be read, so its size is unknown"
    w, h = (list(written) + [None, None])[:2]
    stated = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h))
    if stated and (w, h) != size:
        return None, (f"it is for a {w} x {h} image but '{rec['relpath']}' is {size[0]} x "
                      f"{size[1]} (resized or rotated copy?)")
    return size, ""


def add_item(items: list[dict[str, Any]], skipped: list[dict[str, Any]], what: str,
             image_id: int, size: tuple[int, int], class_name: str | None, kind: str,
             geometry: Any, **extra: Any) -> None:
    """Append the shape to ``items`` cut to its image (:func:`fit_to_image`), or to
    ``skipped`` as ``what`` with the reason when nothing of it is inside."""
    fitted, reason = fit_to_image(kind, geometry, size)
    if fitted is None:
        skipped.append({"item": what, "reason": reason})
    else:
        items.append(import_item(image_id, class_name, kind, fitted, **extra))


def _shape_key(kind: str, geometry: Any) -> tuple[Any, ...]:
    """What makes two shapes "the same" for re-import: a mask's RLE, else the coordinates to
    a thousandth of a pixel (so 3 and 3.0, or YOLO's 8-decimal fractions, compare equal)."""
    if kind == "mask":
        rle = geometry.get("rle", {}) if isinstance(geometry, dict) else {}
        return (kind, str(rle.get("size")), str(rle.get("counts")))
    flat = geometry if kind in ("box", "point") else [c for p in geometry for c in p]
    return (kind, *(round(float(v), 3) for v in flat))


def commit_import(project: Project, fmt: str, items: list[dict[str, Any]],
                  skipped: list[dict[str, Any]], images_matched: int,
                  description: str | None = None,
                  class_names: Sequence[str] = ()) -> ImportReport:
    """Write ``items`` (from :func:`import_item`) in one transaction and one undo step.

    ``class_names``: the source's class list in its order; missing ones are created in that
    order (so a round trip keeps the class order and ids), even those without shapes.

    A shape equal to one already on its image (same class, kind and geometry, see
    :func:`_shape_key`) is skipped, so importing the same file twice, or an export back into
    the project it came from, adds nothing.
    """
    image_ids = sorted({it["image_id"] for it in items})
    names = {c["id"]: c["name"] for c in project.classes()}
    existing = {(s["image_id"], names.get(s["class_id"]), _shape_key(s["kind"], s["geometry"]))
                for s in project.all_shapes(("accepted", "pending", "rejected"),
                                            image_ids=image_ids)}
    fresh = []
    relpaths: dict[int, str] = {}
    for it in items:
        key = (it["image_id"], it["class_name"], _shape_key(it["kind"], it["geometry"]))
        if key in existing:
            if not relpaths:
                relpaths = {im["id"]: im["relpath"] for im in project.images()}
            skipped.append({"item": f"{it['kind']} on {relpaths.get(it['image_id'])}",
                            "reason": "the same shape is already in the project"})
            continue
        existing.add(key)
        fresh.append(it)
    done = project.import_shapes(fresh, description or f"Import {fmt.upper()}",
                                 class_names=[n.strip() for n in class_names])
    return ImportReport(fmt, images_matched, done["shapes_added"], done["classes_added"],
                        [{k: _printable(v) for k, v in s.items()} for s in skipped])


def _printable(value: Any) -> Any:
    """A report string that any output can encode: a file name may hold a lone surrogate (a
    JSON "\\udc80" escape), which makes printing the report to a UTF-8 terminal fail."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file, or raise FormatError naming it and where it is broken."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise FormatError(f"Could not read the {what} '{path}' ({exc.strerror or exc}).",
                          detail={"file": str(path)}) from exc
    except UnicodeDecodeError as exc:
        raise FormatError(f"The {what} '{path}' is not UTF-8 text; is it the right file?",
                          detail={"file": str(path)}) from exc
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise FormatError(f"The {what} '{path}' is nested too deeply to be a real annotation "
                          "file; is it the right file?", detail={"file": str(path)}) from exc
    except ValueError as exc:
        raise FormatError(f"The {what} '{path}' is not valid JSON ({exc}). Was it cut short "
                          "or edited by hand?", detail={"file": str(path)}) from exc
