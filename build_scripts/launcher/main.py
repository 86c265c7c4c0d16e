"""Entry point of the single file: unpack the app once (per build, per user), then run it.

Arguments, standard streams and the exit code are the app's own: on POSIX the launcher
*becomes* the app (exec: same process, same pid, signals and exit code untouched); on Windows
it runs the app as a child and exits with its code.

Environment:
    FIELDMARK_CACHE_DIR        where builds are unpacked (default: the per-user cache folder)
    FIELDMARK_LAUNCHER_REPORT  write what the launcher did (JSON) to this file; for measurements
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from build_scripts.launcher import appcache, payload

# Set by the launcher's own PyInstaller bootloader; the app's bootloader must not see them, or
# it would take itself for a child of this launcher and load libraries from the wrong folder.
_PYI_VARS = ("_PYI_APPLICATION_HOME_DIR", "_PYI_ARCHIVE_FILE", "_PYI_PARENT_PROCESS_LEVEL",
             "_PYI_SPLASH_IPC", "_PYI_LINUX_PROCESS_NAME", "_MEIPASS2")


def app_environment(env: dict[str, str]) -> dict[str, str]:
    """The environment the user started us with (what PyInstaller changed, undone)."""
    env = {k: v for k, v in env.items() if k not in _PYI_VARS}
    for var in ("LD_LIBRARY_PATH", "LIBPATH"):  # Linux, AIX: the bootloader prepended its folder
        orig = env.pop(var + "_ORIG", None)
        if orig is not None:
            env[var] = orig
        else:
            env.pop(var, None)
    env["PYINSTALLER_RESET_ENVIRONMENT"] = "1"
    return env


def _say(message: str) -> None:
    print(f"fieldmark: {message}", file=sys.stderr, flush=True)


def _report(data: dict[str, Any]) -> None:
    path = os.environ.get("FIELDMARK_LAUNCHER_REPORT")
    if path:
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)


def _run_child(argv: list[str], env: dict[str, str]) -> int:
    """Run the app as a child and return its exit code. Ctrl+C reaches the app (same console or
    process group) and the app decides what it means, so the launcher ignores it while it waits
    (``subprocess.call`` would kill the app on it)."""
    proc = subprocess.Popen(argv, env=env)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = proc.wait()
        return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell reports it
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_from_temp(exe: Path, index: dict[str, Any], data_at: int, env: dict[str, str], args: list[str],
                   why: str) -> int:
    """Last resort when the cache folder is unusable: unpack to a temp folder for this run only."""
    _say(f"cannot use the cache folder {appcache.cache_root()} ({why}); unpacking to a temporary "
         "folder for this run only. Set FIELDMARK_CACHE_DIR to a writable folder to start faster.")
    try:
        tmp = Path(tempfile.mkdtemp(prefix="fieldmark-"))
    except OSError as exc:
        _say(f"cannot create a temporary folder either ({exc}); free some disk space or set TMPDIR.")
        return 1
    try:
        payload.extract(exe, index, data_at, tmp / "app")
    except OSError as exc:
        _say(f"cannot unpack into {tmp} ({exc}); free some disk space or set TMPDIR.")
        shutil.rmtree(tmp, ignore_errors=True)
        return 1
    try:
        return _run_child([str(tmp / "app" / index["exe"]), *args], env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(args: list[str] | None = None, exe: Path | None = None) -> int:
    """Run the app packed into ``exe`` (default: this single file) with ``args`` (default: ours)."""
    t0 = time.monotonic()
    args = sys.argv[1:] if args is None else args
    exe = Path(exe or sys.executable).resolve()
    try:
        index, data_at = payload.open_payload(exe)
    except (OSError, payload.PayloadError) as exc:
        _say(f"{exe} is damaged ({exc}); download it again.")
        return 1
    env = app_environment(dict(os.environ))
    env["FIELDMARK_SINGLE_FILE"] = str(exe)  # the file the user started (for messages and logs)
    root = appcache.cache_root()
    name = appcache.folder_name(index)
    try:
        appcache.prepare(root)
        in_use = appcache.hold_shared(root / "locks" / f"{name}.lock")
        if sys.stderr is not None and sys.stderr.isatty() and not appcache.is_complete(root / name, index):
            _say(f"first start of this version: unpacking it once to {root / name}")
        folder, unpacked = appcache.ensure(exe, index, data_at, root)
    except payload.PayloadError as exc:
        _say(f"{exe} is damaged ({exc}); download it again.")
        return 1
    except OSError as exc:  # e.g. no permission, a full disk, a file where the folder should be
        return _run_from_temp(exe, index, data_at, env, args, str(exc))
    app = folder / index["exe"]
    _report({"cache": str(folder), "unpacked": unpacked, "launcher_s": round(time.monotonic() - t0, 3)})
    argv = [str(app), *args]
    if os.name != "posix":  # no exec on Windows: the launcher waits and hands on the exit code
        return _run_child(argv, env)
    try:
        os.execve(app, argv, env)
    except OSError as exc:  # e.g. a cache on a file system mounted noexec
        os.close(in_use)
        return _run_from_temp(exe, index, data_at, env, args, f"cannot run {app}: {exc}")
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    raise SystemExit(main())
