"""SIGKILL during an export and during a model pack install: what was there is never lost.

An export is written into a staging folder and renamed into place; a re-export moves the old one
aside first. A pack install copies into a staging folder and renames too. A kill can land
anywhere in either: before, while copying, between the two renames. After each kill the next run
(of the same code path: ``_recover_interrupted``) must find either nothing (the very first run
was killed) or a complete, readable result — never half of one, never none once there was one —
and once a run completes no temporary debris is left next to it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.formats import _recover_interrupted
from backend.models.pack import list_packs, verify_pack, write_pack
from backend.store import Project
from tests.ai.conftest import make_photos
from tests.reliability.test_bad_packs import tiny_packs

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 12


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _run(args: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    proc = _start(args, env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return time.perf_counter() - t


def _kill_at(args: list[str], env: dict[str, str], delay: float) -> int | None:
    proc = _start(args, env)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    return proc.returncode


def _count(code: int | None, killed_mid: int, delay: float, took: float) -> tuple[int, float]:
    """Count a kill that landed while the process ran; one that came after it had finished
    (the first, timed run paid for a cold disk cache) shortens the window for the next trials."""
    if code == -signal.SIGKILL:
        return killed_mid + 1, took
    return killed_mid, max(0.2, min(took, delay) * 0.8)


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, FIELDMARK_DATA_DIR=str(tmp_path / "data"), HF_HUB_OFFLINE="1",
                PYTHONDONTWRITEBYTECODE="1")


def _debris(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


def test_a_killed_export_never_leaves_half_an_export_nor_loses_the_last_one(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    photos = tmp_path / "photos"
    names = make_photos(photos, 40, size=(480, 640))
    with Project.open(photos) as p:
        p.scan([".jpg"])
        c = p.add_class("moth")["id"]
        for im in p.images():
            p.add_shapes(im["id"], [{"kind": "box", "geometry": [5 + k, 5 + k, 60 + k, 70 + k],
                                     "class_id": c} for k in range(0, 400, 4)])
    out = tmp_path / "export"
    args = ["export", str(photos), "--format", "coco", "--out", str(out), "--overwrite"]
    env = _env(tmp_path)
    rng = random.Random(8)
    took = _run(args, env)  # one complete export: from now on it must never be lost

    def complete() -> None:
        coco = COCO(str(out / "annotations.json"))
        assert len(coco.getImgIds()) == len(names) and len(coco.getAnnIds()) == 100 * len(names)
        assert all((out / "images" / n).is_file() for n in names)

    killed_mid = 0
    for trial in range(TRIALS):
        delay = rng.uniform(0.1, took)
        code = _kill_at(args, env, delay)
        killed_mid, took = _count(code, killed_mid, delay, took)
        _recover_interrupted(out.resolve())  # what the next export does first
        where = f"trial {trial}, killed after {delay:.2f} s (one export takes {took:.2f} s)"
        assert out.exists(), where
        try:
            complete()
        except Exception as exc:  # noqa: BLE001 — reported with the trial that broke it
            pytest.fail(f"{where}: the export is not complete: {exc!r}")
    assert killed_mid >= TRIALS // 3, f"only {killed_mid} of {TRIALS} kills landed while the export ran (window {took:.2f} s)"
    _run(args, env)
    complete()
    assert _debris(out.parent, out.name) == []


def test_a_killed_pack_install_never_leaves_half_a_pack_nor_loses_the_installed_one(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    # The tiny pack padded with 96 MB, so hashing and copying it take long enough to be hit.
    pack = shutil.copytree(tiny_packs(tmp_path_factory).segmenter, tmp_path / "big-pack")
    manifest = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))
    (pack / "padding.bin").write_bytes(os.urandom(96 << 20))
    write_pack(pack, {**{k: v for k, v in manifest.items() if k not in ("files", "schema_version")},
                      "extra_files": [*manifest["files"], "padding.bin"]})
    packs_dir = tmp_path / "packs"
    args = ["models", "install", str(pack), "--packs-dir", str(packs_dir), "--json"]
    env = _env(tmp_path)
    rng = random.Random(9)
    took = _run(args, env)
    killed_mid = 0
    for trial in range(TRIALS):
        delay = rng.uniform(0.1, took)
        killed_mid, took = _count(_kill_at(args, env, delay), killed_mid, delay, took)
        where = f"trial {trial}, killed after {delay:.2f} s (one install takes {took:.2f} s)"
        found = list_packs(packs_dir)                # what the app does at start
        assert [getattr(p, "id", p) for p in found] == [manifest["id"]], where
        verify_pack(found[0].root, hashes=True)      # every file there, every byte right
    assert killed_mid >= TRIALS // 3, f"only {killed_mid} of {TRIALS} kills landed while the install ran (window {took:.2f} s)"
    _run(args, env)
    left = sorted(p.name for p in packs_dir.iterdir() if p.name.startswith("."))
    assert left == [], f"debris after a completed install: {left}"
