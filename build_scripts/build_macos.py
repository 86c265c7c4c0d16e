#!/usr/bin/env python3
"""macOS: Fieldmark.app (from the one-folder build) and a .dmg; signed and notarized when the
credentials are present. Scripted here, run by CI on macOS (.github/workflows/build.yml).

    python build_scripts/build_macos.py [--packs DIR] [--skip-build]

Steps: build (main.spec in onedir mode makes dist/Fieldmark.app with Info.plist, icon and
version) -> sign -> smoke (the .app's --self-test) -> dmg -> sign the dmg -> notarize + staple
-> smoke (the app from the mounted dmg). Credentials, all optional, from the environment:

    MACOS_SIGN_IDENTITY     "Developer ID Application: ..." (a keychain identity): signing
    APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD  (app-specific password): notarization

Without them the app and dmg are unsigned (fine for testing; Gatekeeper warns users).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_scripts import build_config as bc  # noqa: E402
from build_scripts.build_common import ROOT, mb, python, require_env, run  # noqa: E402

ENTITLEMENTS = ROOT / "build_scripts" / "macos" / "entitlements.plist"
APP = ROOT / "dist" / f"{bc.APP_NAME}.app"
MACHO_MAGIC = {b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe"}


def build(packs: Path | None) -> Path:
    cmd = [python(), ROOT / "build_scripts" / "build_onefile.py", "--mode", "onedir"]
    run(cmd + (["--packs", packs] if packs else []))
    if not APP.is_dir():
        raise SystemExit(f"{APP} was not built (main.spec makes it in onedir mode on macOS)")
    return APP


def _macho_files(app: Path) -> list[Path]:
    found = []
    for f in app.rglob("*"):
        if f.is_file() and not f.is_symlink():
            with open(f, "rb") as fh:
                if fh.read(4) in MACHO_MAGIC:
                    found.append(f)
    # Sign from the inside out: deepest files first, the main executable last.
    return sorted(found, key=lambda p: -len(p.parts))


def sign(app: Path, identity: str) -> None:
    """Hardened runtime on every Mach-O file, then the nested helper apps, then the app."""
    base = ["codesign", "--force", "--timestamp", "--options", "runtime", "--entitlements",
            ENTITLEMENTS, "--sign", identity]
    for f in _macho_files(app):
        run(base + [f])
    for helper in sorted(app.rglob("*.app"), key=lambda p: -len(p.parts)):
        if helper != app:
            run(base + [helper])
    run(base + [app])
    run(["codesign", "--verify", "--deep", "--strict", "--verbose=2", app])


def smoke(app: Path, require_packs: bool) -> None:
    exe = app / "Contents" / "MacOS" / "fieldmark"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    report = ROOT / "build" / "selftest-macos-app.json"
    run([exe, "--self-test", "--report", report] + (["--require-packs"] if require_packs else []), env=env)


def make_dmg(app: Path) -> Path:
    dmg = ROOT / "dist" / f"{bc.APP_NAME}-{bc.version()}-macos-{os.uname().machine}.dmg"
    dmg.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / bc.APP_NAME
        stage.mkdir()
        run(["ditto", app, stage / app.name])
        os.symlink("/Applications", stage / "Applications")  # drag-to-install
        run(["hdiutil", "create", "-volname", bc.APP_NAME, "-srcfolder", stage, "-ov",
             "-format", "UDZO", dmg])
    print(f"built {dmg}: {mb(dmg.stat().st_size)}")
    return dmg


def notarize(dmg: Path, creds: dict[str, str]) -> None:
    run(["xcrun", "notarytool", "submit", dmg, "--apple-id", creds["APPLE_ID"], "--team-id",
         creds["APPLE_TEAM_ID"], "--password", creds["APPLE_APP_PASSWORD"], "--wait"])
    run(["xcrun", "stapler", "staple", dmg])


def smoke_dmg(dmg: Path, require_packs: bool) -> None:
    with tempfile.TemporaryDirectory() as mount:
        run(["hdiutil", "attach", "-nobrowse", "-readonly", "-mountpoint", mount, dmg])
        try:
            smoke(Path(mount) / f"{bc.APP_NAME}.app", require_packs)
        finally:
            subprocess.run(["hdiutil", "detach", mount], check=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--packs", type=Path, help="pack folder (or folder of packs) to bundle")
    p.add_argument("--skip-build", action="store_true", help="use the existing dist/Fieldmark.app")
    a = p.parse_args(argv)
    if sys.platform != "darwin":
        raise SystemExit("the .app and .dmg are built on macOS")
    app = APP if a.skip_build else build(a.packs)
    identity = os.environ.get("MACOS_SIGN_IDENTITY")
    if identity:
        sign(app, identity)
    else:
        print("MACOS_SIGN_IDENTITY not set: the app stays unsigned")
    smoke(app, bool(a.packs))
    dmg = make_dmg(app)
    if identity:
        run(["codesign", "--force", "--timestamp", "--sign", identity, dmg])
    creds = require_env("APPLE_ID", "APPLE_TEAM_ID", "APPLE_APP_PASSWORD")
    if identity and creds:
        notarize(dmg, creds)
    else:
        print("notarization skipped (needs MACOS_SIGN_IDENTITY, APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD)")
    smoke_dmg(dmg, bool(a.packs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
