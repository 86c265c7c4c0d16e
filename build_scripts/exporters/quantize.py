"""Dynamic int8 weights for exported graphs, the same way for every family."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def quantize_graphs(out: Path, names: Iterable[str]) -> None:
    """Replace each graph in ``out`` by its dynamic-int8 version.

    Only MatMul/Gemm are quantized: ConvInteger is slower than float Conv on most CPUs (and
    missing in some onnxruntime builds). The int8 file is written beside the original and then
    moved over it, so an interrupted run never leaves a half-written graph.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for name in names:
        src = out / name
        tmp = out / f".{name}.int8"
        try:
            quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul", "Gemm"])
            tmp.replace(src)
        finally:
            tmp.unlink(missing_ok=True)
