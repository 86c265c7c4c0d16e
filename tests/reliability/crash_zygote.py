"""A fork server for the crash tests: imports the app once, then forks one worker per request.

Starting Python and importing numpy, onnxruntime and the backend costs about a second; the
crash tests kill well over a hundred workers, so each one is ``fork()``ed from this process
instead. A forked worker is an ordinary process running the real code: SIGKILL ends it the way
it ends any process (open files, SQLite's WAL and the folder lock are dropped by the kernel).
This process never opens a project, so no worker inherits a lock (see backend/store/lock.py).

This process also delivers the SIGKILL: as the worker's parent it reaps it, so the pid cannot
be reused by another process before the signal is sent.

Protocol, one JSON object per line. Request on stdin: ``{"job": "writer" | "autolabel",
"stderr": path, "env": {...}, "args": {...}, "kill_after": seconds or null, "from_log": bool,
"timeout": seconds}``. ``kill_after`` counts from the fork, or with ``from_log`` from the moment
the worker's side log (``args["log"]``) is first non-empty; null lets the worker finish (killed
at ``timeout`` anyway). Answer on stdout: ``{"pid", "exit": code (-9 for SIGKILL), "killed":
bool, "timed_out": bool, "alive_s": seconds}``. POSIX only.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import onnxruntime  # noqa: E402,F401

import main  # noqa: E402,F401 — imported here once so that workers start warm
from backend.ai import runs, services  # noqa: E402,F401
from backend.api import service  # noqa: E402,F401
from backend.cli import autolabel  # noqa: E402,F401
from tests.reliability import crash_batch, crash_writer  # noqa: E402


def _worker(request: dict[str, Any]) -> int:
    """Runs in the forked child; returns its exit code."""
    os.environ.update(request.get("env", {}))
    args = request["args"]
    if request["job"] == "writer":
        crash_writer.work(Path(args["folder"]), Path(args["log"]), int(args["seed"]),
                          Path(args["data"]))
        return 0
    if request["job"] == "autolabel":
        return crash_batch.work(args["argv"], Path(args["log"]))
    raise ValueError(f"unknown job {request['job']!r}")


def _fork(request: dict[str, Any]) -> int:
    sys.stdout.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(err, 1)  # the protocol channel is the parent's alone
        os.dup2(err, 2)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        code = _worker(request)
    except BaseException:  # noqa: BLE001 — reported through the exit code and the stderr file
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    return 0  # not reached


def _watch(pid: int, request: dict[str, Any]) -> dict[str, Any]:
    """Wait for the worker; SIGKILL it when its time comes. Returns the answer."""
    started = time.monotonic()
    log = Path(request["args"]["log"])
    kill_after = request.get("kill_after")
    hard = started + float(request.get("timeout", 120))
    deadline = started + kill_after if kill_after is not None and not request.get("from_log") \
        else None
    killed = timed_out = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        now = time.monotonic()
        if deadline is None and kill_after is not None and log.exists() \
                and log.stat().st_size > 0:
            deadline = now + kill_after
        if (deadline is not None and now >= deadline) or now >= hard:
            timed_out = deadline is None or now < deadline
            os.kill(pid, signal.SIGKILL)
            killed = True
            _, status = os.waitpid(pid, 0)
            break
        time.sleep(0.001)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return {"pid": pid, "exit": code, "killed": killed and code == -signal.SIGKILL,
            "timed_out": timed_out, "alive_s": round(time.monotonic() - started, 4)}


def serve() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        pid = _fork(request)
        print(json.dumps(_watch(pid, request)), flush=True)


if __name__ == "__main__":
    serve()
