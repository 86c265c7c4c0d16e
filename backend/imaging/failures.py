"""One place that turns "this file cannot be read" into a message for a person.

Every :class:`~backend.errors.ImageReadError` raised by the imaging core comes from
:func:`unreadable`, so the UI can rely on ``detail["reason"]`` (one of :data:`REASONS`) and on the
message naming the file, saying what is wrong and what to do.
"""

from __future__ import annotations

import errno
from pathlib import Path

from backend.errors import ImageReadError

# reason -> (what is wrong, what to do). The reason string itself appears in the message so a
# person can search for it and a test can match it.
REASONS: dict[str, tuple[str, str]] = {
    "not found": ("the file does not exist (moved or deleted?)", "Put it back or remove it from the folder."),
    "not a file": ("it is a folder, not an image file", "Rename or move it out of the image folder."),
    "permission denied": (
        "you do not have permission to read it (or another program holds it locked)",
        "Close other programs using it, or fix the file's permissions.",
    ),
    "zero bytes": ("the file is empty", "Copy the image again from its source."),
    "truncated": (
        "the file ends early, as after an interrupted copy or download",
        "Copy the image again from its source.",
    ),
    "corrupt": ("the image data is damaged", "Copy the image again from its source or re-export it."),
    "not an image": ("the file's content is not an image", "Check that this is the file you meant."),
    "unsupported format": (
        "this kind of image is not supported",
        "Convert it to JPEG, PNG, WebP, BMP or TIFF.",
    ),
    "too large (decompression bomb)": (
        "it claims more pixels than the safety limit allows",
        "Split it into tiles or reduce its resolution.",
    ),
}


def unreadable(path: Path, reason: str, extra: str = "", cause: BaseException | None = None) -> ImageReadError:
    """Build the error for ``path``; ``extra`` adds a specific clause (e.g. the format name)."""
    if reason not in REASONS:
        raise ValueError(f"reason: unknown image-read reason {reason!r}")
    what, todo = REASONS[reason]
    clause = f" ({extra})" if extra else ""
    message = f'Cannot read "{Path(path).name}": {reason} - {what}{clause}. {todo}'
    detail = {"path": str(path), "reason": reason}
    if cause is not None:
        detail["cause"] = f"{type(cause).__name__}: {cause}"
    return ImageReadError(message, detail=detail)


def from_os_error(path: Path, exc: OSError) -> ImageReadError:
    """Map an error from opening/reading the file itself (not from decoding it)."""
    if isinstance(exc, FileNotFoundError):
        return unreadable(path, "not found", cause=exc)
    if isinstance(exc, IsADirectoryError):
        return unreadable(path, "not a file", cause=exc)
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
        return unreadable(path, "permission denied", cause=exc)
    return unreadable(path, "corrupt", extra=f"the disk reported: {exc.strerror or exc}", cause=exc)


def from_decode_error(path: Path, exc: BaseException) -> ImageReadError:
    """Map an exception raised while a decoder parsed or decoded the data."""
    text = str(exc).lower()
    if isinstance(exc, OSError) and not isinstance(exc, (SyntaxError,)) and exc.errno is not None:
        return from_os_error(path, exc)
    if "truncat" in text or isinstance(exc, EOFError) or "end of file" in text or "premature" in text:
        return unreadable(path, "truncated", cause=exc)
    if "imagecodecs" in text:
        return unreadable(
            path,
            "unsupported format",
            extra="its compression (e.g. LZW or JPEG inside TIFF) cannot be decoded for this kind of "
            "TIFF; save it uncompressed or with Deflate/ZIP compression",
            cause=exc,
        )
    return unreadable(path, "corrupt", cause=exc)
