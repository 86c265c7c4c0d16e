"""Schema of ``project.sqlite``: the 1.0 tables, the migrations since, and the version check.

The version lives in ``PRAGMA user_version`` as ``major << 16 | minor`` (as qutebrowser does):

- a newer **minor** only adds things (columns with defaults, tables, indexes), so an older
  Fieldmark opens such a database as it is;
- a newer **major** changed meaning; an older Fieldmark refuses it with a message;
- an older minor is migrated forward, all steps in one transaction.

A fresh project is made by the same path: the 1.0 tables, then every migration. So the migration
code runs on every new project, and a migrated old project has exactly the tables of a new one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from backend.errors import StoreError
from backend.store.relpaths import natural_key

MAJOR = 1
MINOR = 3


def encode(major: int, minor: int) -> int:
    return major << 16 | minor


def decode(version: int) -> tuple[int, int]:
    return version >> 16, version & 0xFFFF


# The first released schema. Never edit it: change the schema with a migration below.
BASE_1_0 = (
    """CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        relpath TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL DEFAULT 'new'
            CHECK (status IN ('new', 'in_progress', 'done', 'skipped')),
        error TEXT,
        width INTEGER,
        height INTEGER,
        mtime REAL NOT NULL DEFAULT 0,
        size INTEGER NOT NULL DEFAULT 0)""",
    # AUTOINCREMENT: an id is never reused, so undo can re-insert a deleted row under its old id
    # and the page never confuses a new class or shape with one it saw before.
    """CREATE TABLE classes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        color TEXT NOT NULL)""",
    """CREATE TABLE shapes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        class_id INTEGER REFERENCES classes(id) ON DELETE SET NULL,
        kind TEXT NOT NULL CHECK (kind IN ('box', 'polygon', 'point', 'mask')),
        geometry TEXT NOT NULL,
        score REAL,
        source TEXT NOT NULL DEFAULT 'manual',
        prompt TEXT,
        status TEXT NOT NULL DEFAULT 'accepted'
            CHECK (status IN ('accepted', 'pending', 'rejected')),
        created REAL NOT NULL,
        updated REAL NOT NULL)""",
    "CREATE INDEX shapes_by_image ON shapes(image_id, status)",
    "CREATE INDEX shapes_by_class ON shapes(class_id)",
    # One row per undo step; ``changes`` is JSON (see backend/store/undo.py). Rows with undone=1
    # form the redo stack.
    """CREATE TABLE undo_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        description TEXT NOT NULL,
        image_id INTEGER,
        changes TEXT NOT NULL,
        undone INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL)""",
)


def _to_1_1(conn: sqlite3.Connection) -> None:
    """Classes get an explicit order (keys 1-9 follow it); existing ones keep creation order."""
    conn.execute("ALTER TABLE classes ADD COLUMN position INTEGER NOT NULL DEFAULT 0")
    conn.execute("UPDATE classes SET position = "
                 "(SELECT COUNT(*) FROM classes AS older WHERE older.id < classes.id)")
    conn.execute("CREATE INDEX classes_by_position ON classes(position, id)")
    # Whole class rows in the undo history (deleted or added classes) gain a position too, or
    # undoing a 1.0 "Delete class" would bring the class back at the top of the list.
    positions = dict(conn.execute("SELECT id, position FROM classes").fetchall())
    end = max(positions.values(), default=-1) + 1
    for seq, text in conn.execute("SELECT seq, changes FROM undo_log").fetchall():
        try:
            changes = json.loads(text)
        except ValueError:
            continue  # left for undo to report and clear
        touched = False
        for change in changes if isinstance(changes, list) else ():
            if not (isinstance(change, list) and len(change) == 4 and change[0] == "classes"):
                continue
            for row in change[2:]:
                if isinstance(row, dict) and "id" in row and "position" not in row:
                    row["position"] = positions.get(change[1], end)
                    touched = True
        if touched:
            conn.execute("UPDATE undo_log SET changes = ? WHERE seq = ?",
                         (json.dumps(changes, separators=(",", ":")), seq))


def _to_1_2(conn: sqlite3.Connection) -> None:
    """Multi-page images, natural sort order (img2 < img10) by index, per-project settings."""
    conn.execute("ALTER TABLE images ADD COLUMN pages INTEGER")
    conn.execute("ALTER TABLE images ADD COLUMN sort_key TEXT NOT NULL DEFAULT ''")
    rows = conn.execute("SELECT id, relpath FROM images").fetchall()
    conn.executemany("UPDATE images SET sort_key = ? WHERE id = ?",
                     [(natural_key(relpath), image_id) for image_id, relpath in rows])
    conn.execute("CREATE INDEX images_by_sort ON images(sort_key, relpath)")
    conn.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _to_1_3(conn: sqlite3.Connection) -> None:
    """AI-assisted labeling: prompt phrases and a threshold per class; batch runs and their items.

    ``runs.params`` is JSON (packs, prompts and thresholds as they were when the run started, so
    a resumed run finishes with the settings it began with). A run item goes ``todo`` -> ``done``
    or ``failed`` exactly once, in the same transaction as the shapes it wrote: that is what makes
    "every image processed once" survive a cancel, a crash or a kill.
    """
    conn.execute("ALTER TABLE classes ADD COLUMN prompts TEXT NOT NULL DEFAULT '[]'")
    conn.execute("ALTER TABLE classes ADD COLUMN threshold REAL NOT NULL DEFAULT 0.1")
    conn.execute("""CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('running', 'paused', 'cancelled', 'done')),
        params TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL)""")
    conn.execute("""CREATE TABLE run_items (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'todo' CHECK (state IN ('todo', 'done', 'failed')),
        reason TEXT,
        shapes INTEGER,
        finished REAL,
        PRIMARY KEY (run_id, image_id))""")
    conn.execute("CREATE INDEX run_items_by_state ON run_items(run_id, state, position)")
    # The review queue: pending proposals across the project, lowest score first.
    conn.execute("CREATE INDEX shapes_by_status_score ON shapes(status, score)")


# MIGRATIONS[(major, minor)] brings a database at that version one minor step forward.
MIGRATIONS: dict[tuple[int, int], Callable[[sqlite3.Connection], None]] = {
    (1, 0): _to_1_1,
    (1, 1): _to_1_2,
    (1, 2): _to_1_3,
}


def _refuse(path: Path, message: str, version: int) -> StoreError:
    return StoreError(message, detail={"file": str(path), "user_version": version,
                                       "supported": f"{MAJOR}.{MINOR}"})


def prepare(conn: sqlite3.Connection, path: Path) -> tuple[int, int]:
    """Create, check or migrate the schema of ``conn`` (autocommit mode); returns the old version.

    The old version is (0, 0) for a database that was just created.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    major, minor = decode(version)
    if version == 0:
        tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        if tables:
            raise _refuse(path, f"The file '{path}' is an SQLite database but not a Fieldmark "
                          "project. Move it somewhere else so that Fieldmark can start a fresh "
                          "project in this folder.", version)
    elif major > MAJOR:
        raise _refuse(path, f"The project database '{path}' was written by a newer version of "
                      f"Fieldmark (schema {major}.{minor}; this version reads {MAJOR}.x). "
                      "Update Fieldmark to open this project.", version)
    elif major < MAJOR:
        raise _refuse(path, f"The project database '{path}' has an old schema ({major}.{minor}) "
                      "that this version of Fieldmark cannot convert. Open it with the "
                      "Fieldmark version that made it and export the labels.", version)
    elif minor >= MINOR:
        return major, minor  # current, or a newer minor that only added things we ignore

    conn.execute("BEGIN IMMEDIATE")
    try:
        if version == 0:
            for statement in BASE_1_0:
                conn.execute(statement)
            major, minor = 1, 0
        step = (major, minor)
        while step[1] < MINOR:
            MIGRATIONS[step](conn)
            step = (step[0], step[1] + 1)
        # user_version is part of the database header, so it commits or rolls back with the
        # migration: a crash mid-way leaves the old schema and the old version number.
        conn.execute(f"PRAGMA user_version = {encode(MAJOR, MINOR)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return decode(version)
