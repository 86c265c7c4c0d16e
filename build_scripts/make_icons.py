#!/usr/bin/env python3
"""Render the app icon (``web/img/icon.svg``) to what each platform wants, at build time.

    python build_scripts/make_icons.py --out build/icons

Writes ``fieldmark-<N>.png`` (16…1024), ``fieldmark.png`` (256, for Linux .desktop/AppImage),
``fieldmark.ico`` (Windows executable and MSI) and ``fieldmark.icns`` (macOS .app). The SVG is
rasterized by Qt's QSvgRenderer (the same renderer the window icon uses), the containers are
written by Pillow. Generated files live under build/, never in the repository.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)


def render(svg: Path, size: int, out: Path) -> Path:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    img = QImage(size, size, QImage.Format.Format_ARGB32)
    img.fill(Qt.GlobalColor.transparent)
    painter = QPainter(img)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not img.save(str(out)):
        raise SystemExit(f"could not write {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--svg", type=Path, default=ROOT / "web" / "img" / "icon.svg")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "icons")
    a = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (Qt needs one)
    a.out.mkdir(parents=True, exist_ok=True)
    pngs = {s: render(a.svg, s, a.out / f"fieldmark-{s}.png") for s in SIZES}
    (a.out / "fieldmark.png").write_bytes(pngs[256].read_bytes())
    big = Image.open(pngs[1024])
    big.save(a.out / "fieldmark.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    big.save(a.out / "fieldmark.icns")
    print(f"icons written to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
