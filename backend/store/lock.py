"""One Fieldmark window per project: an OS lock on ``<folder>/.fieldmark/lock``.

The lock is taken with ``fcntl.flock`` (POSIX) or ``msvcrt.locking`` (Windows). Both are held by
the kernel for the open file and vanish when the process dies, however it dies — so a lock file
left behind by a killed process never blocks (its *content*, the pid, is only for the message).

Caveat for job code: a ``fork()``ed child inherits the descriptor and with it the flock, keeping
the project locked until the child exits. Worker processes must use the ``spawn`` start method.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from pathlib import Path

from backend.errors import ProjectLocked, StoreError

LOCK_NAME = "lock"

# msvcrt locks a byte range; locked bytes cannot be read by others, so the pid lives at offset 0
# and the lock sits on a byte far past it (Windows allows locking beyond end of file).
_WIN_LOCK_OFFSET = 1 << 20

# Folders (resolved) held by this process. flock already refuses a second lock from the same
# process on POSIX; the set makes the refusal explicit and platform-independent.
_held: set[str] = set()
_held_guard = threading.Lock()


def _key(folder: Path) -> str:
    return os.path.normcase(str(folder.resolve()))


def _locked_message(folder: Path, pid: int | None) -> str:
    who = f" (pid {pid})" if pid is not None else ""
    return (f"The project '{folder}' is already open in another Fieldmark window{who}. "
            "Close it there first.")


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _try_lock(fd: int) -> bool:
    """Take the OS lock without waiting; False when someone else holds it."""
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


class ProjectLock:
    """Held from :meth:`acquire` until :meth:`release` (idempotent) or process death."""

    def __init__(self, folder: Path, meta_dir: Path) -> None:
        self.folder = folder
        self.path = meta_dir / LOCK_NAME
        self._fd: int | None = None
        self._key = _key(folder)

    def acquire(self) -> None:
        """Raises ProjectLocked when held elsewhere, StoreError when the file can't be made."""
        with _held_guard:
            if self._key in _held:
                raise ProjectLocked(_locked_message(self.folder, os.getpid()),
                                    detail={"folder": str(self.folder), "pid": os.getpid()})
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StoreError(
                    f"Fieldmark cannot create its lock file '{self.path}' ({exc.strerror}). "
                    "If the folder is read-only, copy the images to a folder you can write to "
                    "and open that one.", detail={"file": str(self.path)}) from exc
            try:
                if not _try_lock(fd):
                    pid = _read_pid(self.path)
                    raise ProjectLocked(_locked_message(self.folder, pid),
                                        detail={"folder": str(self.folder), "pid": pid})
                # Written in place, not via backend.atomic: replacing the file would give it a
                # new inode and the lock we hold would no longer guard the visible file.
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            _held.add(self._key)

    def release(self) -> None:
        with _held_guard:
            if self._fd is None:
                return
            fd, self._fd = self._fd, None
            _held.discard(self._key)
            try:
                _unlock(fd)
            finally:
                os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None
