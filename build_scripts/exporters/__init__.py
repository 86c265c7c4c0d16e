"""Exporters, one module per model family. Each provides

    export(*, family, checkpoint, random, out, quantize, seed, pack_id, version) -> Pack

which writes ONNX graphs (+ tokenizer files) into ``out`` and finishes with
``backend.models.pack.write_pack``. Imports are lazy so ``--help`` works without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _lazy(module: str) -> Callable[..., Any]:
    def run(**kwargs: Any) -> Any:
        import importlib

        return importlib.import_module(f"build_scripts.exporters.{module}").export(**kwargs)

    return run


EXPORTERS: dict[str, Callable[..., Any]] = {
    "owlvit": _lazy("owl"),
    "owlv2": _lazy("owl"),
    "sam": _lazy("sam"),
    "sam2": _lazy("sam2"),
}
