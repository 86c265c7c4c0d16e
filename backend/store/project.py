"""A project: a folder of images plus ``<folder>/.fieldmark/project.sqlite`` with its labels.

``Project.open(folder)`` creates ``.fieldmark`` when needed, takes the folder lock (one window
per project), and creates or migrates the schema. Every edit is committed when the method
returns — there is no save step — and is one step of the undo history, which is kept in the
database too. Errors a person can fix are FieldmarkError subclasses naming the file.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

from backend.errors import NotFound, StoreError
from backend.store import schema, undo
from backend.store import validate as v
from backend.store.base import DB_NAME, connect
from backend.store.classes import ClassesMixin
from backend.store.images import ImagesMixin
from backend.store.lock import ProjectLock
from backend.store.proposals import ProposalsMixin
from backend.store.relpaths import META_DIR
from backend.store.runs import RunsMixin
from backend.store.shapes import ShapesMixin
from backend.store.sqlerrors import translated

_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)


def _make_meta_dir(folder: Path) -> Path:
    meta = folder / META_DIR
    try:
        meta.mkdir(exist_ok=True)
    except FileExistsError as exc:  # exist_ok covers a folder only: this is a file (or a link)
        raise StoreError(
            f"Fieldmark keeps the labels of '{folder}' in a folder named '{META_DIR}' inside it, "
            f"but '{meta}' is a file. Rename or move that file, then open the project again.",
            detail={"folder": str(folder), "file": str(meta)}) from exc
    except OSError as exc:
        if exc.errno in _READ_ONLY:
            raise StoreError(
                f"The folder '{folder}' is read-only, so Fieldmark cannot keep its labels there "
                f"(in '{meta}'). Copy the images to a folder you can write to, or ask for write "
                "permission on this one, then open it again.",
                detail={"folder": str(folder), "errno": exc.errno}) from exc
        raise StoreError(f"Fieldmark cannot create the folder '{meta}' ({exc.strerror}). "
                         "Check the drive and its free space, then open the project again.",
                         detail={"folder": str(folder), "errno": exc.errno}) from exc
    return meta


class Project(ProposalsMixin, RunsMixin, ShapesMixin, ClassesMixin, ImagesMixin):
    """Open with :meth:`open`; use as a context manager or call :meth:`close`."""

    @classmethod
    def open(cls, folder: Path | str) -> Project:
        """Open (creating if needed) the project in ``folder``.

        Raises NotFound (no such folder), ProjectLocked (open elsewhere), StoreError (read-only
        folder, damaged database, schema from a newer Fieldmark).
        """
        if not isinstance(folder, (str, Path)) or not str(folder):
            raise NotFound(f"A project must be a folder, got {folder!r}.")
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise NotFound(f"The folder '{path}' does not exist (or is not a folder). Check the "
                           "path, or reconnect the drive it is on.", detail={"folder": str(path)})
        path = path.resolve()
        meta = _make_meta_dir(path)
        lock = ProjectLock(path, meta)
        lock.acquire()
        db_path = meta / DB_NAME
        try:
            with translated(db_path):
                conn = connect(db_path)
                try:
                    schema.prepare(conn, db_path)
                except BaseException:
                    conn.close()
                    raise
        except BaseException:
            lock.release()
            raise
        return cls(path, db_path, conn, lock)

    def __enter__(self) -> Project:
        return self

    def __repr__(self) -> str:
        return f"<Project {str(self.folder)!r}{' closed' if self.closed else ''}>"

    # -- undo / redo ------------------------------------------------------------------------

    def undo(self) -> dict[str, Any] | None:
        """Undo the last edit: ``{"image_id", "description"}``, or None if there is none."""
        return self._step(redo=False)

    def redo(self) -> dict[str, Any] | None:
        """Redo the last undone edit: ``{"image_id", "description"}``, or None."""
        return self._step(redo=True)

    def _step(self, *, redo: bool) -> dict[str, Any] | None:
        try:
            with self._write() as conn:
                return undo.step(conn, redo=redo)
        except undo.HistoryMismatchError as exc:
            # The edit was rolled back; a history that does not fit would fail again at every
            # attempt, so drop it rather than leave Undo stuck.
            with self._write() as conn:
                undo.clear(conn)
            raise undo.mismatch_error(self.db_path, exc) from exc

    def undo_state(self) -> dict[str, Any]:
        """``{"can_undo", "can_redo", "undo": description | None, "redo": description | None}``."""
        with self._read() as conn:
            return undo.state(conn)

    # -- settings (per project, not undoable) -----------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        key = v.check_setting_key(key)
        with self._read() as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        try:
            return json.loads(row[0])
        except ValueError:
            return default  # written by hand or by a bug: behave as if unset

    def set_setting(self, key: str, value: Any) -> None:
        """Store any JSON value under ``key``."""
        key = v.check_setting_key(key)
        text = v.setting_json(key, value)
        with self._write() as conn:
            conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, text))

    @property
    def schema_version(self) -> tuple[int, int]:
        with self._read() as conn:
            return schema.decode(conn.execute("PRAGMA user_version").fetchone()[0])

