#!/usr/bin/env python3
"""Fieldmark's performance budget, measured the same way every time: one table, optional JSON.

    python benchmarks/run.py [--quick] [--json FILE] [--only NAME,...] [--list] [--tiny]

Each measure (``--list`` names them) runs in its own subprocess, so one that fails or hangs
becomes a row with its error and the rest of the table still comes out. Every row has: name,
unit, p50, p95, n, the baseline measured in the same run where there is one (transformers
PyTorch for the encoders, the encoder-only bound for batch throughput), the ratio the budget
reads, the budget from ARCHITECTURE.md and whether the figure is within it. Single-figure
budgets ("<= 1 s") are checked against p50; "p50 <= 30 ms, p95 <= 50 ms" against both. For
throughputs, p95 is the slow side (the rate 95 % of runs reached).

``--quick`` takes fewer repetitions and skips the slowest variants (each row's note says what);
it finishes in a few minutes on a 2-core machine once the real-size packs are cached
(``~/.cache/fieldmark/bench-packs``; the first run exports them, which takes minutes).
``--tiny`` shrinks the data-size measures (COCO export, folder open) for smoke tests; their
figures then do not answer the budget. The machine's load average is printed with the table:
a shared machine inflates every number. Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from measures import MEASURES, Row  # noqa: E402

from backend import atomic  # noqa: E402

# row name -> (budget as ARCHITECTURE.md states it, the checks: p50_max / p95_max / ratio_min)
BUDGETS: dict[str, tuple[str, dict[str, float]]] = {
    "click": ("p50 <= 30 ms, p95 <= 50 ms", {"p50_max": 30, "p95_max": 50}),
    "segmenter_encode": ("<= 1 s to first mask", {"p50_max": 1000}),
    "first_mask_cold": ("<= 1 s to first mask", {"p50_max": 1000}),
    "first_mask_prefetched": ("~0 when pre-encoded (read as the click budget)", {"p50_max": 30, "p95_max": 50}),
    "rescore_threshold": ("<= 20 ms", {"p50_max": 20}),
    "rescore_prompt": ("<= 20 ms", {"p50_max": 20}),
    "detector_encode": (">= 1.5x faster than torch", {"ratio_min": 1.5}),
    "detector_encode_fp32": (">= 1.5x faster than torch", {"ratio_min": 1.5}),
    "batch_throughput": (">= 0.9x encoder-only bound", {"ratio_min": 0.9}),
    "open_folder_first": ("<= 1 s to a usable list", {"p50_max": 1000}),
    "open_folder_reopen": ("<= 1 s to a usable list", {"p50_max": 1000}),
    "coco_export": ("<= 5 s", {"p50_max": 5}),
    "frozen_onefile_size": ("<= 250 MB without packs", {"p50_max": 250}),
    "frozen_onefile_cold_start": ("<= 3 s to usable UI", {"p50_max": 3}),
    "frozen_onefile_first_start": ("<= 3 s to usable UI", {"p50_max": 3}),
}
# A measure's subprocess is stopped after this many seconds (first runs export packs: minutes).
TIMEOUT_S = {"quick": 900, "full": 3600}


def within(r: Row, checks: dict[str, float]) -> bool | None:
    if not checks or r.get("error") or r.get("p50") is None:
        return None
    ok = True
    if "p50_max" in checks:
        ok &= r["p50"] <= checks["p50_max"]
    if "p95_max" in checks:
        ok &= r["p95"] <= checks["p95_max"]
    if "ratio_min" in checks:
        ok &= r.get("ratio") is not None and r["ratio"] >= checks["ratio_min"]
    return bool(ok)


def with_budget(r: Row) -> Row:
    """``r`` with its budget; a row sized down by ``--tiny`` keeps the budget text but is not
    judged (``within_budget`` None): its figure does not answer the budget."""
    text, checks = BUDGETS.get(r["name"], (None, {}))
    judged = r.get("extra", {}).get("sized_down") is not True
    return {**r, "budget": text, "budget_checks": checks,
            "within_budget": within(r, checks) if judged else None}


def error_row(name: str, error: str) -> Row:
    return {"name": name, "unit": None, "p50": None, "p95": None, "n": 0, "baseline": None,
            "baseline_name": None, "ratio": None, "note": "", "extra": {}, "error": error}


# -- one measure in a subprocess ---------------------------------------------------------------

def worker(name: str, result: Path, quick: bool, tiny: bool) -> int:
    """Run one measure here and write ``{"rows": [...]}`` or ``{"error": ...}`` to ``result``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        rows = MEASURES[name][1](quick, tiny)
        payload: dict[str, Any] = {"rows": rows}
    except BaseException as exc:  # noqa: BLE001 — SystemExit from a build script included
        traceback.print_exc()
        payload = {"error": f"{type(exc).__name__}: {exc}".strip()}
    atomic.write_text(result, json.dumps(payload, default=_jsonable))
    return 0


def _jsonable(x: Any) -> Any:
    if hasattr(x, "item"):  # numpy scalars
        return x.item()
    if isinstance(x, Path):
        return str(x)
    return repr(x)


def run_measure(name: str, quick: bool, tiny: bool, timeout: float) -> list[Row]:
    """The rows of one measure, run in a fresh interpreter; its output goes to our stderr."""
    with tempfile.TemporaryDirectory(prefix="fieldmark-bench-run-") as tmp:
        result = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name,
               "--result", str(result)] + (["--quick"] if quick else []) + (["--tiny"] if tiny else [])
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        try:
            proc = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr, env=env,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return [error_row(name, f"timed out after {timeout:.0f} s")]
        if not result.is_file():
            return [error_row(name, f"the measure's process ended with code {proc.returncode} "
                                    "and no result (crash or killed; see its output above)")]
        payload = json.loads(result.read_text(encoding="utf-8"))
    if "error" in payload:
        return [error_row(name, payload["error"])]
    return [{**r, "error": None} for r in payload["rows"]]


# -- the table -------------------------------------------------------------------------------------

def fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"
    return str(x)


def table(rows: list[Row], meta: dict[str, Any]) -> str:
    head = ["measure", "unit", "p50", "p95", "n", "baseline", "ratio", "budget", "ok"]
    body = []
    for r in rows:
        ok = {True: "yes", False: "NO", None: "-"}[r.get("within_budget")]
        if r.get("error"):
            ok, p50 = "ERROR", "ERROR"
        elif r["p50"] is None:
            p50 = "n/a"
        else:
            p50 = fmt(r["p50"])
        ratio = "-" if r.get("ratio") is None else f"{r['ratio']:.2f}x"
        body.append([r["name"], r.get("unit") or "-", p50, fmt(r.get("p95")), str(r.get("n", 0)),
                     fmt(r.get("baseline")), ratio, r.get("budget") or "-", ok])
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = []
    for r in rows:
        text = f"error: {r['error']}" if r.get("error") else r.get("note") or ""
        if r.get("baseline_name"):
            text += f" [baseline: {r['baseline_name']}]"
        if text:
            notes.append(f"  {r['name']}: {text}")
    la0, la1 = meta["load_average_start"], meta["load_average_end"]
    return "\n".join([*lines, "", "single-figure budgets are checked on p50; for img/s rows "
                      "p95 is the slow side (the rate 95 % of runs reached)", "", "notes:", *notes, "",
                      f"mode: {meta['mode']}; {meta['cpus']} CPUs, FIELDMARK_THREADS="
                      f"{meta['fieldmark_threads']}; load average at start {la0[0]:.2f} "
                      f"(1 min), at end {la1[0]:.2f}; {meta['wall_s']:.0f} s in all"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repetitions (a few minutes)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    p.add_argument("--only", metavar="NAME,...", help="run only these measures (see --list)")
    p.add_argument("--list", action="store_true", help="list the measures and exit")
    p.add_argument("--tiny", action="store_true", help="small data sizes (smoke tests)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        if a.worker not in MEASURES or a.result is None:
            p.error("--worker needs a known measure and --result")
        return worker(a.worker, a.result, a.quick, a.tiny)
    if a.list:
        for name, (what, _) in MEASURES.items():
            print(f"{name:<18} {what}")
        return 0
    names = list(MEASURES)
    if a.only:
        names = [n.strip() for n in a.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in MEASURES]
        if unknown:
            p.error(f"--only: unknown measure(s) {', '.join(unknown)}; known: {', '.join(MEASURES)}")
    mode = "quick" if a.quick else "full"
    start, load0 = time.time(), os.getloadavg()
    rows: list[Row] = []
    for name in names:
        print(f"== {name} ({mode}) ...", file=sys.stderr, flush=True)
        t = time.time()
        got = run_measure(name, a.quick, a.tiny, TIMEOUT_S[mode])
        print(f"== {name}: {time.time() - t:.0f} s", file=sys.stderr, flush=True)
        rows += [with_budget(r) for r in got]
    meta = {"mode": mode, "tiny": a.tiny, "measures": names, "started_at": start,
            "wall_s": time.time() - start, "load_average_start": list(load0),
            "load_average_end": list(os.getloadavg()), "cpus": os.cpu_count(),
            "fieldmark_threads": os.environ.get("FIELDMARK_THREADS"),
            "python": platform.python_version(), "platform": platform.platform()}
    print(table(rows, meta))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(a.json, json.dumps({"meta": meta, "rows": rows}, indent=2,
                                             default=_jsonable) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
