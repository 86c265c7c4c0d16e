"""Split SQLite failures into the ones a person can fix and bugs (after qutebrowser's sql.py).

Known failures — disk full, read-only, locked/busy, corrupt or not a database, I/O errors —
become :class:`~backend.errors.StoreError` with a message that names the file and says what to
do. Anything else (a syntax error, a constraint we should have validated first) is a bug in
Fieldmark and propagates unchanged so that it reaches a bug report with its traceback.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from backend.errors import StoreError

# Primary result codes (https://www.sqlite.org/rescode.html); extended codes carry the
# primary one in their low byte.
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = (
    3, 5, 6, 8, 10, 11, 13, 14, 26)

# Fallback for errors raised without a result code (older Pythons, some connect() paths).
_BY_TEXT = (
    ("database or disk is full", _FULL),
    ("readonly database", _READONLY),
    ("database is locked", _BUSY),
    ("database table is locked", _LOCKED),
    ("file is not a database", _NOTADB),
    ("disk image is malformed", _CORRUPT),
    ("unable to open database file", _CANTOPEN),
    ("disk i/o error", _IOERR),
)


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(exc).lower()
    for needle, known in _BY_TEXT:
        if needle in text:
            return known
    return None


def _message(code: int, path: Path) -> str | None:
    if code == _FULL:
        return (f"The disk holding the project database '{path}' is full, so the last change "
                "was not saved. Free some disk space, then try again.")
    if code in (_READONLY, _PERM):
        return (f"The project database '{path}' cannot be written: the file or its folder is "
                "read-only. Give yourself write permission there (or copy the project to a "
                "folder you can write to), then open it again.")
    if code in (_BUSY, _LOCKED):
        return (f"The project database '{path}' is locked by another program. Close any other "
                "program that has this project open, then try again.")
    if code in (_CORRUPT, _NOTADB):
        return (f"The project database '{path}' is damaged or is not a Fieldmark project "
                "database. Restore it from a backup, or move the file somewhere else so that "
                "Fieldmark starts a fresh (empty) project in this folder.")
    if code in (_IOERR, _CANTOPEN):
        return (f"Fieldmark could not read or write the project database '{path}'. Check that "
                "the drive is still connected and has free space, then try again.")
    return None


def to_store_error(exc: sqlite3.Error, path: Path) -> StoreError | None:
    """The person-facing error for a known failure, or None when ``exc`` is a bug."""
    code = _primary_code(exc)
    if code is None:
        return None
    message = _message(code, path)
    if message is None:
        return None
    name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    return StoreError(message, detail={"file": str(path), "sqlite_error": name,
                                       "sqlite_message": str(exc)})


@contextlib.contextmanager
def translated(path: Path) -> Iterator[None]:
    """Re-raise known SQLite failures inside the block as StoreError naming ``path``."""
    try:
        yield
    except sqlite3.Error as exc:
        err = to_store_error(exc, path)
        if err is None:
            raise
        raise err from exc
