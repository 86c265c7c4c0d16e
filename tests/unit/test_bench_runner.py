"""Smoke test of the benchmark command (``benchmarks/run.py``): it lists its measures, runs one
cheap measure in a subprocess and writes the documented JSON shape. No timing thresholds:
performance is reported by the command, never asserted here."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "benchmarks" / "run.py"
ROW_KEYS = {"name", "unit", "p50", "p95", "n", "baseline", "baseline_name", "ratio", "budget",
            "within_budget", "note", "extra", "error"}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, str(RUN), *args], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=300, check=False)


def test_list_names_every_measure_of_the_issue() -> None:
    proc = _run("--list")
    assert proc.returncode == 0, proc.stderr
    names = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert names == {"click", "segmenter_encode", "first_mask", "rescore", "detector_encode", "batch",
                     "open_folder", "frame_time", "coco_export", "frozen", "peak_memory"}


def test_one_cheap_measure_writes_the_table_and_the_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = _run("--quick", "--tiny", "--only", "coco_export", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["meta"]["mode"] == "quick" and data["meta"]["measures"] == ["coco_export"]
    assert len(data["meta"]["load_average_start"]) == 3
    (row,) = data["rows"]
    assert ROW_KEYS <= set(row), ROW_KEYS - set(row)
    assert row["error"] is None, row["error"]
    assert row["name"] == "coco_export" and row["unit"] == "s" and row["n"] == 2
    assert 0 < row["p50"] <= row["p95"]
    assert row["extra"]["images"] == 200 and row["extra"]["shapes"] == 2000
    # The budget is ARCHITECTURE.md's, but a sized-down run does not answer it.
    assert row["budget"] == "<= 5 s" and row["within_budget"] is None
    assert "coco_export" in proc.stdout and "<= 5 s" in proc.stdout


def test_an_unknown_measure_is_refused_by_name() -> None:
    proc = _run("--only", "coco_export,no_such_measure")
    assert proc.returncode != 0 and "no_such_measure" in proc.stderr


def test_a_measure_that_does_not_finish_becomes_an_error_row() -> None:
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    assert spec is not None and spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    rows = run.run_measure("coco_export", True, True, timeout=0.001)
    (row,) = [run.with_budget(r) for r in rows]
    assert row["name"] == "coco_export" and "timed out" in row["error"]
    assert row["p50"] is None and row["within_budget"] is None
    meta = {"mode": "quick", "cpus": 2, "fieldmark_threads": None, "wall_s": 0.0,
            "load_average_start": [0.0] * 3, "load_average_end": [0.0] * 3}
    text = run.table(rows=[row], meta=meta)
    assert "ERROR" in text and "timed out" in text
