"""The built binary (onefile or one-folder in dist/): what a user double-clicks, tested as such.

Skipped when nothing is built; CI builds the onefile with tiny packs first
(build_scripts/ci_frozen.sh). Each test starts the real binary in a throwaway data folder.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from backend import __version__
from build_scripts import build_verify as bv


def _run(binary: Path, tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", FIELDMARK_DATA_DIR=str(tmp_path / "data"))
    return subprocess.run([str(binary), *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def self_test(binary: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str],
                                                                              dict[str, Any]]:
    """One ``--self-test --report`` run per binary, shared by the tests that read its report."""
    tmp = tmp_path_factory.mktemp("selftest")
    proc = _run(binary, tmp, "--self-test", "--report", str(tmp / "report.json"))
    return proc, json.loads((tmp / "report.json").read_text(encoding="utf-8"))


def test_the_binary_passes_its_self_test(self_test: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
    proc, report = self_test
    checks = {c["name"]: c for c in report["checks"]}
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert report["ok"] and report["frozen"] and report["version"] == __version__
    assert report["build"]["variant"] == "default"
    assert checks["import every backend module"]["detail"] == \
        f"{len(report['build']['backend_modules'])} modules imported"
    for name in ("onnxruntime runs a graph", "bridge round trip", "export COCO and read it back",
                 "no JavaScript errors or blocked requests"):
        assert checks[name]["ok"] and not checks[name]["skipped"], checks[name]
    for pack in report["build"]["packs"]:  # every bundled pack was verified and run
        assert checks[f"verify pack {pack}"]["ok"]
    if report["build"]["packs"]:
        assert any(n.startswith("detector ") for n in checks) and any(n.startswith("segmenter ") for n in checks)


def test_the_default_binary_holds_no_torch_and_says_how_to_convert(
        binary: Path, tmp_path: Path, self_test: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
    _, report = self_test
    variant = next(c for c in report["checks"] if c["name"] == "build variant")
    assert variant["detail"]["torch_importable"] is False
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}", encoding="utf-8")
    proc = _run(binary, tmp_path, "models", "convert", str(ckpt), "--family", "owlv2", "--out", str(tmp_path / "p"))
    assert proc.returncode == 2
    assert "cannot convert checkpoints" in proc.stderr and "fieldmark-torch" in proc.stderr


def test_the_bundle_holds_everything_the_app_needs(binary: Path) -> None:
    artifact = binary if binary.parent.name == "dist" else binary.parent
    listing = bv.read_bundle(artifact, "fieldmark")
    problems = bv.check_listing(listing, bv.bc.Options(mode="onefile"), packs=[])
    assert problems == []
    assert not any(m.split(".")[0] in ("torch", "transformers") for m in listing.modules)


def test_version_and_startup_report(binary: Path, tmp_path: Path) -> None:
    proc = _run(binary, tmp_path, "--version", timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"Fieldmark {__version__}"
    out = tmp_path / "startup.json"
    proc = _run(binary, tmp_path, "--startup-report", str(out), timeout=120)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert data["frozen"] is True and data["since_main_s"] > 0 and data["ready_at"] > 0
