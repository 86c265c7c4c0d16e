"""Small helpers the build scripts share: checked subprocess calls, timing, sizes."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd: Sequence[str | os.PathLike[str]], *, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> float:
    """Run a command, echoing it; raise SystemExit with its exit code if it fails. Returns seconds."""
    args = [str(c) for c in cmd]
    print("+ " + " ".join(shlex.quote(a) for a in args), flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(args, cwd=cwd or ROOT, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"command failed with exit code {proc.returncode}: {args[0]} {' '.join(args[1:3])}…")
    return time.monotonic() - t0


def require_env(*names: str) -> dict[str, str] | None:
    """The named environment variables if ALL are set (credentials), else None."""
    values = {n: os.environ.get(n, "") for n in names}
    return values if all(values.values()) else None


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def python() -> str:
    return sys.executable
