"""PyInstaller hook for Fieldmark's own ``backend`` package.

What the import graph cannot see: modules loaded by name (segmenter families in
``backend.models.segmenter.REGISTRY``, CLI commands in ``backend.cli.SUBCOMMANDS``, formats),
and the files the app reads through ``backend.paths.resource()``: the page (``web/``) and the
demo project. Packs are a build option, so ``main.spec`` adds them.
"""

from pathlib import Path

from PyInstaller.utils.hooks import collect_submodules

_ROOT = Path(__file__).resolve().parent.parent

hiddenimports = collect_submodules("backend")
datas = [
    (str(_ROOT / "web"), "web"),
    (str(_ROOT / "demo" / "images"), "demo/images"),
    (str(_ROOT / "demo" / "LICENSE.md"), "demo"),
]
