"""Batch runs in the store: which images a run covers and what happened to each.

A run record is ``{"run", "kind", "state", "done", "failed", "total", "created", "updated",
"params"}``: ``done`` and ``failed`` count items, ``params`` is what the run was started with
(JSON). States: ``running``, ``paused``, ``cancelled``, ``done``. A run that says ``running``
but has no live job was interrupted (the app was closed or killed); the AI service reports it
so and it can be resumed like a paused one.

Each item goes ``todo`` -> ``done`` | ``failed`` once. The step to ``done`` happens in the
transaction that writes the item's shapes (:func:`finish_item`), so after a crash an image is
either fully written and done, or untouched and still to do: never half, never twice.
Not undoable: runs are bookkeeping, not edits.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from typing import Any

from backend.errors import InvalidArgument, StoreError
from backend.store import validate as v
from backend.store.base import StoreBase

RUN_KINDS = ("detect", "segment_boxes", "similar")
RUN_STATES = ("running", "paused", "cancelled", "done")
MAX_REASON = 2_000

_SELECT = """
    SELECT r.*,
      (SELECT COUNT(*) FROM run_items AS i WHERE i.run_id = r.id AND i.state = 'done') AS n_done,
      (SELECT COUNT(*) FROM run_items AS i WHERE i.run_id = r.id AND i.state = 'failed')
        AS n_failed,
      (SELECT COUNT(*) FROM run_items AS i WHERE i.run_id = r.id) AS n_total
    FROM runs AS r
"""


class AlreadyProcessed(StoreError):
    """The run item is not ``todo`` any more: its image was processed (or failed) before."""

    code = "already_processed"


def _record(row: sqlite3.Row) -> dict[str, Any]:
    try:
        params = json.loads(row["params"])
    except ValueError:
        params = {}
    return {"run": row["id"], "kind": row["kind"], "state": row["state"], "done": row["n_done"],
            "failed": row["n_failed"], "total": row["n_total"], "created": row["created"],
            "updated": row["updated"], "params": params}


def finish_item(conn: sqlite3.Connection, run_id: int, image_id: int, shapes: int,
                state: str = "done", reason: str | None = None) -> None:
    """Inside the caller's transaction: move one item from ``todo`` to ``state``."""
    done = conn.execute("UPDATE run_items SET state = ?, reason = ?, shapes = ?, finished = ? "
                        "WHERE run_id = ? AND image_id = ? AND state = 'todo'",
                        (state, reason, shapes, time.time(), run_id, image_id)).rowcount
    if done != 1:
        raise AlreadyProcessed(f"Image {image_id} of run {run_id} was already processed; it is "
                               "not written again.", detail={"run": run_id, "image_id": image_id})
    conn.execute("UPDATE runs SET updated = ? WHERE id = ?", (time.time(), run_id))


class RunsMixin(StoreBase):
    def create_run(self, kind: str, image_ids: Iterable[int], params: dict[str, Any]
                   ) -> dict[str, Any]:
        """A new ``running`` run over ``image_ids`` (in that order, duplicates dropped)."""
        kind = v.check_choice(kind, RUN_KINDS, "kind")
        ids = list(dict.fromkeys(v.check_id(i, "image_ids") for i in image_ids))
        if not ids:
            raise InvalidArgument("A run needs at least one image.", detail={"field": "image_ids"})
        text = v.setting_json("params", params)
        now = time.time()
        with self._write() as conn:
            known = {r[0] for r in conn.execute("SELECT id FROM images")}
            for image_id in ids:
                if image_id not in known:
                    self._require(conn, "images", image_id, "image")
            cur = conn.execute("INSERT INTO runs (kind, state, params, created, updated) "
                               "VALUES (?, 'running', ?, ?, ?)", (kind, text, now, now))
            run_id = int(cur.lastrowid or 0)
            conn.executemany("INSERT INTO run_items (run_id, image_id, position) VALUES (?, ?, ?)",
                             [(run_id, image_id, n) for n, image_id in enumerate(ids)])
            return _record(conn.execute(_SELECT + " WHERE r.id = ?", (run_id,)).fetchone())

    def run(self, run_id: int) -> dict[str, Any]:
        v.check_id(run_id, "run")
        with self._read() as conn:
            self._require(conn, "runs", run_id, "run")
            return _record(conn.execute(_SELECT + " WHERE r.id = ?", (run_id,)).fetchone())

    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first."""
        with self._read() as conn:
            return [_record(r) for r in conn.execute(_SELECT + " ORDER BY r.id DESC")]

    def set_run_state(self, run_id: int, state: str) -> dict[str, Any]:
        v.check_id(run_id, "run")
        state = v.check_choice(state, RUN_STATES, "state")
        with self._write() as conn:
            self._require(conn, "runs", run_id, "run")
            conn.execute("UPDATE runs SET state = ?, updated = ? WHERE id = ?",
                         (state, time.time(), run_id))
            return _record(conn.execute(_SELECT + " WHERE r.id = ?", (run_id,)).fetchone())

    def set_run_params(self, run_id: int, params: dict[str, Any]) -> dict[str, Any]:
        """Replace the run's ``params`` (e.g. a value its first step computed, kept for resume)."""
        v.check_id(run_id, "run")
        if not isinstance(params, dict):
            raise InvalidArgument(f"params must be an object, got {type(params).__name__}.",
                                  detail={"field": "params"})
        text = v.setting_json("params", params)
        with self._write() as conn:
            self._require(conn, "runs", run_id, "run")
            conn.execute("UPDATE runs SET params = ?, updated = ? WHERE id = ?",
                         (text, time.time(), run_id))
            return _record(conn.execute(_SELECT + " WHERE r.id = ?", (run_id,)).fetchone())

    def run_todo(self, run_id: int) -> list[int]:
        """Image ids of the items still to do, in run order."""
        v.check_id(run_id, "run")
        with self._read() as conn:
            self._require(conn, "runs", run_id, "run")
            return [r[0] for r in conn.execute(
                "SELECT image_id FROM run_items WHERE run_id = ? AND state = 'todo' "
                "ORDER BY position", (run_id,))]

    def finish_run_item(self, run_id: int, image_id: int, shapes: int = 0) -> None:
        """Mark an item done that wrote nothing through replace_proposals/convert_shapes."""
        with self._write() as conn:
            finish_item(conn, run_id, image_id, shapes)

    def fail_run_item(self, run_id: int, image_id: int, reason: str) -> None:
        """Mark an item failed with a reason for a person (listed at the end of the run)."""
        reason = v.check_optional_text(reason[:MAX_REASON], "reason", MAX_REASON) or "failed"
        with self._write() as conn:
            finish_item(conn, run_id, image_id, 0, "failed", reason)

    def run_failures(self, run_id: int) -> list[dict[str, Any]]:
        """``[{"image_id", "name", "reason"}]`` of the failed items, in run order."""
        v.check_id(run_id, "run")
        with self._read() as conn:
            rows = conn.execute(
                "SELECT i.image_id, m.relpath, i.reason FROM run_items AS i JOIN images AS m "
                "ON m.id = i.image_id WHERE i.run_id = ? AND i.state = 'failed' "
                "ORDER BY i.position", (run_id,)).fetchall()
        return [{"image_id": r[0], "name": r[1].rsplit("/", 1)[-1], "reason": r[2]} for r in rows]

    def run_items(self, run_id: int) -> list[dict[str, Any]]:
        """Every item: ``{"image_id", "state", "reason", "shapes", "finished"}`` in run order."""
        v.check_id(run_id, "run")
        with self._read() as conn:
            rows = conn.execute("SELECT image_id, state, reason, shapes, finished FROM run_items "
                                "WHERE run_id = ? ORDER BY position", (run_id,)).fetchall()
        return [dict(r) for r in rows]
