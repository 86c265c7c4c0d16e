"""One Fieldmark window per project: an OS lock on ``<folder>/.fieldmark/lock``.

The lock is taken with ``fcntl.flock`` (POSIX) or ``msvcrt.locking`` (Windows). Both are held by
the kernel for the open file and vanish when the process dies, however it dies — so a lock file
left behind by a killed process never blocks (its *content*, the pid, is only for the message).

Some file systems (network shares, FUSE mounts) have no ``flock``; there the POSIX record lock
(``fcntl.lockf``, what SQLite itself relies on) stands in. Where neither exists the project is
refused with a message: without a lock two windows could interleave their edits and their undo
histories, and SQLite's own locking would not work there either.

Caveats for job code: a ``fork()``ed child inherits the descriptor and with it the flock, keeping
the project locked until the child exits, so worker processes must use the ``spawn`` start
method. A ``lockf`` lock is dropped when the process closes *any* descriptor of the lock file, so
nothing else may open it while it is held.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import threading
from pathlib import Path

from backend.errors import ProjectLocked, StoreError

log = logging.getLogger(__name__)

LOCK_NAME = "lock"

# msvcrt locks a byte range; locked bytes cannot be read by others, so the pid lives at offset 0
# and the lock sits on a byte far past it (Windows allows locking beyond end of file).
_WIN_LOCK_OFFSET = 1 << 20

# errno of a lock held by someone else, of a folder we may not write, of a file system without
# this kind of lock (ENOTSUP is EOPNOTSUPP on Linux, not everywhere).
_HELD = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP),
             errno.ENOSYS, errno.EINVAL}

# Folders (resolved) held by this process. flock already refuses a second lock from the same
# process on POSIX; the set makes the refusal explicit and platform-independent (lockf and msvcrt
# do not refuse their own process).
_held: set[str] = set()
_held_guard = threading.Lock()


def _key(folder: Path) -> str:
    return os.path.normcase(str(folder.resolve()))


def _locked_message(folder: Path, pid: int | None) -> str:
    who = f" (pid {pid})" if pid is not None else ""
    return (f"The project '{folder}' is already open in another Fieldmark window{who}. "
            "Close it there first.")


def read_only_error(folder: Path, path: Path, exc: OSError) -> StoreError:
    """The project folder (or its ``.fieldmark``) cannot be written: no label could be saved."""
    return StoreError(
        f"The project folder '{folder}' is read-only (Fieldmark cannot write '{path}': "
        f"{exc.strerror}), so no label could be saved there. Copy the images, together with the "
        "hidden '.fieldmark' folder that holds the labels made so far, to a folder you can write "
        "to and open the copy, or ask for write permission on this folder.",
        detail={"folder": str(folder), "file": str(path), "errno": exc.errno})


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _try_lock(fd: int) -> str | None:
    """Take the OS lock without waiting: the kind taken, or None when someone else holds it.

    Raises OSError when the file system offers no lock at all (errno in ``_NO_LOCKS``) or fails.
    """
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return None
        return "msvcrt"
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return "flock"
    except OSError as exc:
        if exc.errno in _HELD:
            return None
        if exc.errno not in _NO_LOCKS:
            raise
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return "lockf"
    except OSError as exc:
        if exc.errno in _HELD:
            return None
        raise


def _unlock(fd: int, kind: str) -> None:
    if kind == "msvcrt":
        import msvcrt

        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        (fcntl.flock if kind == "flock" else fcntl.lockf)(fd, fcntl.LOCK_UN)


def _lock_failed(folder: Path, path: Path, exc: OSError) -> StoreError:
    if exc.errno in _NO_LOCKS:
        return StoreError(
            f"The drive holding the project '{folder}' does not support file locks "
            f"({exc.strerror}; a network share, perhaps), so Fieldmark cannot make sure that only "
            "one window changes this project. Copy the images, together with the hidden "
            "'.fieldmark' folder, to a folder on this computer's own disk and open the copy.",
            detail={"folder": str(folder), "file": str(path), "errno": exc.errno})
    return StoreError(
        f"Fieldmark could not lock the project '{folder}' ({exc.strerror}, on '{path}'). Check "
        "that the drive is still connected, then open the project again.",
        detail={"folder": str(folder), "file": str(path), "errno": exc.errno})


def _write_holder(fd: int) -> None:
    """Write our pid for the message of a refused window; best effort.

    In place, not via backend.atomic: replacing the file would give it a new inode and the lock
    we hold would no longer guard the visible file. Written before truncating, so a reader never
    sees an empty file; failing (a full disk) only costs the pid in another window's message.
    """
    data = f"{os.getpid()}\n".encode("ascii")
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, data)
        os.ftruncate(fd, len(data))
    except OSError:
        pass


class ProjectLock:
    """Held from :meth:`acquire` until :meth:`release` (idempotent) or process death."""

    def __init__(self, folder: Path, meta_dir: Path) -> None:
        self.folder = folder
        self.path = meta_dir / LOCK_NAME
        self._fd: int | None = None
        self._kind = ""
        self._key = _key(folder)

    def acquire(self) -> None:
        """Raises ProjectLocked when held elsewhere, StoreError when the file can't be made or
        the drive has no locks."""
        with _held_guard:
            if self._key in _held:
                raise ProjectLocked(_locked_message(self.folder, os.getpid()),
                                    detail={"folder": str(self.folder), "pid": os.getpid()})
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                if exc.errno in _READ_ONLY:
                    raise read_only_error(self.folder, self.path, exc) from exc
                raise StoreError(
                    f"Fieldmark cannot use its lock file '{self.path}' ({exc.strerror}). It only "
                    "marks the project as open: move it out of the way, then open the project "
                    "again.", detail={"folder": str(self.folder), "file": str(self.path),
                                      "errno": exc.errno}) from exc
            try:
                try:
                    kind = _try_lock(fd)
                except OSError as exc:
                    raise _lock_failed(self.folder, self.path, exc) from exc
                if kind is None:
                    pid = _read_pid(self.path)
                    raise ProjectLocked(_locked_message(self.folder, pid),
                                        detail={"folder": str(self.folder), "pid": pid})
                if kind == "lockf":
                    log.warning("no flock on the drive of %s (a network share?); a record lock "
                                "guards the project instead", self.path)
                _write_holder(fd)
            except BaseException:
                os.close(fd)
                raise
            self._fd, self._kind = fd, kind
            _held.add(self._key)

    def release(self) -> None:
        with _held_guard:
            if self._fd is None:
                return
            fd, self._fd = self._fd, None
            _held.discard(self._key)
            try:
                _unlock(fd, self._kind)
            finally:
                os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None
