"""The per-user cache of unpacked apps: one folder per build, unpacked once, safe to share.

``<cache>`` is ``~/.cache/fieldmark/apps`` (Linux), ``~/Library/Caches/Fieldmark/apps`` (macOS),
``%LOCALAPPDATA%\\Fieldmark\\Cache\\apps`` (Windows), or ``$FIELDMARK_CACHE_DIR``:

    <cache>/app-<version>-<build id>/     a complete app (holds MARKER, written before the rename)
    <cache>/app-<...>.partial-<pid>-<n>   being unpacked (renamed to the above when complete)
    <cache>/locks/app-<...>.lock          held SHARED by every running app of that build (POSIX)
    <cache>/locks/app-<...>.unpack.lock   held EXCLUSIVELY while that build is being unpacked

Rules: a folder becomes visible only by one atomic rename of a fully written folder, so a
crash or a full disk never leaves a half app under the final name. Every start checks the
marker and every entry's size (one lstat each, a few ms); anything missing or wrong is moved
aside and unpacked again. Two first starts of the same build wait for one another instead of
both unpacking. At each start the folders of other builds are removed (a directory listing when
there are none), except those a running app still holds (its shared lock, inherited through
exec, lasts as long as the app runs; on Windows a folder in use cannot be renamed, which has
the same effect).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from build_scripts.launcher import payload

MARKER = ".fieldmark-complete"
STALE_PARTIAL_S = 3600  # a .partial folder of another build older than this is a crash's leftover

if os.name == "posix":
    import fcntl
else:  # Windows
    import msvcrt


def cache_root() -> Path:
    """``$FIELDMARK_CACHE_DIR``, else ``apps`` in the platform's per-user cache folder (a folder
    of its own: pruning must never meet anything but unpacked apps)."""
    override = os.environ.get("FIELDMARK_CACHE_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "Fieldmark" / "Cache"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches" / "Fieldmark"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fieldmark"
    return base / "apps"


def prepare(root: Path) -> None:
    """Create ``root`` (private to this user) and refuse one that others could write to: the
    launcher runs what it finds there. Raises OSError (the launcher then unpacks to a temp folder)."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name == "posix":
        meta = root.stat()
        if meta.st_uid != os.getuid() or meta.st_mode & 0o022:
            raise PermissionError(f"{root} belongs to another user or others can write to it")


def folder_name(index: dict[str, Any]) -> str:
    return f"app-{index['version']}-{index['build_id'][:16]}"


# -- locks -------------------------------------------------------------------------------------

def _open_lock(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


def _try_lock(fd: int, *, shared: bool) -> bool:
    if os.name == "posix":
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    if shared:  # Windows has no shared lock; a folder in use cannot be renamed there anyway
        return True
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


@contextmanager
def exclusive(path: Path, timeout_s: float = 600) -> Iterator[None]:
    """Hold an exclusive lock on ``path``; after ``timeout_s`` go on without it (the rename keeps
    things consistent; the lock only saves a second unpacking)."""
    fd = _open_lock(path)
    try:
        deadline = time.monotonic() + timeout_s
        while not _try_lock(fd, shared=False) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def hold_shared(path: Path) -> int:
    """A shared lock on ``path`` that the started app inherits (POSIX: through exec) and holds
    until it exits; pruning never removes a build whose lock someone holds. Returns the fd."""
    fd = _open_lock(path)
    while not _try_lock(fd, shared=True):  # only while a pruner holds it for a moment
        time.sleep(0.05)
    os.set_inheritable(fd, True)
    return fd


# -- the cache ------------------------------------------------------------------------------------

def is_complete(folder: Path, index: dict[str, Any]) -> bool:
    try:
        marker = (folder / MARKER).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return marker == index["build_id"] and not payload.problems(folder, index)


def _discard(folder: Path, root: Path) -> None:
    """Move ``folder`` out of the way at once (a rename), then delete it as far as possible."""
    trash = root / f".trash-{os.getpid()}-{time.monotonic_ns()}"
    try:
        os.rename(folder, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def ensure(exe: Path, index: dict[str, Any], data_at: int, root: Path) -> tuple[Path, bool]:
    """The complete unpacked app of this build under ``root``, unpacking it if needed, and the
    other builds' folders that nothing holds removed. Returns (folder, whether it was unpacked
    now). Raises OSError when ``root`` is unusable, PayloadError when ``exe`` is damaged."""
    folder, unpacked = _ensure(exe, index, data_at, root)
    try:
        prune(root, keep=folder.name)
    except OSError:  # tidying up must never stop the app from starting
        pass
    return folder, unpacked


def _ensure(exe: Path, index: dict[str, Any], data_at: int, root: Path) -> tuple[Path, bool]:
    name = folder_name(index)
    final = root / name
    prepare(root)
    if is_complete(final, index):
        return final, False
    with exclusive(root / "locks" / f"{name}.unpack.lock"):
        if is_complete(final, index):  # another start unpacked it while we waited
            return final, False
        for leftover in root.glob(f"{name}.partial-*"):  # a crashed unpacking of this build
            _discard(leftover, root)
        if final.exists() or final.is_symlink():  # damaged: missing or truncated files, no marker
            _discard(final, root)
        partial = root / f"{name}.partial-{os.getpid()}-{time.monotonic_ns()}"
        try:
            payload.extract(exe, index, data_at, partial)
            (partial / MARKER).write_text(index["build_id"] + "\n", encoding="utf-8")
            os.rename(partial, final)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    return final, True


def prune(root: Path, keep: str) -> list[str]:
    """Remove the folders of other builds that no running app holds; returns their names."""
    removed = []
    now = time.time()
    for entry in sorted(root.iterdir()):
        name = entry.name
        if name == keep or name.startswith(keep + ".") or not entry.is_dir():
            continue
        if name.startswith(".trash-"):
            shutil.rmtree(entry, ignore_errors=True)
        elif ".partial-" in name:
            if now - entry.stat().st_mtime > STALE_PARTIAL_S:
                shutil.rmtree(entry, ignore_errors=True)
        elif name.startswith("app-"):
            fd = _open_lock(root / "locks" / f"{name}.lock")
            try:
                if _try_lock(fd, shared=False):
                    _discard(entry, root)
                    removed.append(name)
            except OSError:  # Windows: in use, so it cannot be renamed
                pass
            finally:
                os.close(fd)
    return removed
