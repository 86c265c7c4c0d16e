"""``main.py --self-test`` from source: the report a person (or CI) reads, and its exit code.

Run as a subprocess, as a user runs it: the self-test owns its QApplication and environment.
From source no packs are bundled, so the pack checks are skipped — and fail with
``--require-packs``, as the binary in CI must not silently run without them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e  # starts the real page in QtWebEngine


def _self_test(tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    report = tmp_path / "report.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", FIELDMARK_DATA_DIR=str(tmp_path / "data"),
               HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "--self-test", "--report", str(report), *extra],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, json.loads(report.read_text(encoding="utf-8")), proc.stdout


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def test_self_test_from_source_passes_and_reports_every_check(tmp_path: Path) -> None:
    code, report, out = _self_test(tmp_path)
    checks = _by_name(report)
    assert code == 0, out
    assert report["ok"] is True and report["frozen"] is False
    assert report["build"]["variant"] == "source"
    for name in ("build variant", "import every backend module", "onnxruntime runs a graph",
                 "load the page and connect the bridge", "bridge round trip",
                 "write a shape from the page", "read the shape back after reopening",
                 "export COCO and read it back", "no JavaScript errors or blocked requests"):
        assert checks[name]["ok"] and not checks[name]["skipped"], checks.get(name)
    # Every backend module in the source tree was imported, not just a few.
    n_modules = len(list((ROOT / "backend").rglob("*.py")))
    assert checks["import every backend module"]["detail"] == f"{n_modules} modules imported"
    assert checks["onnxruntime runs a graph"]["detail"]["provider"] == "CPUExecutionProvider"
    assert checks["export COCO and read it back"]["detail"]["bbox"] == [10, 20, 50, 60]
    packs = checks["bundled model packs"]
    assert packs["ok"] and packs["skipped"] and packs["detail"] == "no bundled packs"
    assert checks["convert a checkpoint to a pack (torch variant)"]["skipped"]
    assert "skip bundled model packs" in out and out.strip().endswith("self-test passed")


def test_require_packs_turns_missing_packs_into_a_failure(tmp_path: Path) -> None:
    code, report, out = _self_test(tmp_path, "--require-packs")
    packs = _by_name(report)["bundled model packs"]
    assert code == 1
    assert report["ok"] is False
    assert not packs["ok"] and "--require-packs" in packs["detail"]
    assert "FAIL bundled model packs" in out and "self-test FAILED" in out
