#!/usr/bin/env python3
"""Windows: a per-user MSI of the one-folder app (WiX v5). Scripted here, run by CI on Windows.

    python build_scripts/build_msi.py [--packs DIR] [--skip-build] [--no-install-test]

Steps: build (one-folder; fieldmark.exe carries the icon and the version resource) -> sign the
executables -> wix build (build_scripts/windows/fieldmark.wxs, fixed UpgradeCode) -> sign the
MSI -> smoke: install it quietly for this user, run the installed app's --self-test, uninstall.

Needs the WiX v5 dotnet tool (``dotnet tool install --global wix --version 5.0.2``). Signing
runs when these are set: WINDOWS_SIGN_PFX (path to a .pfx) and WINDOWS_SIGN_PASSWORD; signtool
comes from the Windows SDK (``$SIGNTOOL`` or on PATH).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_scripts import build_config as bc  # noqa: E402
from build_scripts.build_common import ROOT, mb, python, require_env, run  # noqa: E402

WXS = ROOT / "build_scripts" / "windows" / "fieldmark.wxs"


def build(packs: Path | None) -> Path:
    cmd = [python(), ROOT / "build_scripts" / "build_onefile.py", "--mode", "onedir"]
    run(cmd + (["--packs", packs] if packs else []))
    return bc.artifact(ROOT / "dist", bc.Options(mode="onedir"))


def sign(files: list[Path], creds: dict[str, str]) -> None:
    tool = os.environ.get("SIGNTOOL") or shutil.which("signtool")
    if not tool:
        raise SystemExit("signing requested (WINDOWS_SIGN_PFX set) but signtool was not found")
    run([tool, "sign", "/fd", "SHA256", "/tr", "http://timestamp.digicert.com", "/td", "SHA256",
         "/f", creds["WINDOWS_SIGN_PFX"], "/p", creds["WINDOWS_SIGN_PASSWORD"], *files])


def make_msi(onedir: Path) -> Path:
    icon = ROOT / "build" / "icons" / "fieldmark.ico"
    if not icon.is_file():
        run([python(), ROOT / "build_scripts" / "make_icons.py", "--out", icon.parent])
    msi = ROOT / "dist" / f"{bc.APP_NAME}-{bc.version()}-windows-x64.msi"
    run(["wix", "build", "-arch", "x64", "-d", f"Version={bc.version()}", "-d", f"AppDir={onedir}",
         "-d", f"IconFile={icon}", "-o", msi, WXS])
    print(f"built {msi}: {mb(msi.stat().st_size)}")
    return msi


def smoke_install(msi: Path, require_packs: bool) -> None:
    """Install for this user (no admin), self-test the installed app, uninstall."""
    log = ROOT / "build" / "msi-install.log"
    run(["msiexec", "/i", msi, "/qn", "/l*v", log])
    try:
        exe = Path(os.environ["LOCALAPPDATA"]) / "Programs" / bc.APP_NAME / "fieldmark.exe"
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        report = ROOT / "build" / "selftest-msi.json"
        run([exe, "--self-test", "--report", report] + (["--require-packs"] if require_packs else []), env=env)
    finally:
        run(["msiexec", "/x", msi, "/qn", "/l*v", ROOT / "build" / "msi-uninstall.log"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--packs", type=Path, help="pack folder (or folder of packs) to bundle")
    p.add_argument("--skip-build", action="store_true", help="use the existing dist/fieldmark-onedir")
    p.add_argument("--no-install-test", action="store_true", help="do not install/uninstall the MSI")
    a = p.parse_args(argv)
    if sys.platform != "win32":
        raise SystemExit("the MSI is built on Windows")
    onedir = bc.artifact(ROOT / "dist", bc.Options(mode="onedir")) if a.skip_build else build(a.packs)
    creds = require_env("WINDOWS_SIGN_PFX", "WINDOWS_SIGN_PASSWORD")
    if creds:
        sign([onedir / "fieldmark.exe"], creds)
    msi = make_msi(onedir)
    if creds:
        sign([msi], creds)
    else:
        print("WINDOWS_SIGN_PFX not set: the executable and the MSI stay unsigned")
    if not a.no_install_test:
        smoke_install(msi, bool(a.packs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
