"""Undo/redo as a log of row changes kept in the project database.

Every undoable edit runs inside one transaction through a :class:`Recorder`, which performs the
inserts, updates and deletes and remembers each row's state before and after. The step is
written to ``undo_log`` in the same transaction, so an edit and its undo record are committed
together or not at all, and the history survives a crash or a reopen.

A change is ``[table, row_id, before, after]``: ``before`` is None for an insert, ``after`` is
None for a delete (the other side then holds the whole row), and for an update both hold only
the columns that changed. Undo applies the ``before`` states in reverse order, redo the
``after`` states in order. Deleted rows come back under their old id (ids are AUTOINCREMENT and
never reused), so a class deleted and restored re-links to its shapes.

The log is linear: a new edit discards the redo stack; the oldest steps fall off past
:data:`MAX_STEPS`. A run of small changes to one row (a dragged slider) may be folded into one
step by :func:`merge_into_last`. Non-undoable writes (folder sync, probed image sizes, settings)
never touch columns the log restores: for images only ``status`` is undoable. The one link a
non-undoable write makes to an undoable row, a model's proposal naming a class, is recorded into
the step when undo or redo deletes that class (see :func:`_unlinked_by`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.errors import StoreError

MAX_STEPS = 1000

# What a logged change may touch. The log is read back from a file that may have been shared or
# edited, so table and column names from it are checked against this before building SQL.
UNDOABLE: dict[str, frozenset[str]] = {
    "images": frozenset({"status"}),
    "classes": frozenset({"id", "name", "color", "position", "prompts", "threshold"}),
    "shapes": frozenset({"id", "image_id", "class_id", "kind", "geometry", "score", "source",
                         "prompt", "status", "created", "updated"}),
}
_WHOLE_ROW = {"classes", "shapes"}  # tables whose rows the log may insert and delete

Change = list[Any]  # [table, row_id, before | None, after | None]

# When a step was made (``undo_log.created``), read through this so tests can move time on
# instead of sleeping through a merge window.
clock: Callable[[], float] = time.time


class Recorder:
    """Performs the writes of one edit and keeps the row changes for its undo step."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.changes: list[Change] = []
        # What the step is called in the Edit menu and which image it happened on; the edit
        # sets these once it has read the rows it touches.
        self.description = ""
        self.image_id: int | None = None

    def insert(self, table: str, values: dict[str, Any]) -> int:
        cols = ", ".join(values)
        marks = ", ".join("?" * len(values))
        cur = self.conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                                tuple(values.values()))
        row_id = int(cur.lastrowid or 0)
        self.changes.append([table, row_id, None, _row(self.conn, table, row_id)])
        return row_id

    def update(self, table: str, row_id: int, values: dict[str, Any]) -> bool:
        """Set ``values`` on one row; records and returns True only if something changed."""
        cols = list(values)
        old = self.conn.execute(f"SELECT {', '.join(cols)} FROM {table} WHERE id = ?",
                                (row_id,)).fetchone()
        if old is None:
            raise KeyError(f"{table} {row_id}")
        before = {c: old[i] for i, c in enumerate(cols) if old[i] != values[c]}
        if not before:
            return False
        after = {c: values[c] for c in before}
        self.conn.execute(f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in after)} "
                          "WHERE id = ?", (*after.values(), row_id))
        self.changes.append([table, row_id, before, after])
        return True

    def reassign(self, table: str, column: str, old: Any, new: Any) -> int:
        """``UPDATE table SET column = new WHERE column = old``, logged per row; returns count."""
        ids = [r[0] for r in self.conn.execute(
            f"SELECT id FROM {table} WHERE {column} = ?", (old,))]
        self.conn.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (new, old))
        self.changes.extend([table, i, {column: old}, {column: new}] for i in ids)
        return len(ids)

    def delete(self, table: str, row_id: int) -> dict[str, Any]:
        row = _row(self.conn, table, row_id)
        self.conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))
        self.changes.append([table, row_id, row, None])
        return row


def _row(conn: sqlite3.Connection, table: str, row_id: int) -> dict[str, Any]:
    cur = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,))
    values = cur.fetchone()
    if values is None:
        raise KeyError(f"{table} {row_id}")
    return {d[0]: v for d, v in zip(cur.description, values, strict=True)}


def push(conn: sqlite3.Connection, description: str, image_id: int | None,
         changes: list[Change]) -> None:
    """Append a step (inside the edit's transaction); clears redo and trims the oldest steps."""
    conn.execute("DELETE FROM undo_log WHERE undone = 1")
    conn.execute("INSERT INTO undo_log (description, image_id, changes, created) "
                 "VALUES (?, ?, ?, ?)",
                 (description, image_id, json.dumps(changes, separators=(",", ":")),
                  clock()))
    # By count, not by seq distance: undone steps leave gaps in seq (edit, undo, edit, ...).
    conn.execute("DELETE FROM undo_log WHERE seq <= (SELECT seq FROM undo_log ORDER BY seq DESC "
                 "LIMIT 1 OFFSET ?)", (MAX_STEPS,))


def merge_into_last(conn: sqlite3.Connection, description: str, changes: list[Change], *,
                    columns: frozenset[str], window_s: float) -> bool:
    """Fold ``changes`` into the newest step instead of adding one (inside the edit's
    transaction); True when folded, False when the caller must :func:`push` a step.

    Folds only a single-row update into a newest step that is a single-row update of the same
    row, touching nothing but ``columns``, made less than ``window_s`` seconds ago, not undone,
    and whose ``after`` is what the new change starts from (no edit came between). The merged
    step keeps the oldest ``before`` and takes the newest ``after``, description and time, so
    the window slides along a drag. A merge that ends where it began removes the step: an undo
    that changes nothing would only confuse.
    """
    if len(changes) != 1 or not _is_update(changes[0], columns):
        return False
    table, row_id, before, after = changes[0]
    row = conn.execute("SELECT seq, changes, undone, created FROM undo_log "
                       "ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return False
    seq, last_json, undone, created = row
    now = clock()
    if undone or not now - window_s < created <= now:
        return False
    try:
        last = json.loads(last_json)
    except ValueError:
        return False
    if not isinstance(last, list) or len(last) != 1 or not _is_update(last[0], columns):
        return False
    last_table, last_id, first_before, last_after = last[0]
    if (last_table, last_id) != (table, row_id) or any(
            c in last_after and last_after[c] != before[c] for c in before):
        return False
    merged_before = before | first_before  # the oldest value of each column wins
    merged_after = last_after | after
    net = {c: merged_before[c] for c in merged_before if merged_before[c] != merged_after[c]}
    if not net:
        conn.execute("DELETE FROM undo_log WHERE seq = ?", (seq,))
        return True
    merged = [[table, row_id, net, {c: merged_after[c] for c in net}]]
    conn.execute("UPDATE undo_log SET description = ?, changes = ?, created = ? WHERE seq = ?",
                 (description, json.dumps(merged, separators=(",", ":")), now, seq))
    return True


def _is_update(change: Any, columns: frozenset[str]) -> bool:
    return (isinstance(change, list) and len(change) == 4 and isinstance(change[1], int)
            and all(isinstance(x, dict) and x and set(x) <= columns for x in change[2:])
            and set(change[2]) == set(change[3]))


def state(conn: sqlite3.Connection) -> dict[str, Any]:
    undo = conn.execute("SELECT description FROM undo_log WHERE undone = 0 "
                        "ORDER BY seq DESC LIMIT 1").fetchone()
    redo = conn.execute("SELECT description FROM undo_log WHERE undone = 1 "
                        "ORDER BY seq ASC LIMIT 1").fetchone()
    return {"can_undo": undo is not None, "can_redo": redo is not None,
            "undo": undo[0] if undo else None, "redo": redo[0] if redo else None}


class HistoryMismatchError(Exception):
    """The logged rows do not match the database (edited outside Fieldmark, or a bug)."""


def step(conn: sqlite3.Connection, *, redo: bool) -> dict[str, Any] | None:
    """Undo (or redo) one step inside the caller's transaction; None when there is none."""
    if redo:
        row = conn.execute("SELECT seq, description, image_id, changes FROM undo_log "
                           "WHERE undone = 1 ORDER BY seq ASC LIMIT 1").fetchone()
    else:
        row = conn.execute("SELECT seq, description, image_id, changes FROM undo_log "
                           "WHERE undone = 0 ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return None
    seq, description, image_id, changes_json = row
    try:
        changes = json.loads(changes_json)
    except ValueError as exc:
        raise HistoryMismatchError(f"unreadable step {seq}") from exc
    if not isinstance(changes, list):
        raise HistoryMismatchError(f"malformed step {seq}")
    unlinked: dict[int, list[Change]] = {}
    for i in (range(len(changes)) if redo else range(len(changes) - 1, -1, -1)):
        found = _unlinked_by(conn, changes[i], redo=redo)
        if found:
            unlinked[i] = found
        _apply(conn, changes[i], redo=redo)
    if unlinked:
        conn.execute("UPDATE undo_log SET changes = ? WHERE seq = ?",
                     (json.dumps(_with_relinks(changes, unlinked, redo=redo),
                                 separators=(",", ":")), seq))
    conn.execute("UPDATE undo_log SET undone = ? WHERE seq = ?", (0 if redo else 1, seq))
    return {"image_id": image_id, "description": description}


def _unlinked_by(conn: sqlite3.Connection, change: Any, *, redo: bool) -> list[Change]:
    """Shapes that lose their class when ``change`` deletes a class row, as changes that put
    the class back when the step is applied the other way.

    Model output is written without an undo step, so a proposal of class C may exist that no
    step knows of. Undoing "Add class C" (or redoing "Delete class C") deletes C and SQLite's
    ON DELETE SET NULL unassigns the proposal; without these changes the opposite direction
    would bring C back with the proposal still unassigned.
    """
    if not (isinstance(change, list) and len(change) == 4 and change[0] == "classes"
            and isinstance(change[1], int) and (change[3] if redo else change[2]) is None):
        return []
    class_id = change[1]
    ids = [r[0] for r in conn.execute("SELECT id FROM shapes WHERE class_id = ? ORDER BY id",
                                      (class_id,))]
    if redo:
        return [["shapes", i, {"class_id": class_id}, {"class_id": None}] for i in ids]
    return [["shapes", i, {"class_id": None}, {"class_id": class_id}] for i in ids]


def _with_relinks(changes: list[Change], unlinked: dict[int, list[Change]], *,
                  redo: bool) -> list[Change]:
    """``changes`` with each class deletion's re-links placed where the opposite direction
    applies them after the class is back (and this direction before it goes)."""
    out: list[Change] = []
    for i, change in enumerate(changes):
        if redo:
            out += unlinked.get(i, [])
        out.append(change)
        if not redo:
            out += unlinked.get(i, [])
    return out


def _apply(conn: sqlite3.Connection, change: Any, *, redo: bool) -> None:
    """Bring one row to the change's ``after`` (redo) or ``before`` (undo) state."""
    if not isinstance(change, list) or len(change) != 4:
        raise HistoryMismatchError(f"malformed change {change!r}")
    table, row_id, before, after = change
    target, other = (after, before) if redo else (before, after)
    allowed = UNDOABLE.get(table)
    if allowed is None or not isinstance(row_id, int):
        raise HistoryMismatchError(f"unexpected change {change!r}")
    for values in (target, other):
        if values is not None and (not isinstance(values, dict) or not set(values) <= allowed):
            raise HistoryMismatchError(f"unexpected columns in {change!r}")
    if target is None:  # the row must go away
        if table not in _WHOLE_ROW:
            raise HistoryMismatchError(f"cannot delete from {table}")
        done = conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,)).rowcount
    elif other is None:  # the row must come back whole, under its old id
        if table not in _WHOLE_ROW:
            raise HistoryMismatchError(f"cannot insert into {table}")
        try:
            conn.execute(f"INSERT INTO {table} ({', '.join(target)}) "
                         f"VALUES ({', '.join('?' * len(target))})", tuple(target.values()))
        except sqlite3.IntegrityError as exc:
            raise HistoryMismatchError(str(exc)) from exc
        done = 1
    else:
        try:
            done = conn.execute(f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in target)} "
                                "WHERE id = ?", (*target.values(), row_id)).rowcount
        except sqlite3.IntegrityError as exc:
            raise HistoryMismatchError(str(exc)) from exc
    if done != 1:
        raise HistoryMismatchError(f"{table} row {row_id} is not where the history expects it")


def clear(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM undo_log")


def mismatch_error(db_path: Path | str, exc: HistoryMismatchError) -> StoreError:
    return StoreError(
        f"The undo history in '{db_path}' no longer matches the project (was the file edited "
        "outside Fieldmark?), so it was cleared. Your labels are unchanged; check the last edit "
        "by eye.", detail={"file": str(db_path), "reason": str(exc)})
