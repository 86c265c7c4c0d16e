"""Subcommands of ``main.py``; each module offers ``add_parser(subparsers)`` and ``run(args)``.

Modules are imported only when their command runs, so ``python main.py`` (the GUI) does not
pay for onnxruntime and ``--help`` is instant.
"""

from __future__ import annotations

SUBCOMMANDS: dict[str, str] = {
    "detect": "backend.cli.detect",
    "segment": "backend.cli.segment",
    "models": "backend.cli.models",
    "autolabel": "backend.cli.autolabel",
    "export": "backend.cli.export_import",
    "import": "backend.cli.export_import",
}
