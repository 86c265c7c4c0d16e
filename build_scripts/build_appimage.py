#!/usr/bin/env python3
"""Linux AppImage: the one-folder app in an AppDir, packed by appimagetool.

    python build_scripts/build_appimage.py [--packs DIR] [--skip-build] [--no-package]

Steps (each its own function, checked subprocess calls):

1. build   the one-folder app (build_onefile.py --mode onedir), unless --skip-build;
2. appdir  build/appimage/Fieldmark.AppDir: AppRun, fieldmark.desktop, the icon (+ .DirIcon),
           the app under usr/lib/fieldmark/;
3. smoke   AppDir/AppRun --self-test (offscreen), before packing;
4. package appimagetool (``$APPIMAGETOOL`` or on PATH) -> dist/Fieldmark-<version>-<arch>.AppImage;
5. smoke   the AppImage's --self-test (``APPIMAGE_EXTRACT_AND_RUN=1``: no FUSE needed in CI).

appimagetool is not on PyPI nor in Debian (only libappimage is), so it cannot be installed
offline; CI downloads it (.github/workflows/build.yml). Without it, step 4 stops with a clear
message after the AppDir passed its self-test; ``--no-package`` stops there on purpose.
An AppImage is mounted, not unpacked, so it starts like the one-folder app.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import stat
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_scripts import build_config as bc  # noqa: E402
from build_scripts.build_common import ROOT, mb, python, run, tree_size  # noqa: E402

APPDIR = ROOT / "build" / "appimage" / f"{bc.APP_NAME}.AppDir"
LINUX = ROOT / "build_scripts" / "linux"


def build(packs: Path | None) -> Path:
    cmd = [python(), ROOT / "build_scripts" / "build_onefile.py", "--mode", "onedir"]
    run(cmd + (["--packs", packs] if packs else []))
    return bc.artifact(ROOT / "dist", bc.Options(mode="onedir"))


def make_appdir(onedir: Path) -> Path:
    if APPDIR.exists():
        shutil.rmtree(APPDIR)
    lib = APPDIR / "usr" / "lib" / "fieldmark"
    shutil.copytree(onedir, lib, symlinks=True)
    shutil.copy2(LINUX / "AppRun", APPDIR / "AppRun")
    (APPDIR / "AppRun").chmod((APPDIR / "AppRun").stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    shutil.copy2(LINUX / "fieldmark.desktop", APPDIR / "fieldmark.desktop")
    icons = ROOT / "build" / "icons"
    if not (icons / "fieldmark.png").is_file():
        run([python(), ROOT / "build_scripts" / "make_icons.py", "--out", icons])
    shutil.copy2(icons / "fieldmark.png", APPDIR / "fieldmark.png")
    shutil.copy2(icons / "fieldmark.png", APPDIR / ".DirIcon")
    hicolor = APPDIR / "usr" / "share" / "icons" / "hicolor" / "256x256" / "apps"
    hicolor.mkdir(parents=True)
    shutil.copy2(icons / "fieldmark.png", hicolor / "fieldmark.png")
    print(f"AppDir ready: {APPDIR} ({mb(tree_size(APPDIR))})")
    return APPDIR


def smoke(entry: Path, report: Path, require_packs: bool, extra_env: dict[str, str] | None = None) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **(extra_env or {}))
    run([entry, "--self-test", "--report", report] + (["--require-packs"] if require_packs else []), env=env)


def package(appdir: Path) -> Path:
    tool = os.environ.get("APPIMAGETOOL") or shutil.which("appimagetool")
    if not tool:
        raise SystemExit(f"appimagetool not found (set APPIMAGETOOL or put it on PATH). The AppDir "
                         f"passed its self-test and is ready at {appdir}; package it with: "
                         f"appimagetool {appdir} dist/{bc.APP_NAME}-{bc.version()}-x86_64.AppImage")
    arch = platform.machine()
    out = ROOT / "dist" / f"{bc.APP_NAME}-{bc.version()}-{arch}.AppImage"
    # appimagetool is itself an AppImage: in containers without FUSE it must extract itself.
    env = dict(os.environ, ARCH=arch, APPIMAGE_EXTRACT_AND_RUN="1")
    run([tool, "--no-appstream", appdir, out], env=env)
    print(f"built {out}: {mb(out.stat().st_size)}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--packs", type=Path, help="pack folder (or folder of packs) to bundle")
    p.add_argument("--skip-build", action="store_true", help="use the existing dist/fieldmark-onedir")
    p.add_argument("--no-package", action="store_true", help="stop after the AppDir's self-test")
    a = p.parse_args(argv)
    if not sys.platform.startswith("linux"):
        raise SystemExit("AppImages are built on Linux")
    onedir = bc.artifact(ROOT / "dist", bc.Options(mode="onedir")) if a.skip_build else build(a.packs)
    appdir = make_appdir(onedir)
    smoke(appdir / "AppRun", ROOT / "build" / "selftest-appdir.json", bool(a.packs))
    if a.no_package:
        return 0
    image = package(appdir)
    smoke(image, ROOT / "build" / "selftest-appimage.json", bool(a.packs), {"APPIMAGE_EXTRACT_AND_RUN": "1"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
