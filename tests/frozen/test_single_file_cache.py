"""The built single file (dist/fieldmark) as a user meets it: its first start unpacks the app
into the per-user cache, later starts run it from there, a damaged cache is repaired, and the
command line (arguments, output, exit codes) is the app's own. Skipped without a built single
file; the cache code itself is tested on a small app in test_launcher_cache.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from backend import __version__
from build_scripts.launcher import appcache, payload


@pytest.fixture(scope="module")
def single_file(binary: Path) -> Path:
    if binary.parent.name != "dist":
        pytest.skip("a one-folder app has no launcher")
    return binary


def _run(exe: Path, tmp_path: Path, *args: str, cache: Path | None = None) -> tuple[subprocess.CompletedProcess[str],
                                                                                   dict[str, object]]:
    report = tmp_path / "launcher.json"
    report.unlink(missing_ok=True)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", FIELDMARK_DATA_DIR=str(tmp_path / "data"),
               FIELDMARK_LAUNCHER_REPORT=str(report))
    if cache is not None:
        env["FIELDMARK_CACHE_DIR"] = str(cache)
    proc = subprocess.run([str(exe), *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, check=False)
    return proc, json.loads(report.read_text(encoding="utf-8")) if report.is_file() else {}


def test_the_first_start_unpacks_once_later_starts_reuse_and_damage_is_repaired(single_file: Path,
                                                                                 tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    index, _ = payload.open_payload(single_file)
    folder = cache / appcache.folder_name(index)
    proc, did = _run(single_file, tmp_path, "--version", cache=cache)
    assert proc.returncode == 0 and proc.stdout.strip() == f"Fieldmark {__version__}", proc.stderr[-2000:]
    assert did["unpacked"] is True and did["cache"] == str(folder)
    assert (folder / appcache.MARKER).read_text().strip() == index["build_id"]
    qt_core = next(folder.glob("_internal/PySide6/Qt/lib/libQt6Core.so*"), None) or folder / index["exe"]
    inode = qt_core.stat().st_ino

    proc, did = _run(single_file, tmp_path, "--version", cache=cache)
    assert proc.returncode == 0 and did["unpacked"] is False
    assert qt_core.stat().st_ino == inode  # the very same files, not unpacked again

    qt_core.write_bytes(b"")  # e.g. a cleaner or a full disk truncated a library
    proc, did = _run(single_file, tmp_path, "--version", cache=cache)
    assert proc.returncode == 0 and proc.stdout.strip() == f"Fieldmark {__version__}", proc.stderr[-2000:]
    assert did["unpacked"] is True and qt_core.stat().st_size > 0
    assert sorted(p.name for p in cache.iterdir()) == sorted(["locks", folder.name])


def test_the_command_line_is_the_apps_own(single_file: Path, tmp_path: Path) -> None:
    proc, _ = _run(single_file, tmp_path, "detect", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: fieldmark detect") and proc.stderr == ""
    proc, _ = _run(single_file, tmp_path, "detect", str(tmp_path / "missing.jpg"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert "the following arguments are required: --pack, --prompt" in proc.stderr
    proc, _ = _run(single_file, tmp_path, "--help")
    assert proc.returncode == 0 and "--self-test" in proc.stdout
