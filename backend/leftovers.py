"""Temporary files and folders named after the process that made them, removed once it is gone.

A process killed mid-write (battery, SIGKILL) cannot clean up after itself; the next one can,
when the names say whose they are. Only POSIX can ask whether a pid lives without side effects
(``os.kill(pid, 0)`` on Windows would end that process), so elsewhere nothing is swept.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def pid_gone(pid: int) -> bool:
    """True only when ``pid`` certainly no longer runs (False when alive, unknown, or us)."""
    if os.name != "posix" or pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False                          # alive, owned by someone else
    return False


def orphans(folder: Path, pattern: str) -> list[Path]:
    """Entries of ``folder`` whose name fully matches ``pattern`` (a regex with a ``pid`` group)
    and whose process has ended."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = []
    for name in names:
        m = re.fullmatch(pattern, name)
        if m is not None and pid_gone(int(m.group("pid"))):
            found.append(Path(folder) / name)
    return found


def remove(path: Path) -> None:
    log.info("removing %s, left by a Fieldmark process that ended", path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except OSError:
            pass
