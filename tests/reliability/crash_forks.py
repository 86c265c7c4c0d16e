"""The test side of ``crash_zygote.py``: start the fork server, send it workers, read answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ZYGOTE = Path(__file__).with_name("crash_zygote.py")


class ForkServer:
    """One ``crash_zygote.py`` process; :meth:`run` forks a worker and waits for its end."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        full = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1",
                # One BLAS thread: the server forks, and a forked thread pool is a liability.
                "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, str(ZYGOTE)], cwd=ROOT, env=full,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1)

    def run(self, job: str, args: dict[str, Any], stderr: Path, *,
            kill_after: float | None = None, from_log: bool = False, timeout: float = 120.0,
            env: dict[str, str] | None = None) -> dict[str, Any]:
        """Fork a worker (see crash_zygote.py); returns ``{"pid", "exit", "killed", ...}``."""
        request = {"job": job, "args": args, "stderr": str(stderr), "env": env or {},
                   "kill_after": kill_after, "from_log": from_log, "timeout": timeout}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(30)
            raise RuntimeError(f"the fork server died (exit {self.proc.returncode}); "
                               "run tests/reliability/crash_zygote.py by hand to see why")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return "(no output)"
