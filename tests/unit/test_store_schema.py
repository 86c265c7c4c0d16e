"""Schema versions, migrations, and SQLite failures worded for a person."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from backend.errors import StoreError
from backend.store import Project, base, schema
from backend.store.sqlerrors import translated

# Written out by hand (not taken from backend.store.schema), as the first release made it.
V1_0 = """
CREATE TABLE images (id INTEGER PRIMARY KEY, relpath TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new','in_progress','done','skipped')),
    error TEXT, width INTEGER, height INTEGER, mtime REAL NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0);
CREATE TABLE classes (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
    color TEXT NOT NULL);
CREATE TABLE shapes (id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    class_id INTEGER REFERENCES classes(id) ON DELETE SET NULL,
    kind TEXT NOT NULL CHECK (kind IN ('box','polygon','point','mask')), geometry TEXT NOT NULL,
    score REAL, source TEXT NOT NULL DEFAULT 'manual', prompt TEXT,
    status TEXT NOT NULL DEFAULT 'accepted' CHECK (status IN ('accepted','pending','rejected')),
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX shapes_by_image ON shapes(image_id, status);
CREATE INDEX shapes_by_class ON shapes(class_id);
CREATE TABLE undo_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, description TEXT NOT NULL,
    image_id INTEGER, changes TEXT NOT NULL, undone INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL);
"""


def _make_v1_0(folder: Path) -> Path:
    db = folder / ".fieldmark" / "project.sqlite"
    db.parent.mkdir()
    raw = sqlite3.connect(db)
    raw.executescript(V1_0)
    raw.executemany("INSERT INTO images (id, relpath, status) VALUES (?, ?, ?)",
                    [(1, "img10.jpg", "done"), (2, "img2.jpg", "new"), (3, "Img1.jpg", "new")])
    # Ids out of creation order on purpose: the migration orders classes by id.
    raw.executemany("INSERT INTO classes (id, name, color) VALUES (?, ?, ?)",
                    [(7, "wasp", "#00ff00"), (3, "moth", "#ff0000"), (5, "Käfer", "#0000ff")])
    raw.execute("INSERT INTO shapes (image_id, class_id, kind, geometry, created, updated) "
                "VALUES (1, 3, 'box', '[1,2,3,4]', 10.0, 10.0)")
    # Undo steps recorded by 1.0 (whole class rows without 'position'): class 9 was deleted
    # (its shape unassigned), then class 7 was added.
    raw.execute("INSERT INTO shapes (image_id, class_id, kind, geometry, created, updated) "
                "VALUES (2, NULL, 'point', '[5,5]', 10.0, 10.0)")
    deleted = [["shapes", 2, {"class_id": 9}, {"class_id": None}],
               ["classes", 9, {"id": 9, "name": "bee", "color": "#ffff00"}, None]]
    added = [["classes", 7, None, {"id": 7, "name": "wasp", "color": "#00ff00"}]]
    raw.executemany("INSERT INTO undo_log (description, image_id, changes, created) "
                    "VALUES (?, NULL, ?, 11.0)", [("Delete class 'bee'", json.dumps(deleted)),
                                                  ("Add class 'wasp'", json.dumps(added))])
    raw.execute(f"PRAGMA user_version = {1 << 16}")
    raw.commit()
    raw.close()
    return db


def _layout(db: Path) -> dict:
    raw = sqlite3.connect(db)
    tables = [r[0] for r in raw.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    out = {t: sorted((c[1], c[2], c[3], c[4]) for c in raw.execute(f"PRAGMA table_info({t})"))
           for t in tables}
    out["indexes"] = sorted(r[0] for r in raw.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"))
    raw.close()
    return out


def test_version_encoding_is_major_minor() -> None:
    assert schema.encode(1, 2) == 65538
    assert schema.decode(65538) == (1, 2)


def test_fresh_project_is_at_the_current_version(tmp_path: Path) -> None:
    with Project.open(tmp_path) as p:
        assert p.schema_version == (schema.MAJOR, schema.MINOR)


def test_migrates_a_1_0_project_and_keeps_its_data(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    db = _make_v1_0(old)
    with Project.open(old) as p:
        assert p.schema_version == (schema.MAJOR, schema.MINOR)
        assert [i["relpath"] for i in p.images()] == ["Img1.jpg", "img2.jpg", "img10.jpg"]
        assert p.image(1)["status"] == "done" and p.image(1)["pages"] is None
        classes = p.classes()
        assert [(c["name"], c["id"], c["key"]) for c in classes] == [
            ("moth", 3, "1"), ("Käfer", 5, "2"), ("wasp", 7, "3")]
        assert classes[0]["count"] == 1
        assert p.shapes(1)[0]["geometry"] == [1, 2, 3, 4]
        # The 1.0 undo step still works after the migration.
        assert p.undo() == {"image_id": None, "description": "Add class 'wasp'"}
        assert [c["name"] for c in p.classes()] == ["moth", "Käfer"]
        assert p.undo() == {"image_id": None, "description": "Delete class 'bee'"}
        assert [c["name"] for c in p.classes()] == ["moth", "Käfer", "bee"]
        assert p.shapes(2)[0]["class_id"] == 9
        assert p.redo() is not None and p.redo() is not None
        assert [c["name"] for c in p.classes()] == ["moth", "Käfer", "wasp"]
        p.set_setting("x", 1)
        assert p.add_class("new")["key"] == "4"
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with Project.open(fresh) as p:
        pass
    assert _layout(db) == _layout(p.db_path)


def test_failed_migration_leaves_the_old_database(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    db = _make_v1_0(tmp_path)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE images ADD COLUMN half_done INTEGER")
        raise RuntimeError("bug in migration")

    monkeypatch.setitem(schema.MIGRATIONS, (1, 1), broken)
    with pytest.raises(RuntimeError, match="bug in migration"):
        Project.open(tmp_path)
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 1 << 16
    assert "position" not in [c[1] for c in raw.execute("PRAGMA table_info(classes)")]
    raw.close()
    monkeypatch.undo()
    with Project.open(tmp_path) as p:  # lock was released; a fixed version migrates
        assert p.schema_version == (schema.MAJOR, schema.MINOR)


def _set_version(db: Path, version: int) -> None:
    raw = sqlite3.connect(db)
    raw.execute(f"PRAGMA user_version = {version}")
    raw.commit()
    raw.close()


def test_newer_major_is_refused_with_a_message(tmp_path: Path) -> None:
    with Project.open(tmp_path) as p:
        db = p.db_path
    _set_version(db, schema.encode(schema.MAJOR + 1, 0))
    with pytest.raises(StoreError, match="newer version of Fieldmark.*Update Fieldmark") as info:
        Project.open(tmp_path)
    assert str(db) in info.value.message
    _set_version(db, schema.encode(schema.MAJOR, schema.MINOR))
    Project.open(tmp_path).close()  # the refusal did not keep the lock


def test_newer_minor_opens_as_is(tmp_path: Path) -> None:
    with Project.open(tmp_path) as p:
        p.sync_images([("a.jpg", 1, 1.0)])
        db = p.db_path
    newer = schema.encode(schema.MAJOR, schema.MINOR + 5)
    _set_version(db, newer)
    with Project.open(tmp_path) as p:
        assert p.schema_version == (schema.MAJOR, schema.MINOR + 5)
        p.add_shape(p.images()[0]["id"], "point", [1, 1])


def test_other_sqlite_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / ".fieldmark" / "project.sqlite"
    db.parent.mkdir()
    raw = sqlite3.connect(db)
    raw.execute("CREATE TABLE recipes (name TEXT)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="not a Fieldmark project"):
        Project.open(tmp_path)


def test_garbage_database_file_is_named_in_the_message(tmp_path: Path) -> None:
    db = tmp_path / ".fieldmark" / "project.sqlite"
    db.parent.mkdir()
    db.write_bytes(b"this is not sqlite at all\n" * 200)
    with pytest.raises(StoreError, match="damaged or is not a Fieldmark project") as info:
        Project.open(tmp_path)
    assert str(db) in info.value.message
    assert info.value.code == "store_error"
    db.rename(db.with_name("broken.sqlite"))
    with Project.open(tmp_path) as p:  # moving it aside starts fresh, as the message says
        assert p.images() == []


def test_corrupt_pages_inside_a_real_database(tmp_path: Path) -> None:
    with Project.open(tmp_path) as p:
        p.sync_images([(f"dir/img{i}.jpg", i, 1.0) for i in range(3000)])
        db = p.db_path
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 20 * page
    for offset in range(2 * page, len(data), page):  # keep the header and schema page
        data[offset:offset + page] = b"\xa5" * page
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="damaged") as info:
        with Project.open(tmp_path) as p:
            p.images()
    assert str(db) in info.value.message


def test_full_disk_rolls_back_the_edit_and_says_so(tmp_path: Path) -> None:
    with Project.open(tmp_path) as p:
        p.sync_images([("a.jpg", 1, 1.0)])
        a = p.images()[0]["id"]
        p.add_shape(a, "point", [1, 1])
        # A database size cap makes SQLite fail exactly as on a full disk (SQLITE_FULL).
        pages = p._conn.execute("PRAGMA page_count").fetchone()[0]  # type: ignore[union-attr]
        p._conn.execute(f"PRAGMA max_page_count = {pages}")  # type: ignore[union-attr]
        big = [[float(i), float(i % 7)] for i in range(20_000)]
        with pytest.raises(StoreError, match="is full.*Free some disk space") as info:
            p.add_shape(a, "polygon", big)
        assert str(p.db_path) in info.value.message
        assert info.value.detail["sqlite_error"] == "SQLITE_FULL"
        assert len(p.shapes(a)) == 1
        assert p.undo_state()["undo"] == "Add point"
        p.add_shape(a, "point", [2, 2])  # small edits still fit


def test_database_locked_by_another_program(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "BUSY_TIMEOUT_S", 0.05)
    with Project.open(tmp_path) as p:
        other = sqlite3.connect(p.db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match="locked by another program") as info:
            p.add_class("moth")
        assert str(p.db_path) in info.value.message
        other.execute("ROLLBACK")
        other.close()
        assert p.add_class("moth")["name"] == "moth"
        assert p.undo_state()["undo"] == "Add class 'moth'"


def test_bugs_are_not_disguised_as_store_errors(tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        with translated(tmp_path / "x.sqlite"):
            conn.execute("SELECT * FROM nowhere")
    with pytest.raises(StoreError, match="read-only"):
        with translated(tmp_path / "x.sqlite"):
            raise sqlite3.OperationalError("attempt to write a readonly database")
