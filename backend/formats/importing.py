"""What every import shares: matching annotation files to project images, reading JSON, and
committing the shapes as one transaction and one undo step.

Import is all or nothing: parse and validate every file first (raise
:class:`~backend.formats.options.FormatError` naming the file and the problem), match images
with :class:`ImageMatcher`, collect :func:`import_item` records, then :func:`commit_import`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from backend.formats.options import FormatError, ImportReport

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
                        skipped)


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
    except ValueError as exc:
        raise FormatError(f"The {what} '{path}' is not valid JSON ({exc}). Was it cut short "
                          "or edited by hand?", detail={"file": str(path)}) from exc
