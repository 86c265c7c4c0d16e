"""onnxruntime sessions: one generic loader with a provider fallback that is reported.

A provider is "available" only if a session can actually be created with it (an installed CUDA
provider without a matching driver fails at that point), so we try, in order of preference, and
keep the reasons for the ones that failed: the models panel and ``models list`` show them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.errors import PackError
from backend.models import interrupt

log = logging.getLogger(__name__)

PREFERENCE = ("CUDAExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider",
              "CPUExecutionProvider")


def default_threads() -> int:
    """Intra-op threads: the physical cores we may use, leaving none idle but not oversubscribing.

    ``FIELDMARK_THREADS`` overrides. onnxruntime's own default spins one thread per logical core
    plus busy-waiting, which on a 2-core laptop starves the GUI thread.
    """
    env = os.environ.get("FIELDMARK_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    return max(1, n)


@dataclass
class Session:
    """An onnxruntime InferenceSession plus what we learned creating it."""

    inner: Any
    provider: str
    fallbacks: dict[str, str] = field(default_factory=dict)  # provider -> why it was not used
    path: Path | None = None

    def run(self, feeds: dict[str, Any], outputs: list[str] | None = None) -> list[Any]:
        options = interrupt.run_options()  # set while a background pass may be stopped
        try:
            return self.inner.run(outputs, feeds, options)
        except Exception as exc:
            interrupt.check(options, exc)
            raise

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inner.get_inputs()]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.inner.get_outputs()]


def create_session(path: Path, *, providers: tuple[str, ...] | None = None,
                   threads: int | None = None) -> Session:
    """Create a session on the first provider that works; raise PackError if none does."""
    import onnxruntime as ort  # deferred: importing it costs ~100 ms at app start

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Busy-waiting threads keep a core at 100 % between clicks; the GUI needs it.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    installed = set(ort.get_available_providers())
    wanted = [p for p in (providers or PREFERENCE) if p in installed] or ["CPUExecutionProvider"]
    fallbacks: dict[str, str] = {}
    for prov in wanted:
        try:
            chain = [prov] if prov == "CPUExecutionProvider" else [prov, "CPUExecutionProvider"]
            inner = ort.InferenceSession(str(path), sess_options=opts, providers=chain)
        except Exception as exc:  # noqa: BLE001 — any failure means "try the next provider"
            fallbacks[prov] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.info("provider %s unavailable for %s: %s", prov, path, fallbacks[prov])
            continue
        used = inner.get_providers()[0]
        if used != prov:
            fallbacks[prov] = f"session fell back to {used}"
        log.info("onnx session %s on %s", Path(path).name, used)
        return Session(inner=inner, provider=used, fallbacks=fallbacks, path=Path(path))
    raise PackError(f"Could not load the model graph '{path}': "
                    + "; ".join(f"{k}: {v}" for k, v in fallbacks.items())
                    + ". The file may be corrupt; re-install the model pack.",
                    detail={"file": str(path), "providers": fallbacks})


_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int8)": "int8",
              "tensor(uint8)": "uint8", "tensor(bool)": "bool"}


def declared_io(value: Any) -> tuple[str | None, list[Any] | None]:
    """(dtype, shape) of a manifest's input/output entry: ``{"dtype", "shape"}`` or a shape."""
    if isinstance(value, dict):
        shape = value.get("shape")
        return value.get("dtype"), list(shape) if isinstance(shape, list) else None
    return None, list(value) if isinstance(value, list) else None


def _mismatch(kind: str, name: str, arg: Any, value: Any) -> str | None:
    dtype, shape = declared_io(value)
    actual = _ORT_TYPES.get(arg.type)
    if dtype is not None and actual is not None and dtype != actual:
        return f"{kind} '{name}' is {actual}, the manifest says {dtype}"
    got = list(arg.shape) if arg.shape is not None else None
    if shape is None or got is None:
        return None
    # Named (symbolic) sizes vary at run time; only two fixed sizes can disagree.
    if len(got) != len(shape) or any(isinstance(a, int) and isinstance(b, int) and a != b
                                     for a, b in zip(got, shape, strict=True)):
        return f"{kind} '{name}' has shape {got}, the manifest says {shape}"
    return None


def check_graph(path: Path, spec: dict[str, Any], *, pack: str, graph: str) -> None:
    """Load ``path`` on the CPU (no optimizations: only whether it loads and what it takes)
    and compare its inputs and outputs with the manifest's ``spec``; PackError if they differ."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    detail = {"pack": pack, "graph": graph, "file": str(path)}
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 — onnxruntime raises its own types for bad files
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PackError(f"Model pack '{pack}': the {graph} graph '{Path(path).name}' cannot be "
                        f"loaded ({why}). The file is damaged or not an ONNX model; copy the "
                        "pack again or re-export it with build_scripts/export_models.py.",
                        detail={**detail, "reason": why}) from exc
    inputs = {a.name: a for a in sess.get_inputs()}
    outputs = {a.name: a for a in sess.get_outputs()}
    declared_in = spec.get("inputs") or {}
    declared_out = spec.get("outputs") or {}
    problems = [f"it takes input '{n}' that the manifest does not declare"
                for n in inputs if n not in declared_in]
    problems += [f"it has no {kind} '{n}' that the manifest declares"
                 for kind, declared, actual in (("input", declared_in, inputs),
                                                ("output", declared_out, outputs))
                 for n in declared if n not in actual]
    for kind, declared, actual in (("input", declared_in, inputs), ("output", declared_out, outputs)):
        problems += [m for n, v in declared.items() if n in actual
                     and (m := _mismatch(kind, n, actual[n], v)) is not None]
    if problems:
        raise PackError(f"Model pack '{pack}': the {graph} graph '{Path(path).name}' does not match "
                        f"its manifest: {'; '.join(problems[:3])}. The pack mixes files of "
                        "different models; re-export it with build_scripts/export_models.py.",
                        detail={**detail, "problems": problems})


def provider_report() -> dict[str, Any]:
    import onnxruntime as ort

    return {"onnxruntime": ort.__version__, "installed": ort.get_available_providers(),
            "threads": default_threads()}
