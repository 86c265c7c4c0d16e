"""Timing helpers shared by the model benchmarks (milliseconds, percentiles)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def timed(fn: Callable[[], Any], reps: int, warmup: int = 1) -> list[float]:
    """Run ``fn`` ``warmup`` times untimed, then ``reps`` times; the wall times in ms."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if len(xs) > 1 else xs[0]
