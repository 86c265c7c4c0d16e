"""What the crash tests compare: a project's visible state, its digest, and the side logs.

A worker process appends one JSON line to its side log before each edit (``intent``) and one
after the edit returned (``ack``: the edit is accepted). A SIGKILL can cut the last line short,
so :func:`read_log` keeps complete lines only. Lines are written with one ``os.write`` on an
``O_APPEND`` descriptor: once the call returns the line is in the kernel and survives the death
of the process (a power cut is another matter; SIGKILL is what these tests do).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

ALL_STATUSES = ("accepted", "pending", "rejected")


class SideLog:
    """Append-only JSON lines, each written by one system call."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, record: dict[str, Any]) -> None:
        os.write(self.fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a side log (a kill may leave the last one half written)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for line in data.split(b"\n")[:-1]:  # the part after the last newline is unfinished
        try:
            out.append(json.loads(line))
        except ValueError as exc:
            raise AssertionError(f"side log {path} has a damaged line in the middle: "
                                 f"{line[:200]!r}") from exc
    return out


def snapshot(db: sqlite3.Connection) -> dict[str, Any]:
    """What a person sees and what undo restores: shapes, classes, image statuses.

    Leaves out what is not an edit (probed image sizes, ``updated`` times, the undo stack). Read
    straight from the database (geometry as stored text) on a connection of its own: the
    workers take one after every edit, and decoding every geometry would make that the slow
    part, where few kills would land inside a write.
    """
    shapes = db.execute("SELECT id, image_id, class_id, kind, geometry, score, source, prompt, "
                        "status FROM shapes ORDER BY image_id, id").fetchall()
    classes = db.execute("SELECT id, name, color, position, prompts, threshold FROM classes "
                         "ORDER BY id").fetchall()
    images = db.execute("SELECT id, status FROM images ORDER BY id").fetchall()
    return {"shapes": [list(r) for r in shapes], "classes": [list(r) for r in classes],
            "images": [list(r) for r in images]}


def reader(db_path: Path) -> sqlite3.Connection:
    """A second connection to a project database, for :func:`snapshot` (sees what committed)."""
    return sqlite3.connect(db_path, isolation_level=None, timeout=10)


def digest(snap: dict[str, Any]) -> str:
    text = json.dumps(snap, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def summary(snap: dict[str, Any]) -> dict[str, Any]:
    """Counts for a failure message (a digest alone says nothing to a person)."""
    by_status: dict[str, int] = {}
    for s in snap["shapes"]:
        by_status[s[8]] = by_status.get(s[8], 0) + 1
    return {"shapes": by_status, "classes": len(snap["classes"]), "digest": digest(snap)}


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` of a project database (``ok`` when sound)."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
        fk = conn.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        conn.close()
    text = "; ".join(str(r[0]) for r in rows)
    if fk:
        text += f"; foreign key violations: {fk[:5]}"
    return text
