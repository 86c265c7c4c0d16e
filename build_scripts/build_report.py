#!/usr/bin/env python3
"""Measure a built Fieldmark: the biggest files in the bundle and the cold start to a usable UI.

    python build_scripts/build_report.py dist/fieldmark --runs 5 --json build/report-onefile.json
    python build_scripts/build_report.py dist/fieldmark-onedir --runs 5

Start-up is measured from the PARENT process: the time is noted, the binary is started with
``--startup-report FILE`` (it opens the demo project, waits until the page is loaded and the
bridge connected, writes the wall-clock time of that moment and exits), and the difference is
the cold start as a person sees it. Each run gets a fresh user data folder (so the demo project
is copied each time, as on a first start). The single file unpacks its app once per build into
a per-user cache (build_scripts/launcher): it is measured twice, with that cache filled (every
start but the first) and empty (the first start of a build). The first run after a build also
pays for a cold OS file cache. Numbers are reported, never asserted (ARCHITECTURE.md: budgets
are measured).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_scripts import build_config as bc  # noqa: E402
from build_scripts import build_verify as bv  # noqa: E402
from build_scripts.build_common import tree_size  # noqa: E402


def executable(artifact: Path) -> Path:
    if artifact.is_file():
        return artifact
    exes = [p for p in artifact.iterdir() if p.is_file() and os.access(p, os.X_OK)
            and p.name.startswith("fieldmark")]
    if len(exes) != 1:
        raise SystemExit(f"{artifact}: expected one fieldmark executable, found {[p.name for p in exes]}")
    return exes[0]


def _children_cpu() -> float:
    """CPU seconds (user + sys) of the waited-for child processes so far (0 where unknown)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def start_once(exe: Path, platform: str, cache: Path | None = None) -> dict[str, float]:
    """One cold start; ``cpu_s`` is what it cost in CPU (the machine's load does not change it).

    ``cache``: the single file's unpacked-app cache to use (``FIELDMARK_CACHE_DIR``); None = a
    new empty one, i.e. the first start of this build on a machine."""
    cpu0 = _children_cpu()
    with tempfile.TemporaryDirectory(prefix="fieldmark-startup-") as tmp:
        report, launcher = Path(tmp) / "startup.json", Path(tmp) / "launcher.json"
        env = dict(os.environ, FIELDMARK_DATA_DIR=str(Path(tmp) / "data"), QT_QPA_PLATFORM=platform,
                   FIELDMARK_CACHE_DIR=str(cache or Path(tmp) / "cache"), FIELDMARK_LAUNCHER_REPORT=str(launcher))
        t0 = time.time()
        proc = subprocess.run([str(exe), "--startup-report", str(report)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False)
        t_exit = time.time()
        if proc.returncode != 0 or not report.is_file():
            raise SystemExit(f"{exe} --startup-report failed with exit code {proc.returncode}")
        data = json.loads(report.read_text(encoding="utf-8"))
        unpacked = json.loads(launcher.read_text(encoding="utf-8")) if launcher.is_file() else {}
    return {"to_ready_s": round(data["ready_at"] - t0, 3), "to_exit_s": round(t_exit - t0, 3),
            "in_process_s": data.get("since_process_start_s"), "cpu_s": round(_children_cpu() - cpu0, 3),
            "launcher_s": unpacked.get("launcher_s"), "unpacked": unpacked.get("unpacked")}


def measure_startup(exe: Path, runs: int, platform: str, *, first_start: bool = False) -> dict[str, object]:
    """``runs`` cold starts (fresh user data each). A single file runs its app from the per-user
    cache: by default one untimed start fills a cache that the timed ones share (every start
    after the first); ``first_start`` gives each run an empty cache (the first start ever)."""
    with tempfile.TemporaryDirectory(prefix="fieldmark-cache-") as shared:
        cache = None if first_start else Path(shared)
        if cache is not None:
            start_once(exe, platform, cache)
        samples = [start_once(exe, platform, cache) for _ in range(runs)]
    ready = [s["to_ready_s"] for s in samples]
    return {"platform": platform, "cache": "empty (first start)" if first_start else "filled (later starts)",
            "runs": samples, "first_s": ready[0],
            "median_s": round(statistics.median(ready), 3), "min_s": min(ready),
            "median_cpu_s": round(statistics.median(s["cpu_s"] for s in samples), 3),
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifact", type=Path, help="dist/fieldmark or dist/fieldmark-onedir")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--platform", default="offscreen", help="QT_QPA_PLATFORM for the runs (offscreen, xcb)")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--json", type=Path, help="write the numbers here")
    a = p.parse_args(argv)
    exe = executable(a.artifact)
    listing = bv.read_bundle(a.artifact, exe.name.removesuffix(bc.exe_suffix()) if a.artifact.is_dir() else exe.name)
    top = bv.top_files(listing, a.top)
    packs = sum(size for name, size in listing.files.items() if name.startswith("packs/"))
    result = {"artifact": str(a.artifact), "size_bytes": tree_size(a.artifact), "packs_bytes": packs,
              "unpacked_bytes": sum(listing.files.values()),
              "top_files": [{"name": n, "bytes": s, "packed_bytes": listing.packed.get(n)} for n, s in top],
              "startup": measure_startup(exe, a.runs, a.platform) if a.runs else None,
              "first_startup": measure_startup(exe, a.runs, a.platform, first_start=True)
              if a.runs and a.artifact.is_file() else None}
    print(f"{a.artifact}: {result['size_bytes'] / 1e6:.1f} MB on disk "  # type: ignore[operator]
          f"({packs / 1e6:.1f} MB of it model packs), {result['unpacked_bytes'] / 1e6:.1f} MB unpacked")  # type: ignore[operator]
    for f in result["top_files"]:  # type: ignore[attr-defined]
        packed = f" ({f['packed_bytes'] / 1e6:.1f} MB packed)" if f["packed_bytes"] else ""
        print(f"  {f['bytes'] / 1e6:7.1f} MB  {f['name']}{packed}")
    for key in ("startup", "first_startup"):
        s = result[key]
        if s:
            print(f"start to usable page ({s['platform']}, cache {s['cache']}): first {s['first_s']} s, "  # type: ignore[index]
                  f"median {s['median_s']} s, min {s['min_s']} s over {a.runs} runs; "  # type: ignore[index]
                  f"median CPU {s['median_cpu_s']} s; load average {s['load_average']}")  # type: ignore[index]
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
