#!/usr/bin/env python3
"""Detector timings: our ONNX graphs + numpy head vs the transformers PyTorch forward, same model.

    python benchmarks/bench_detector.py [--quick] [--family owlvit|owlv2] [--json]

Real-size random-weight models (OWL-ViT B/32 @ 768, OWLv2 B/16 @ 960; same FLOPs as the released
checkpoints) are exported once with ``export_models.py --random full`` (fp32 and ``--quantize``)
and cached in ``~/.cache/fieldmark/bench-packs/``. Torch rebuilds the same weights from the seed.
Both sides use the same number of threads (``FIELDMARK_THREADS`` or all cores we may use).

Stages: ``preproc`` = our numpy preprocessing of a 1600 x 1200 photo; ``image`` = the image
encoder alone (ours: the ONNX graph; torch: the transformers modules computing the same tensors,
``ImageEncoder`` in the exporter), timed round-robin so machine load hits all alike; ``encode``
= preprocessing + image encoder (``Detector.encode_image``); ``text`` = tokenize + text encoder
for 4 new phrases; ``rescore`` = the numpy head on a cached encoding (6 phrases, 4 labels,
threshold, NMS) at a threshold leaving ~50 proposals; ``rescore*`` = the same at 0.1, where
random weights leave hundreds (worst case, NMS-bound). Reported numbers only: never asserted in
tests (the budgets are in ARCHITECTURE.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.models.detector import Detector  # noqa: E402
from backend.models.owl_preprocess import pixel_values  # noqa: E402
from backend.models.pack import PackError, load_pack  # noqa: E402
from backend.models.runtime import create_session, default_threads  # noqa: E402
from benchmarks.timing import pct, timed

CACHE = Path.home() / ".cache" / "fieldmark" / "bench-packs"
SEED = 0
PROMPTS = {"moth": ["a photo of a moth", "moth"], "leaf": ["green leaf", "a leaf"],
           "seedling": ["a seedling"], "trap": ["sticky trap"]}


def photo(h: int = 1200, w: int = 1600) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 255, yy / h * 255, 128 + 100 * np.sin(xx / 37) * np.cos(yy / 23)], -1)
    return np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)


def get_pack(family: str, quantize: bool) -> Any:
    out = CACHE / f"{family}-full{'-int8' if quantize else ''}-seed{SEED}"
    try:
        return load_pack(out, verify=False)
    except PackError:
        from build_scripts import export_models

        print(f"exporting {out.name} (once; cached) ...", file=sys.stderr, flush=True)
        args = ["--family", family, "--random", "full", "--seed", str(SEED), "--out", str(out)]
        export_models.main(args + (["--quantize"] if quantize else []))
        return load_pack(out, verify=False)


def round_robin(fns: dict[str, Callable[[], Any]], reps: int) -> dict[str, list[float]]:
    """Time each function ``reps`` times, interleaved, so load changes on a shared machine hit
    every variant alike (one untimed warm-up call each first)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            times[name] += timed(fn, 1, warmup=0)
    return times


def new_phrases(det: Detector, counter: Any) -> None:
    """Encode 4 phrases never seen before (the text cache would hide the encoder otherwise)."""
    det.encode_text([f"a photo of thing {next(counter)} {i}" for i in range(4)])


def rescore_threshold(det: Detector, enc: Any, proposals: int) -> float:
    """The threshold that leaves about ``proposals`` boxes (random weights score very many
    patches above 0.1; a trained model proposes tens)."""
    q = det.encode_text([p for ps in PROMPTS.values() for p in ps])
    best = ((enc.class_embeds @ q.T + enc.shift[:, None]) * enc.scale[:, None]).max(axis=1)
    return float(1 / (1 + np.exp(-np.sort(best)[-proposals])))


def bench_family(family: str, reps: int, rescore_reps: int, threads: int) -> list[dict[str, Any]]:
    import torch

    from build_scripts.exporters import owl

    torch.set_num_threads(threads)
    image = photo()
    rows: list[dict[str, Any]] = []

    def add(variant: str, stage: str, ms: list[float], **extra: Any) -> None:
        rows.append({"family": family, "variant": variant, "stage": stage, "n": len(ms),
                     "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), **extra})

    packs = {v: get_pack(family, quantize=v == "int8") for v in ("fp32", "int8")}
    pre = packs["fp32"].preprocessing
    pixels = pixel_values(image, pre)
    add("numpy", "preproc", timed(lambda: pixel_values(image, pre), reps))
    dets = {v: Detector(p, threads=threads) for v, p in packs.items()}
    sessions = {v: create_session(p.graph("image_encoder"), threads=threads) for v, p in packs.items()}
    # The same weights in PyTorch (rebuilt from the seed), the same image-side computation.
    wrapper = owl.ImageEncoder(owl.build_random(family, "full", SEED, vocab_size=49408)).eval()
    px = torch.from_numpy(pixels)

    def torch_image() -> Any:
        with torch.no_grad():
            return wrapper(px)

    fns: dict[str, Callable[[], Any]] = {
        v: partial(s.run, {"pixel_values": pixels}) for v, s in sessions.items()}
    fns["torch"] = torch_image
    for v, ms in round_robin(fns, reps).items():
        add(v, "image", ms)
    encs = {v: d.encode_image(image) for v, d in dets.items()}
    for v, ms in round_robin({v: partial(d.encode_image, image) for v, d in dets.items()},
                             reps).items():
        add(v, "encode", ms)
    ref = torch_image()[0].numpy()[0]
    for v, det in dets.items():
        add(v, "text", timed(partial(new_phrases, det, iter(range(10**6))), max(reps, 5)))
        enc = encs[v]
        for label, thr in (("rescore", rescore_threshold(det, enc, 50)), ("rescore*", 0.1)):
            n = len(det.detect(enc, PROMPTS, thr, nms_iou=0.5))
            add(v, label, timed(partial(det.detect, enc, PROMPTS, thr, nms_iou=0.5), rescore_reps,
                                warmup=3), proposals=n)
    diff = {v: float(np.abs(e.class_embeds - ref).max()) for v, e in encs.items()}
    rows.append({"family": family, "check": "max |class_embeds - torch|", **diff})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'family':<7} {'variant':<6} {'stage':<8} {'n':>3} {'p50 ms':>10} {'p95 ms':>10} "
             f"{'torch/ours':>10} {'boxes':>6}"]
    torch_p50 = {r["family"]: r["p50_ms"] for r in rows if r.get("variant") == "torch"}
    for r in rows:
        if "check" in r:
            continue
        ratio = ""
        if r["stage"] in ("image", "encode") and r["variant"] in ("fp32", "int8"):
            ratio = f"{torch_p50[r['family']] / r['p50_ms']:.2f}x"
        lines.append(f"{r['family']:<7} {r['variant']:<6} {r['stage']:<8} {r['n']:>3} "
                     f"{r['p50_ms']:>10.1f} {r['p95_ms']:>10.1f} {ratio:>10} "
                     f"{r.get('proposals', ''):>6}")
    for r in rows:
        if "check" in r:
            lines.append(f"{r['family']}: {r['check']}: fp32 {r['fp32']:.2e}, int8 {r['int8']:.2e}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--family", choices=("owlvit", "owlv2"), action="append")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    threads = default_threads()
    rows: list[dict[str, Any]] = []
    for family in args.family or ["owlvit", "owlv2"]:
        big = family == "owlv2"  # ~10x the FLOPs of OWL-ViT B/32
        reps = (2 if big else 3) if args.quick else (4 if big else 10)
        rows += bench_family(family, reps, 20 if args.quick else 100, threads)
    meta = {"threads": threads, "cpu_count": os.cpu_count()}
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
    else:
        print(f"threads: {threads}")
        print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
