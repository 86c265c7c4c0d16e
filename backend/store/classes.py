"""Classes (label names) of a project; every change is one undo step.

A class record is ``{"id", "name", "color", "count", "key", "position", "prompts",
"threshold"}``: ``count`` is the number of its shapes that are not rejected, ``key`` is "1".."9"
for the first nine classes in order (the keyboard shortcut) and None after; ``prompts`` (phrases
for the detector) and ``threshold`` are set by ``set_class_prompts`` (store/proposals.py).
Names are stripped, non-empty, at most 200 characters, unique with case (so "Moth" and "moth"
are two classes).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from backend.errors import InvalidArgument
from backend.store import validate as v
from backend.store.base import StoreBase

# Sasha Trubetskoy's 20 distinct colours, most distinct first, so that the first nine classes
# (the ones on keys 1-9) are easiest to tell apart.
PALETTE = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
           "#f032e6", "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8",
           "#800000", "#aaffc3", "#808000", "#ffd8b1", "#000075", "#808080")

_COUNT = ("(SELECT COUNT(*) FROM shapes AS s WHERE s.class_id = c.id "
          "AND s.status != 'rejected') AS count")


def _record(row: sqlite3.Row, rank: int) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "color": row["color"], "count": row["count"],
            "key": str(rank + 1) if rank < 9 else None, "position": row["position"],
            "prompts": json.loads(row["prompts"]), "threshold": row["threshold"]}


class ClassesMixin(StoreBase):
    def _class(self, conn: sqlite3.Connection, class_id: int) -> dict[str, Any]:
        self._require(conn, "classes", class_id, "class")
        row = conn.execute(f"SELECT c.*, {_COUNT} FROM classes AS c WHERE c.id = ?",
                           (class_id,)).fetchone()
        rank = conn.execute("SELECT COUNT(*) FROM classes WHERE position < ? "
                            "OR (position = ? AND id < ?)",
                            (row["position"], row["position"], class_id)).fetchone()[0]
        return _record(row, rank)

    def _check_name_free(self, conn: sqlite3.Connection, name: str,
                         own_id: int | None = None) -> None:
        row = conn.execute("SELECT id FROM classes WHERE name = ?", (name,)).fetchone()
        if row is not None and row[0] != own_id:
            raise InvalidArgument(f"name {name!r} is already used by another class; "
                                  "choose a different name or merge the classes.",
                                  detail={"field": "name", "value": name, "id": row[0]})

    def classes(self) -> list[dict[str, Any]]:
        """All classes in keyboard order (position, then id)."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT c.*, {_COUNT} FROM classes AS c "
                                "ORDER BY c.position, c.id").fetchall()
        return [_record(row, rank) for rank, row in enumerate(rows)]

    def add_class(self, name: str, color: str | None = None) -> dict[str, Any]:
        """Add a class at the end of the order; without ``color`` it gets an unused palette one."""
        name = v.check_class_name(name)
        if color is not None:
            color = v.check_color(color)
        with self._edit() as rec:
            conn = rec.conn
            self._check_name_free(conn, name)
            if color is None:
                used = {r[0] for r in conn.execute("SELECT color FROM classes")}
                free = [c for c in PALETTE if c not in used]
                count = conn.execute("SELECT COUNT(*) FROM classes").fetchone()[0]
                color = free[0] if free else PALETTE[count % len(PALETTE)]
            position = conn.execute(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM classes").fetchone()[0]
            rec.description = f"Add class '{name}'"
            class_id = rec.insert("classes", {"name": name, "color": color,
                                              "position": position})
            return self._class(conn, class_id)

    def rename_class(self, class_id: int, name: str) -> dict[str, Any]:
        v.check_id(class_id, "class_id")
        name = v.check_class_name(name)
        with self._edit() as rec:
            old = self._require(rec.conn, "classes", class_id, "class")["name"]
            self._check_name_free(rec.conn, name, class_id)
            rec.description = f"Rename class '{old}' to '{name}'"
            rec.update("classes", class_id, {"name": name})
            return self._class(rec.conn, class_id)

    def recolor_class(self, class_id: int, color: str) -> dict[str, Any]:
        v.check_id(class_id, "class_id")
        color = v.check_color(color)
        with self._edit() as rec:
            name = self._require(rec.conn, "classes", class_id, "class")["name"]
            rec.description = f"Change colour of class '{name}'"
            rec.update("classes", class_id, {"color": color})
            return self._class(rec.conn, class_id)

    def delete_class(self, class_id: int) -> dict[str, Any]:
        """Delete a class; its shapes stay, unassigned. Returns the class as it was."""
        v.check_id(class_id, "class_id")
        with self._edit() as rec:
            before = self._class(rec.conn, class_id)
            rec.description = f"Delete class '{before['name']}'"
            # Unassign explicitly (not via ON DELETE SET NULL) so that the undo step holds every
            # shape it must re-link.
            rec.reassign("shapes", "class_id", class_id, None)
            rec.delete("classes", class_id)
            return before

    def merge_classes(self, source_id: int, target_id: int) -> dict[str, Any]:
        """Move every shape of ``source_id`` to ``target_id`` and delete the source."""
        v.check_id(source_id, "source_id")
        v.check_id(target_id, "target_id")
        if source_id == target_id:
            raise InvalidArgument(f"source_id and target_id must differ, both are {source_id}.")
        with self._edit() as rec:
            source = self._require(rec.conn, "classes", source_id, "class")["name"]
            target = self._require(rec.conn, "classes", target_id, "class")["name"]
            rec.description = f"Merge class '{source}' into '{target}'"
            rec.reassign("shapes", "class_id", source_id, target_id)
            rec.delete("classes", source_id)
            return self._class(rec.conn, target_id)
