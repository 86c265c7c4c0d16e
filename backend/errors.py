"""Errors that carry a message for a person.

Every error that can reach a user is a :class:`FieldmarkError`: ``code`` is stable and
machine-readable, ``message`` is a sentence for a person (what happened, which file, what to
do), ``detail`` is for a bug report. The bridge turns these into
``{"error": {"code", "message", "detail"}}``; anything else escaping a handler is a bug and is
reported as ``internal``.
"""

from __future__ import annotations

from typing import Any


class FieldmarkError(Exception):
    code = "error"

    def __init__(self, message: str, *, code: str | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": self.detail}


class InvalidArgument(FieldmarkError):
    """A caller (the page, the CLI) passed something malformed; the message names the field."""

    code = "invalid_argument"


class NotFound(FieldmarkError):
    code = "not_found"


class ProjectLocked(FieldmarkError):
    code = "project_locked"


class StoreError(FieldmarkError):
    """A known SQLite failure (disk full, read-only, locked, corrupt), worded for a person."""

    code = "store_error"


class ImageReadError(FieldmarkError):
    code = "image_unreadable"


class PackError(FieldmarkError):
    """A model pack is missing, corrupt, or does not match what the runtime expects."""

    code = "pack_invalid"


class PathOutsideError(FieldmarkError):
    code = "path_outside"
