"""Image paths inside a project: validation, natural sort order, and the folder scan.

A relpath is POSIX-style ("sub/dir/img 1.jpg"), relative to the project folder, without ``..``,
empty or ``.`` parts. It is how the store names an image; the file is ``folder / relpath``.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

from backend.errors import InvalidArgument

META_DIR = ".fieldmark"
_WINDOWS = sys.platform == "win32"
_DIGITS = re.compile(r"[0-9]+")
_DRIVE = re.compile(r"^[A-Za-z]:")
# Absolute ("/x", "C:x"), backslash or NUL, or an empty, "." or ".." part. One regex because a
# folder sync checks every path (10,000 of them must take milliseconds, not pathlib's 100 ms).
_UNSAFE = re.compile(r"^/|^[A-Za-z]:|[\\\x00]|(?:^|/)\.{0,2}(?:/|$)")


def check_relpath(relpath: object, field: str = "relpath") -> str:
    """Return ``relpath`` if it is a safe, normalized, relative POSIX path; else InvalidArgument."""
    if not isinstance(relpath, str) or not relpath:
        raise InvalidArgument(f"{field} must be a non-empty text path, got {relpath!r}.")
    if _UNSAFE.search(relpath):
        raise InvalidArgument(
            f"{field} must be a '/'-separated path inside the project folder, got {relpath!r}.")
    return relpath


def natural_key(relpath: str) -> str:
    """Text whose plain (binary) order is the natural, case-insensitive order of ``relpath``.

    "img2.jpg" < "img10.jpg" < "IMG11.jpg". Stored in the ``sort_key`` column so that SQLite can
    ORDER BY it with an index; ties are broken by relpath.
    """
    return _DIGITS.sub(_number_key, relpath.casefold())


def _number_key(match: re.Match[str]) -> str:
    # "\x01", a two-digit length, then the digits without leading zeros: "7" -> "\x01017",
    # "10" -> "\x010210". Text order of these is numeric order (up to 99 digits), and the
    # "\x01" puts a number before any text at the same place ("a1" < "a-1" < "a_1").
    digits = match.group().lstrip("0")
    return f"\x01{min(len(digits), 99):02d}{digits}"


def normalize_extensions(extensions: Iterable[str]) -> tuple[str, ...]:
    """('jpg', '.PNG') -> ('.jpg', '.png'); InvalidArgument for anything else."""
    if isinstance(extensions, str):
        extensions = [extensions]
    out = []
    for ext in extensions:
        if not isinstance(ext, str) or not ext.strip(".").strip() or "/" in ext:
            raise InvalidArgument(f"extensions must be file endings like '.jpg', got {ext!r}.")
        ext = ext.strip().lower()
        out.append(ext if ext.startswith(".") else "." + ext)
    if not out:
        raise InvalidArgument("extensions must name at least one file ending, got none.")
    return tuple(out)


def _hidden(entry: os.DirEntry[str]) -> bool:
    if entry.name.startswith("."):
        return True  # also macOS "._x.jpg" resource forks and our own .fieldmark
    if not _WINDOWS:
        return False
    # On Windows scandir already holds the attributes, so this costs no system call.
    attrs = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
    return bool(attrs & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


def _storable(name: str) -> bool:
    """A name from a disk written elsewhere (Latin-1 on an old USB stick) arrives with lone
    surrogates (PEP 383); SQLite text cannot hold them, so such a file cannot be tracked."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def scan_folder(folder: Path, extensions: tuple[str, ...]
                ) -> tuple[list[tuple[str, int, float]], list[str]]:
    """Walk ``folder`` for files ending in ``extensions`` (lower-case, with dots).

    Returns ``([(relpath, size, mtime), ...], unreadable)``: sub-folders that could not be listed
    and entries whose name is not valid UTF-8, each with why. Hidden files and folders are
    skipped, folder symlinks are not followed (no cycles, no escaping the project), and a
    sub-folder that cannot be listed is reported rather than aborting the scan. No file is
    opened: only directory entries and their stat.
    """
    found: list[tuple[str, int, float]] = []
    unreadable: list[str] = []
    stack: list[tuple[str, str]] = [(str(folder), "")]
    while stack:
        path, prefix = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError:
            if not prefix:
                raise  # the project folder itself: the caller words this for a person
            unreadable.append(prefix.rstrip("/"))
            continue
        for entry in entries:
            try:
                if _hidden(entry) or "\\" in entry.name or _DRIVE.match(entry.name):
                    continue  # hidden, or a name check_relpath would refuse
                if not _storable(entry.name):
                    shown = os.fsencode(entry.name).decode("utf-8", "replace")
                    unreadable.append(f"{prefix}{shown} (its name is not valid UTF-8: rename it)")
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, prefix + entry.name + "/"))
                elif entry.name.lower().endswith(extensions) and entry.is_file():
                    st = entry.stat()
                    found.append((prefix + entry.name, st.st_size, st.st_mtime))
            except OSError:
                continue  # vanished or dangling symlink: not an image we can show
    return found, unreadable
