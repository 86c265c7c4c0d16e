"""The connection, the lock and the three ways to touch the database: read, write, edit.

- ``_read()``: one or more SELECTs (autocommit; each statement sees a consistent snapshot).
- ``_write()``: a transaction for changes that are not undoable (folder sync, probed sizes,
  settings).
- ``_edit()``: a transaction whose row changes become one undo step, committed together.

Durability: WAL with ``synchronous=FULL``. Under WAL, NORMAL already survives a killed process
(a commit is in the WAL, in the OS cache, before the call returns), but not a power cut or an OS
crash, which can drop the last commits — on a field laptop with a dying battery that is exactly
"accepted work lost". FULL fsyncs the WAL at every commit, so every edit that returned is on
disk. The cost is one fsync per edit (milliseconds) and one per batch, never per row.

The project may be used from the GUI thread and from job threads; one re-entrant mutex
serializes all access to the single connection.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from backend.errors import NotFound, StoreError
from backend.store import undo
from backend.store.lock import ProjectLock
from backend.store.sqlerrors import translated

DB_NAME = "project.sqlite"
BUSY_TIMEOUT_S = 5.0


class _Unset:
    """Marks a keyword argument that was not given (None is a meaningful value)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def _contains(haystack: str | None, needle: str | None) -> bool:
    """SQL ``fm_contains(text, casefolded_needle)``: SQLite's LIKE folds ASCII only."""
    return needle is not None and haystack is not None and needle in haystack.casefold()


def connect(db_path: Path) -> sqlite3.Connection:
    """Open ``db_path`` in autocommit mode (transactions are explicit) with our pragmas."""
    conn = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False,
                           timeout=BUSY_TIMEOUT_S)
    conn.row_factory = sqlite3.Row
    conn.create_function("fm_contains", 2, _contains, deterministic=True)
    try:
        # On a file system without shared memory (some network shares) SQLite keeps the old
        # journal mode; with synchronous=FULL that is still crash-safe, only slower.
        conn.execute("PRAGMA journal_mode=WAL").fetchone()
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    return conn


class StoreBase:
    folder: Path
    db_path: Path

    def __init__(self, folder: Path, db_path: Path, conn: sqlite3.Connection,
                 lock: ProjectLock) -> None:
        self.folder = folder
        self.db_path = db_path
        self._conn: sqlite3.Connection | None = conn
        self._lock = lock
        self._mutex = threading.RLock()

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database and release the folder lock; safe to call more than once."""
        with self._mutex:
            conn, self._conn = self._conn, None
            try:
                if conn is not None:
                    with translated(self.db_path):
                        conn.close()
            finally:
                self._lock.release()

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> StoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"The project '{self.folder}' is closed. Open it again to continue.",
                             detail={"file": str(self.db_path)})
        return self._conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._mutex, translated(self.db_path):
            yield self._connection()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._mutex, translated(self.db_path):
            conn = self._connection()
            # IMMEDIATE takes the write lock up front, so a busy database fails here, before
            # any work, rather than at COMMIT.
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _edit(self) -> Iterator[undo.Recorder]:
        """One undoable edit: set ``description`` (and ``image_id``) on the recorder."""
        with self._write() as conn:
            rec = undo.Recorder(conn)
            yield rec
            if rec.changes:
                undo.push(conn, rec.description, rec.image_id, rec.changes)

    # -- shared look-ups --------------------------------------------------------------------

    def _require(self, conn: sqlite3.Connection, table: str, row_id: int,
                 what: str) -> sqlite3.Row:
        row = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,)).fetchone()
        if row is None:
            raise NotFound(f"There is no {what} with id {row_id} in the project "
                           f"'{self.folder}'. It may have been deleted; reload the list.",
                           detail={"table": table, "id": row_id})
        return row
