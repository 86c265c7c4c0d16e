"""Images of a project: folder sync and scan, the list, probed info, and the (undoable) status.

An image record is ``{"id", "name", "relpath", "status", "error", "width", "height", "pages",
"shape_count"}``; ``shape_count`` counts shapes that are not rejected. Images whose file is gone
are kept, with their shapes, and carry ``error == "missing"`` until the file comes back.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from backend.errors import InvalidArgument, StoreError
from backend.store import validate as v
from backend.store.base import UNSET, StoreBase
from backend.store.relpaths import check_relpath, natural_key, normalize_extensions, scan_folder

MISSING = "missing"
_STATUS_WORDS = {"new": "new", "in_progress": "in progress", "done": "done",
                 "skipped": "skipped"}

_SELECT = """
    SELECT i.id, i.relpath, i.status, i.error, i.width, i.height, i.pages,
           COALESCE(c.n, 0) AS shape_count
    FROM images AS i
    LEFT JOIN (SELECT image_id, COUNT(*) AS n FROM shapes WHERE status != 'rejected'
               GROUP BY image_id) AS c ON c.image_id = i.id
"""


def _record(row: sqlite3.Row) -> dict[str, Any]:
    relpath = row["relpath"]
    return {"id": row["id"], "name": relpath.rsplit("/", 1)[-1], "relpath": relpath,
            "status": row["status"], "error": row["error"], "width": row["width"],
            "height": row["height"], "pages": row["pages"], "shape_count": row["shape_count"]}


def _check_entry(entry: Any) -> tuple[str, int, float]:
    if not isinstance(entry, (tuple, list)) or len(entry) != 3:
        raise InvalidArgument(f"entries must be (relpath, size, mtime) triples, got {entry!r}.")
    relpath, size, mtime = entry
    check_relpath(relpath)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidArgument(f"size of {relpath!r} must be a byte count, got {size!r}.")
    if isinstance(mtime, bool) or not isinstance(mtime, (int, float)) or not math.isfinite(mtime):
        raise InvalidArgument(f"mtime of {relpath!r} must be a finite number, got {mtime!r}.")
    return relpath, size, float(mtime)


class ImagesMixin(StoreBase):
    def _image(self, conn: sqlite3.Connection, image_id: int) -> dict[str, Any]:
        self._require(conn, "images", image_id, "image")
        return _record(conn.execute(_SELECT + " WHERE i.id = ?", (image_id,)).fetchone())

    def sync_images(self, entries: Iterable[tuple[str, int, float]]) -> dict[str, int]:
        """Bring the image table in line with a folder listing of ``(relpath, size, mtime)``.

        New files are added (status ``new``); files no longer listed get ``error="missing"``
        and keep their shapes; a missing file that is listed again loses that error; a file
        whose size or mtime changed is reset to "not probed" (width/height/pages/error null).
        Returns ``{"added", "missing", "changed", "total"}``. Not undoable (it mirrors disk).
        """
        listed = {}
        for entry in entries:
            relpath, size, mtime = _check_entry(entry)
            listed[relpath] = (size, mtime)
        with self._write() as conn:
            known = {r[0]: (r[1], r[2], r[3], r[4]) for r in conn.execute(
                "SELECT relpath, id, size, mtime, error FROM images")}
            added = [(rp, natural_key(rp), size, mtime) for rp, (size, mtime) in listed.items()
                     if rp not in known]
            conn.executemany("INSERT INTO images (relpath, sort_key, size, mtime) "
                             "VALUES (?, ?, ?, ?)", added)
            changed, returned, gone = [], [], []
            for rp, (image_id, size, mtime, error) in known.items():
                now = listed.get(rp)
                if now is None:
                    if error != MISSING:
                        gone.append((MISSING, image_id))
                elif now != (size, mtime):
                    changed.append((now[0], now[1], image_id))
                elif error == MISSING:
                    returned.append((image_id,))
            conn.executemany("UPDATE images SET size = ?, mtime = ?, width = NULL, "
                             "height = NULL, pages = NULL, error = NULL WHERE id = ?", changed)
            conn.executemany("UPDATE images SET error = NULL WHERE id = ?", returned)
            conn.executemany("UPDATE images SET error = ? WHERE id = ?", gone)
        missing = sum(1 for rp in known if rp not in listed)
        return {"added": len(added), "missing": missing, "changed": len(changed),
                "total": len(known) + len(added)}

    def scan(self, extensions: Iterable[str]) -> dict[str, Any]:
        """Walk the folder for image files (no decoding) and :meth:`sync_images` the result.

        Returns the sync counts plus ``"unreadable"``: sub-folders that could not be listed.
        """
        endings = normalize_extensions(extensions)
        try:
            found, unreadable = scan_folder(self.folder, endings)
        except OSError as exc:
            raise StoreError(f"Fieldmark cannot list the files in '{self.folder}' "
                             f"({exc.strerror}). Check that the folder still exists and that "
                             "you may read it.", detail={"folder": str(self.folder)}) from exc
        result: dict[str, Any] = dict(self.sync_images(found))
        result["unreadable"] = unreadable
        return result

    def images(self, query: str | None = None, status: str | None = None
               ) -> list[dict[str, Any]]:
        """Image records in natural path order, optionally filtered.

        ``query`` matches anywhere in the relpath, ignoring case; ``status`` must be one of
        ``new``, ``in_progress``, ``done``, ``skipped``.
        """
        if query is not None and not isinstance(query, str):
            raise InvalidArgument(f"query must be text or null, got {query!r}.")
        if status is not None:
            v.check_choice(status, v.IMAGE_STATUSES, "status")
        needle = query.strip().casefold() if query else None
        with self._read() as conn:
            rows = conn.execute(
                _SELECT + " WHERE (?1 IS NULL OR i.status = ?1)"
                " AND (?2 IS NULL OR fm_contains(i.relpath, ?2)) ORDER BY i.sort_key, i.relpath",
                (status, needle or None)).fetchall()
        return [_record(r) for r in rows]

    def image_count(self) -> int:
        """How many images the project lists (one COUNT, not the whole list)."""
        with self._read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])

    def image(self, image_id: int) -> dict[str, Any]:
        v.check_id(image_id, "image_id")
        with self._read() as conn:
            return self._image(conn, image_id)

    def image_path(self, image_id: int) -> Path:
        """The file of an image, always inside the project folder."""
        relpath = self.image(image_id)["relpath"]
        # Checked again on the way out: the database may come from someone else's machine.
        check_relpath(relpath)
        return self.folder.joinpath(*PurePosixPath(relpath).parts)

    def update_image_info(self, image_id: int, *, width: Any = UNSET, height: Any = UNSET,
                          pages: Any = UNSET, error: Any = UNSET) -> dict[str, Any]:
        """Record what the imaging layer probed. Arguments not given stay as they are;
        ``error=None`` clears an error. Not undoable (it describes the file, not an edit)."""
        v.check_id(image_id, "image_id")
        values: dict[str, Any] = {}
        for field, value in (("width", width), ("height", height), ("pages", pages)):
            if value is not UNSET:
                values[field] = v.check_optional_positive_int(value, field)
        if error is not UNSET:
            values["error"] = v.check_optional_text(error, "error", v.MAX_ERROR)
        with self._write() as conn:
            self._require(conn, "images", image_id, "image")
            if values:
                conn.execute(f"UPDATE images SET {', '.join(f'{k} = ?' for k in values)} "
                             "WHERE id = ?", (*values.values(), image_id))
            return self._image(conn, image_id)

    def set_image_status(self, image_id: int, status: str) -> dict[str, Any]:
        """Set ``new``/``in_progress``/``done``/``skipped``; one undo step when it changes."""
        v.check_id(image_id, "image_id")
        v.check_choice(status, v.IMAGE_STATUSES, "status")
        with self._edit() as rec:
            row = self._require(rec.conn, "images", image_id, "image")
            name = row["relpath"].rsplit("/", 1)[-1]
            rec.description = f"Mark '{name}' {_STATUS_WORDS[status]}"
            rec.image_id = image_id
            rec.update("images", image_id, {"status": status})
            return self._image(rec.conn, image_id)
