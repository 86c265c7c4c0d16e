"""The self-test's pack checks with real tiny packs, and ``models convert``.

The packs are exported by our export code from tiny random checkpoints (the fixtures of
tests/models, shared per session). The checks run in-process on a packs folder laid out as the
frozen bundle lays it out (``packs/<name>/...``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from backend.gui.selftest import Report, run_core_checks

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny_packs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.models import owl_fixtures, sam_fixtures

    root = tmp_path_factory.mktemp("selftest-packs")
    ckpt, owl = owl_fixtures.export_tiny("owlv2", root)
    sam = sam_fixtures.tiny(root).pack
    return {"owl_ckpt": ckpt, "owl": owl, "sam": sam}


def _bundle(tmp_path: Path, *packs: Any) -> Path:
    folder = tmp_path / "packs"
    for p in packs:
        shutil.copytree(p.root, folder / p.root.name)
    return folder


def _checks(report: Report) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report.checks}


@pytest.mark.models
def test_bundled_packs_are_verified_and_run_on_the_demo_image(tiny_packs: dict[str, Any], tmp_path: Path) -> None:
    owl, sam = tiny_packs["owl"], tiny_packs["sam"]
    report = Report()
    run_core_checks(report, tmp_path, require_packs=True, packs_dir=_bundle(tmp_path, owl, sam))
    checks = _checks(report)
    assert report.ok, [c for c in report.checks if not c["ok"]]
    det = checks[f"detector {owl.id} on the demo image"]["detail"]
    seg = checks[f"segmenter {sam.id} on the demo image"]["detail"]
    assert det["detections"] >= 1 and 0 <= det["best"] <= 1
    assert seg["mask_area"] > 0  # the tiny SAM makes blobs, not empty masks
    assert checks[f"verify pack {owl.root.name}"]["detail"]["id"] == owl.id
    assert checks["a detector and a segmenter are bundled"]["ok"]


@pytest.mark.models
def test_a_damaged_bundled_pack_fails_the_self_test(tiny_packs: dict[str, Any], tmp_path: Path) -> None:
    owl, sam = tiny_packs["owl"], tiny_packs["sam"]
    folder = _bundle(tmp_path, owl, sam)
    graph = folder / sam.root.name / sorted(sam.manifest["files"])[0]
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    report = Report()
    run_core_checks(report, tmp_path, require_packs=True, packs_dir=folder)
    checks = _checks(report)
    assert not report.ok
    verify = checks[f"verify pack {sam.root.name}"]
    assert not verify["ok"] and "damaged" in verify["detail"] and sam.id in verify["detail"]
    assert not any(name.startswith("segmenter") for name in checks)  # a damaged pack never runs
    assert not checks["a detector and a segmenter are bundled"]["ok"]


@pytest.mark.models
def test_models_convert_makes_the_same_pack_as_the_export_script(tiny_packs: dict[str, Any], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import main

    out = tmp_path / "converted"
    code = main.main(["models", "convert", str(tiny_packs["owl_ckpt"]), "--family", "owlv2",
                      "--out", str(out), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)["pack"]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert summary["family"] == "owlv2" and summary["task"] == "detector"
    # Same export code, same checkpoint: the same graphs and tokenizer, byte for byte.
    assert manifest["files"] == tiny_packs["owl"].manifest["files"]
    report = Report()
    run_core_checks(report, tmp_path, packs_dir=out.parent)
    assert _checks(report)[f"detector {summary['id']} on the demo image"]["ok"]


def test_a_build_without_torch_says_it_cannot_convert_and_how_to(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}", encoding="utf-8")
    # sys.modules[name] = None is how Python marks a module as absent: find_spec returns None.
    code = ("import sys; sys.modules['torch'] = None; import main; "
            f"sys.exit(main.main(['models', 'convert', {str(ckpt)!r}, '--family', 'sam', '--out', {str(tmp_path / 'out')!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 2
    assert "cannot convert checkpoints" in proc.stderr and "torch" in proc.stderr
    assert "export_models.py" in proc.stderr and "models install" in proc.stderr
    assert not (tmp_path / "out").exists()
