"""Shapes (boxes, polygons, points, masks) on images; every change is one undo step.

A shape record is ``{"id", "image_id", "class_id", "kind", "geometry", "score", "source",
"prompt", "status", "created", "updated"}`` (see backend/store/validate.py for geometry).

When a person's edit lands on an image whose status is ``new``, the image moves to
``in_progress`` in the same undo step. Adding only ``pending`` proposals (a model's output,
not yet reviewed) leaves the status alone, so a batch run does not make every image look
worked on.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from typing import Any

from backend.errors import InvalidArgument
from backend.store import undo
from backend.store import validate as v
from backend.store.base import UNSET, StoreBase
from backend.store.classes import PALETTE

_COLUMNS = ("id", "image_id", "class_id", "kind", "geometry", "score", "source", "prompt",
            "status", "created", "updated")
_SPEC_KEYS = frozenset({"kind", "geometry", "class_id", "score", "source", "prompt", "status"})


def _record(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "image_id": row["image_id"], "class_id": row["class_id"],
            "kind": row["kind"], "geometry": json.loads(row["geometry"]), "score": row["score"],
            "source": row["source"], "prompt": row["prompt"], "status": row["status"],
            "created": row["created"], "updated": row["updated"]}


def _spec_values(spec: Any, where: str = "") -> dict[str, Any]:
    """Validated column values (without image/time) for one shape given as a dict.

    ``where`` prefixes field names in messages ("shapes[3]" -> "shapes[3].kind").
    """
    def field(name: str) -> str:
        return f"{where}.{name}" if where else name

    if not isinstance(spec, dict):
        raise InvalidArgument(f"{where or 'shape'} must be an object with kind and geometry, "
                              f"got {spec!r}.")
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise InvalidArgument(f"{where or 'shape'} has unknown fields {sorted(unknown)}; "
                              f"allowed are {sorted(_SPEC_KEYS)}.")
    for key in ("kind", "geometry"):
        if key not in spec:
            raise InvalidArgument(f"{field(key)} is required.")
    kind = v.check_choice(spec["kind"], v.KINDS, field("kind"))
    class_id = spec.get("class_id")
    geometry = v.check_geometry(kind, spec["geometry"], field("geometry"))
    return {
        "kind": kind,
        "geometry": v.geometry_json(geometry, field("geometry")),
        "class_id": None if class_id is None else v.check_id(class_id, field("class_id")),
        "score": v.check_score(spec.get("score"), field("score")),
        "source": v.check_source(spec.get("source", "manual"), field("source")),
        "prompt": v.check_optional_text(spec.get("prompt"), field("prompt"), v.MAX_PROMPT),
        "status": v.check_choice(spec.get("status", "accepted"), v.SHAPE_STATUSES,
                                 field("status")),
    }


class ShapesMixin(StoreBase):
    def _shape(self, conn: sqlite3.Connection, shape_id: int) -> dict[str, Any]:
        return _record(self._require(conn, "shapes", shape_id, "shape"))

    def _start_image(self, rec: undo.Recorder, image_id: int) -> None:
        row = rec.conn.execute("SELECT status FROM images WHERE id = ?", (image_id,)).fetchone()
        if row is not None and row[0] == "new":
            rec.update("images", image_id, {"status": "in_progress"})

    def shapes(self, image_id: int, statuses: Iterable[str] = ("accepted", "pending")
               ) -> list[dict[str, Any]]:
        """Shapes of one image with the given statuses, oldest first."""
        v.check_id(image_id, "image_id")
        if isinstance(statuses, str):
            statuses = (statuses,)
        wanted = [v.check_choice(s, v.SHAPE_STATUSES, "statuses") for s in statuses]
        with self._read() as conn:
            self._require(conn, "images", image_id, "image")
            rows = conn.execute(
                f"SELECT * FROM shapes WHERE image_id = ? AND status IN "
                f"({', '.join('?' * len(wanted)) or 'NULL'}) ORDER BY id",
                (image_id, *wanted)).fetchall()
        return [_record(r) for r in rows]

    def all_shapes(self, statuses: Iterable[str] = ("accepted", "pending"),
                   image_ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Shapes of every image (or of ``image_ids``) in one query, by image then id.

        For exports and imports, which would otherwise ask image by image. Rows come as plain
        tuples (not sqlite3.Row): 100,000 shapes are read in well under a second.
        """
        if isinstance(statuses, str):
            statuses = (statuses,)
        wanted = [v.check_choice(s, v.SHAPE_STATUSES, "statuses") for s in statuses]
        sql = (f"SELECT {', '.join(_COLUMNS)} FROM shapes WHERE status IN "
               f"({', '.join('?' * len(wanted)) or 'NULL'})")
        queries: list[tuple[str, list[Any]]] = []
        if image_ids is None:
            queries.append((sql + " ORDER BY image_id, id", wanted))
        else:
            ids = [v.check_id(i, "image_ids") for i in image_ids]
            for at in range(0, len(ids), 500):  # SQLite caps bound parameters
                chunk = ids[at:at + 500]
                queries.append((sql + f" AND image_id IN ({', '.join('?' * len(chunk))})"
                                " ORDER BY image_id, id", [*wanted, *chunk]))
        rows: list[tuple[Any, ...]] = []
        with self._read() as conn:
            for query, params in queries:
                cur = conn.cursor()
                cur.row_factory = None
                rows += cur.execute(query, params).fetchall()
        loads = json.loads
        out = []
        for row in rows:
            record = dict(zip(_COLUMNS, row, strict=True))
            record["geometry"] = loads(record["geometry"])
            out.append(record)
        return out

    def shape(self, shape_id: int) -> dict[str, Any]:
        v.check_id(shape_id, "shape_id")
        with self._read() as conn:
            return self._shape(conn, shape_id)

    def add_shape(self, image_id: int, kind: str, geometry: Any, class_id: int | None = None,
                  *, score: float | None = None, source: str = "manual",
                  prompt: str | None = None, status: str = "accepted") -> dict[str, Any]:
        spec = {"kind": kind, "geometry": geometry, "class_id": class_id, "score": score,
                "source": source, "prompt": prompt, "status": status}
        v.check_id(image_id, "image_id")
        return self._add(image_id, [_spec_values(spec)])[0]

    def add_shapes(self, image_id: int, shapes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add several shapes in one transaction and one undo step (all or nothing).

        Each item: ``{"kind", "geometry", "class_id"?, "score"?, "source"?, "prompt"?,
        "status"?}`` with the defaults of :meth:`add_shape`.
        """
        v.check_id(image_id, "image_id")
        if not isinstance(shapes, (list, tuple)):
            raise InvalidArgument(f"shapes must be a list, got {type(shapes).__name__}.")
        return self._add(image_id, [_spec_values(s, f"shapes[{i}]")
                                    for i, s in enumerate(shapes)])

    def _add(self, image_id: int, values: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not values:
            return []
        with self._edit() as rec:
            conn = rec.conn
            self._require(conn, "images", image_id, "image")
            for class_id in sorted({x["class_id"] for x in values} - {None}):
                self._require(conn, "classes", class_id, "class")
            now = time.time()
            ids = [rec.insert("shapes", {"image_id": image_id, **x, "created": now,
                                         "updated": now}) for x in values]
            if any(x["status"] != "pending" for x in values):
                self._start_image(rec, image_id)
            kind = values[0]["kind"]
            proposal = " proposal" if values[0]["status"] == "pending" else ""
            rec.description = (f"Add {kind}{proposal}" if len(ids) == 1
                               else f"Add {len(ids)} shapes")
            rec.image_id = image_id
            return [self._shape(conn, i) for i in ids]

    def import_shapes(self, items: list[dict[str, Any]], description: str = "Import",
                      class_names: Iterable[str] = ()) -> dict[str, Any]:
        """Add shapes to many images, creating classes by name: one transaction, one undo step.

        Each item: ``{"image_id", "class_name": str | None, "kind", "geometry", "score"?,
        "source"?, "prompt"?, "status"?}``. Missing classes are created in the order of
        ``class_names`` (a dataset's class list, kept even for classes without shapes), then of
        first use. Everything is validated before anything is written; one bad item writes
        nothing. Returns ``{"shapes_added": n, "classes_added": [names]}``.
        """
        names = [v.check_class_name(n) for n in class_names]
        if not isinstance(items, (list, tuple)):
            raise InvalidArgument(f"items must be a list, got {type(items).__name__}.")
        rows = []
        for i, item in enumerate(items):
            where = f"items[{i}]"
            if not isinstance(item, dict):
                raise InvalidArgument(f"{where} must be an object, got {item!r}.")
            spec = dict(item)
            image_id = v.check_id(spec.pop("image_id", None), f"{where}.image_id")
            name = spec.pop("class_name", None)
            if name is not None:
                name = v.check_class_name(name)
            rows.append((image_id, name, _spec_values(spec, where)))
        if not rows and not names:
            return {"shapes_added": 0, "classes_added": []}
        with self._edit() as rec:
            conn = rec.conn
            known = {r[0] for r in conn.execute("SELECT id FROM images")}
            for image_id, _, _ in rows:
                if image_id not in known:
                    self._require(conn, "images", image_id, "image")
            class_ids = {r[1]: r[0] for r in conn.execute("SELECT id, name FROM classes")}
            added: list[str] = []
            for name in dict.fromkeys([*names, *(n for _, n, _ in rows if n is not None)]):
                if name not in class_ids:
                    class_ids[name] = _insert_class(rec, name)
                    added.append(name)
            now = time.time()
            touched: set[int] = set()
            for image_id, name, values in rows:
                values["class_id"] = None if name is None else class_ids[name]
                rec.insert("shapes", {"image_id": image_id, **values, "created": now,
                                      "updated": now})
                if values["status"] != "pending":
                    touched.add(image_id)
            for image_id in sorted(touched):
                self._start_image(rec, image_id)
            rec.description = (f"{description} ({len(rows)} shapes)" if rows
                               else f"{description} (classes)")
            return {"shapes_added": len(rows), "classes_added": added}

    def update_shape(self, shape_id: int, *, geometry: Any = UNSET, class_id: Any = UNSET,
                     status: Any = UNSET) -> dict[str, Any]:
        """Change what is given (``class_id=None`` unassigns); a no-op records no undo step."""
        v.check_id(shape_id, "shape_id")
        if class_id is not UNSET and class_id is not None:
            v.check_id(class_id, "class_id")
        if status is not UNSET:
            v.check_choice(status, v.SHAPE_STATUSES, "status")
        with self._edit() as rec:
            conn = rec.conn
            row = self._require(conn, "shapes", shape_id, "shape")
            values: dict[str, Any] = {}
            if geometry is not UNSET:
                values["geometry"] = v.geometry_json(v.check_geometry(row["kind"], geometry))
            if class_id is not UNSET:
                if class_id is not None:
                    self._require(conn, "classes", class_id, "class")
                values["class_id"] = class_id
            if status is not UNSET:
                values["status"] = status
            changed = [k for k, x in values.items() if row[k] != x]
            if not changed:
                return _record(row)
            rec.update("shapes", shape_id, {**values, "updated": time.time()})
            self._start_image(rec, row["image_id"])
            rec.description = _update_description(row, values, changed)
            rec.image_id = row["image_id"]
            return self._shape(conn, shape_id)

    def delete_shape(self, shape_id: int) -> dict[str, Any]:
        """Delete a shape; returns it as it was."""
        v.check_id(shape_id, "shape_id")
        with self._edit() as rec:
            before = self._shape(rec.conn, shape_id)
            rec.delete("shapes", shape_id)
            rec.description = f"Delete {before['kind']}"
            rec.image_id = before["image_id"]
            return before


def _insert_class(rec: undo.Recorder, name: str) -> int:
    """A new class at the end of the order with an unused palette colour (as add_class)."""
    conn = rec.conn
    used = {r[0] for r in conn.execute("SELECT color FROM classes")}
    free = [c for c in PALETTE if c not in used]
    count = conn.execute("SELECT COUNT(*) FROM classes").fetchone()[0]
    position = conn.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM classes").fetchone()[0]
    return rec.insert("classes", {"name": name, "color": free[0] if free
                                  else PALETTE[count % len(PALETTE)], "position": position})


def _update_description(row: sqlite3.Row, values: dict[str, Any], changed: list[str]) -> str:
    kind = row["kind"]
    if changed == ["status"]:
        if values["status"] == "accepted":
            return f"Accept {kind}"
        if values["status"] == "rejected":
            return f"Reject {kind}"
        return f"Mark {kind} pending"
    if changed == ["class_id"]:
        return f"Change class of {kind}"
    return f"Edit {kind}"
