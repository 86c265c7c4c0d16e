#!/usr/bin/env python3
"""Geometry timings on typical segmenter output (reported numbers, never asserted in tests).

    python benchmarks/bench_geometry.py [--repeat 50] [--json]

Masks are 1024 x 1024 "SAM-like" blobs: a few smooth thresholded-noise objects with holes and
specks, the kind the click -> polygon path turns into shapes. Budget: mask -> polygons within
about 10 ms (part of the 30 ms click -> polygon budget in ARCHITECTURE.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.geometry import boxes, rle  # noqa: E402
from backend.geometry.masks import mask_to_polygons, polygons_to_mask  # noqa: E402


def _upsample(a: np.ndarray, factor: int) -> np.ndarray:
    """Bilinear upsampling (align_corners=False), as SAM does to its 256 x 256 mask logits."""
    def axis(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.clip((np.arange(n * factor) + 0.5) / factor - 0.5, 0, n - 1)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, (src - i0).astype(np.float32)
    r0, r1, fr = axis(a.shape[0])
    c0, c1, fc = axis(a.shape[1])
    rows = a[r0] * (1 - fr)[:, None] + a[r1] * fr[:, None]
    return rows[:, c0] * (1 - fc) + rows[:, c1] * fc


def _blur(a: np.ndarray, passes: int) -> np.ndarray:
    for _ in range(passes):
        a = (np.roll(a, 1, 0) + a + np.roll(a, -1, 0)) / 3
        a = (np.roll(a, 1, 1) + a + np.roll(a, -1, 1)) / 3
    return a


def sam_like_mask(seed: int, size: int = 1024) -> np.ndarray:
    """One to three objects with wavy outlines, sometimes a hole, some specks: 256 x 256 logits
    (blobs plus smooth noise) upsampled x4 and thresholded at 0, like a SAM decoder's output."""
    rng = np.random.default_rng(seed)
    low = size // 4
    yy, xx = np.mgrid[0:low, 0:low].astype(np.float32)
    logits = np.full((low, low), -1.0, np.float32)
    for _ in range(rng.integers(1, 4)):
        cx, cy = rng.uniform(0.25, 0.75, 2) * low
        rx, ry = rng.uniform(0.06, 0.2, 2) * low
        logits += 2.0 * np.exp(-(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2))
    noise = _blur(rng.standard_normal((low, low)).astype(np.float32), 6)
    logits += 0.3 * noise / noise.std()
    return _upsample(logits, 4) > 0


def _time(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    fn()  # warm-up
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    samples.sort()
    # min is the least disturbed by other processes on a shared machine; p50/p95 what a user sees.
    return {"min_ms": round(samples[0], 3), "p50_ms": round(statistics.median(samples), 3),
            "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=30, help="timed runs per measure")
    p.add_argument("--masks", type=int, default=5, help="different masks to average over")
    p.add_argument("--json", action="store_true", help="print JSON")
    args = p.parse_args(argv)

    results: dict[str, Any] = {}
    per_mask: dict[str, list[dict[str, float]]] = {}
    info = []
    for seed in range(args.masks):
        m = sam_like_mask(seed)
        polys = mask_to_polygons(m, tolerance=1.0)
        exact = mask_to_polygons(m, tolerance=0.0, min_area=0)
        enc = rle.encode(m)
        info.append({"pixels": int(m.sum()), "parts": len(polys),
                     "holes": sum(len(q) - 1 for q in polys),
                     "vertices_tol1": sum(len(r) for q in polys for r in q),
                     "vertices_exact": sum(len(r) for q in exact for r in q)})
        measures: dict[str, Callable[[], Any]] = {
            "mask_to_polygons tol=1": partial(mask_to_polygons, m, tolerance=1.0),
            "mask_to_polygons tol=0": partial(mask_to_polygons, m, tolerance=0.0, min_area=0),
            "polygons_to_mask": partial(polygons_to_mask, polys, 1024, 1024),
            "rle.encode": partial(rle.encode, m),
            "rle.decode": partial(rle.decode, enc),
        }
        for name, fn in measures.items():
            per_mask.setdefault(name, []).append(_time(fn, args.repeat))
    for name, rows in per_mask.items():
        results[name] = {k: round(statistics.mean(r[k] for r in rows), 3) for k in rows[0]}

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 900, (3600, 2))
    bxs = np.concatenate([xy, xy + rng.uniform(10, 120, (3600, 2))], axis=1)
    scores = rng.random(3600)
    results["nms 3600 boxes @0.3"] = _time(lambda: boxes.nms(bxs, scores, 0.3), args.repeat)
    results["nms 300 boxes @0.3"] = _time(lambda: boxes.nms(bxs[:300], scores[:300], 0.3),
                                          args.repeat)
    report = {"masks": info, "timings": results}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for i, row in enumerate(info):
            print(f"mask {i}: {row}")
        for name, r in results.items():
            print(f"{name:28s} min {r['min_ms']:8.3f} ms   p50 {r['p50_ms']:8.3f} ms   "
                  f"p95 {r['p95_ms']:8.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
