#!/usr/bin/env python3
"""Build the single-file executable and/or the one-folder app (Linux, Windows, macOS).

    python build_scripts/build_onefile.py                          # dist/fieldmark
    python build_scripts/build_onefile.py --mode onedir            # dist/fieldmark-onedir/
    python build_scripts/build_onefile.py --mode both --packs build/packs --self-test
    python build_scripts/build_onefile.py --torch --mode onedir    # with torch + transformers

Steps: PyInstaller with ``main.spec`` (its own work folder per mode and variant, so rebuilds
reuse the analysis; the spec renders the icons and checks the bundle; for the single file it
also packs the one-folder app into the launcher, build_scripts/launcher), then optionally the
binary's own ``--self-test``. Signing and installers are separate scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_scripts import build_config as bc  # noqa: E402
from build_scripts.build_common import ROOT, mb, python, run, tree_size  # noqa: E402


def build(mode: str, *, torch: bool, packs: Path | None, dist: Path, clean: bool) -> tuple[Path, float]:
    opts = bc.Options(mode=mode, torch=torch, packs=packs)
    work = ROOT / "build" / f"pyi-{opts.name}-{mode}"
    cmd = [python(), "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
           "--distpath", dist, "--workpath", work]
    if clean:
        cmd.append("--clean")
    cmd += [ROOT / "main.spec", "--", "--mode", mode] + (["--torch"] if torch else [])
    if packs:
        cmd += ["--packs", packs]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    seconds = run(cmd, env=env)
    return bc.artifact(dist, opts), seconds


def self_test(artifact: Path, name: str, report: Path, require_packs: bool) -> float:
    exe = artifact if artifact.is_file() else artifact / (name + bc.exe_suffix())
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    cmd = [exe, "--self-test", "--report", report] + (["--require-packs"] if require_packs else [])
    return run(cmd, env=env)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("onefile", "onedir", "both"), default="onefile")
    p.add_argument("--torch", action="store_true", help="bundle torch + transformers (models convert)")
    p.add_argument("--packs", type=Path, help="pack folder (or folder of packs) to bundle")
    p.add_argument("--dist", type=Path, default=ROOT / "dist")
    p.add_argument("--clean", action="store_true", help="discard PyInstaller's cache first")
    p.add_argument("--self-test", action="store_true", help="run the built binary's --self-test")
    p.add_argument("--summary", type=Path, help="write sizes and times as JSON here")
    a = p.parse_args(argv)

    modes = ["onefile", "onedir"] if a.mode == "both" else [a.mode]
    summary: dict[str, object] = {"version": bc.version(), "torch": a.torch, "platform": sys.platform,
                                  "packs": str(a.packs) if a.packs else None, "builds": []}
    name = bc.Options(torch=a.torch).name
    for mode in modes:
        artifact, seconds = build(mode, torch=a.torch, packs=a.packs.resolve() if a.packs else None,
                                  dist=a.dist.resolve(), clean=a.clean)
        entry: dict[str, object] = {"mode": mode, "artifact": str(artifact), "build_seconds": round(seconds, 1),
                                    "size_bytes": tree_size(artifact)}
        print(f"built {artifact}: {mb(int(entry['size_bytes']))} in {seconds:.0f} s")  # type: ignore[call-overload]
        if a.self_test:
            report = ROOT / "build" / f"selftest-{name}-{mode}.json"
            entry["self_test_seconds"] = round(self_test(artifact, name, report, bool(a.packs)), 1)
        summary["builds"].append(entry)  # type: ignore[attr-defined]
    summary["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    if a.summary:
        a.summary.parent.mkdir(parents=True, exist_ok=True)
        a.summary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
