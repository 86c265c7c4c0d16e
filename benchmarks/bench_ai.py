#!/usr/bin/env python3
"""AI-assisted labeling through the app's API (the bridge minus Qt): latency and throughput.

    python benchmarks/bench_ai.py [--quick] [--json]

``click``     ``Api.call("segment.click")`` -> the job's ``job.done`` event -> the result as the
              bridge serializes it (JSON), on an image already encoded: decoder + upscale +
              polygon tracing + job hops. p50 / p95 over many clicks at different places, and
              where the time goes (``stages``: the same clicks stage by stage, see ClickStages).
``rescore``   ``Api.call("detect.rescore")`` after a threshold change (cached embedding, numpy
              head, store write of the proposals); also with a phrase the detector has not seen.
``batch``     ``runs.start`` over N images (decode thread + one worker + store writes), images/s,
              against the encoder-only bound measured in the same run: ``encode_image`` alone on
              the same images, already decoded, one after another.

Packs: tiny random ones (exported once per call into a temp folder), and the full-size random
SAM ViT-B and OWLv2 B/16 from ``~/.cache/fieldmark/bench-packs`` (made by bench_segmenter /
bench_detector; exported here once if missing, which takes minutes). Numbers only; budgets are
in ARCHITECTURE.md. The machine load is printed: a shared machine inflates every number.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CACHE = Path.home() / ".cache" / "fieldmark" / "bench-packs"
FULL = {"segmenter": ("sam", "full", "sam-vit-b-seed0"),
        "detector": ("owlv2", "full", "owlv2-full-seed0")}
TINY = {"segmenter": ("sam", "tiny"), "detector": ("owlv2", "tiny")}


def export(family: str, kind: str, out: Path) -> Path:
    if not (out / "manifest.json").is_file():
        from build_scripts.exporters import EXPORTERS

        print(f"exporting {out.name} (once) ...", file=sys.stderr, flush=True)
        EXPORTERS[family](family=family, checkpoint=None, random=kind, out=out, quantize=False,
                          seed=0, pack_id=out.name.lower().replace("_", "-"), version="0.0.1")
    return out


def photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 255, yy / h * 255, 128 + 100 * np.sin(xx / 37) * np.cos(yy / 23)], -1)
    for _ in range(6):
        cx, cy, r = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h, rng.uniform(0.05, 0.15) * h
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
    return np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000.0, q))


class Harness:
    """An Api on a fresh project and user data folder, with a job waiter."""

    def __init__(self, root: Path, n_images: int, size: tuple[int, int]) -> None:
        os.environ["FIELDMARK_DATA_DIR"] = str(root / "data")
        os.environ["FIELDMARK_PACKS_DIR"] = str(root / "data" / "packs")
        from backend.api.service import Api
        from backend.api.settings import Settings

        folder = root / "photos"
        folder.mkdir(parents=True)
        for i in range(n_images):
            Image.fromarray(photo(*size, seed=i)).save(folder / f"p{i:03d}.jpg", quality=90)
        self.done: dict[str, tuple[str, Any]] = {}
        self.cond = threading.Condition()
        self.api = Api(Settings(root / "settings.json"), demo_dir=root / "demo")
        self.api.listeners.append(self._listen)
        self.call("project.open", {"path": str(folder)})
        self.images = [im["id"] for im in self.call("images.list")]

    def _listen(self, name: str, payload: Any) -> None:
        text = json.dumps(payload, default=str)  # what the bridge does with every event
        if name in ("job.done", "job.failed", "job.cancelled"):
            with self.cond:
                self.done[payload["job"]] = (name, json.loads(text))
                self.cond.notify_all()

    def call(self, method: str, args: dict[str, Any] | None = None) -> Any:
        answer = self.api.call(method, args or {})
        json.dumps(answer, default=str)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']['message']}")
        return answer["ok"]

    def job(self, method: str, args: dict[str, Any] | None = None) -> Any:
        job = self.call(method, args)["job"]
        with self.cond:
            self.cond.wait_for(lambda: job in self.done, 3600)
        name, payload = self.done.pop(job)
        if name != "job.done":
            raise RuntimeError(f"{method}: {payload}")
        return payload["result"]

    def install(self, path: Path) -> None:
        self.job("models.install", {"path": str(path)})

    def close(self) -> None:
        from backend.api import ai_handlers

        self.api.close_project()
        ai_handlers.services(self.api).shutdown()
        self.api.jobs.shutdown()


def bench_click(root: Path, pack: Path, n: int, stages: bool = True) -> dict[str, Any]:
    """Clicks through the Api; with ``stages``, each timed click is followed (untimed) by the
    same click stage by stage (:class:`ClickStages`), so the breakdown and the overhead of the
    Api call and job hops (``bridge_ms``: click minus stages, per click) see the same load."""
    h = Harness(root, 1, (1200, 1600))
    try:
        h.install(pack)
        image = h.images[0]
        t0 = time.perf_counter()
        h.job("segment.prepare", {"image_id": image})
        encode_s = time.perf_counter() - t0
        staged = ClickStages(h, image) if stages else None
        rng = np.random.default_rng(1)
        times = []
        for i in range(n + 2):
            x, y = float(rng.uniform(100, 1500)), float(rng.uniform(100, 1100))
            t = time.perf_counter()
            h.job("segment.click", {"image_id": image, "points": [[x, y, 1]]})
            took = time.perf_counter() - t
            if i >= 2:  # warm-up: session creation, first upscaler
                times.append(took)
            if staged is not None:
                staged.click(x, y, took if i >= 2 else None)
        out = {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "clicks": n,
               "first_encode_s": encode_s, "times_ms": [t * 1000 for t in times]}
        if staged is not None:
            out["stages"] = staged.summary()
        return out
    finally:
        h.close()


CLICK_STAGES = ("decoder", "select", "clean", "upscale", "trace", "polygons", "preview_json")


class ClickStages:
    """Where a click's time goes, through the app's own segmenter and cached encoding, stage by
    stage on this thread (the steps of ``predict_polygons`` and ``segment.click``).

    ``decoder`` the decoder graph (onnxruntime) with the prompt feeds; ``select`` the mask
    token choice; ``clean`` specks and pinholes off the low-res logits; ``upscale`` the
    windowed bilinear upscale + threshold; ``trace`` exact contour tracing; ``polygons``
    simplification and the float lists (its own trace subtracted); ``preview_json`` area /
    bbox of the preview and the JSON the bridge sends; ``bridge`` the Api click minus the
    stages: the call, job and event hops (and the load's noise between the two runs).
    """

    def __init__(self, h: Harness, image: int) -> None:
        from backend.ai.worker import INTERACTIVE
        from backend.api import ai_handlers

        services = ai_handlers.services(h.api)
        self.seg = services.models.segmenter()
        project = h.api.project
        assert project is not None
        self.enc = services.encodings.encoding(self.seg, project.image_path(image), INTERACTIVE)
        self.image = image
        self.samples: dict[str, list[float]] = {k: [] for k in (*CLICK_STAGES, "total", "bridge")}
        self.parts: list[int] = []
        self.vertices: list[int] = []

    def click(self, x: float, y: float, api_s: float | None) -> None:
        from backend.ai.segmentation import preview
        from backend.geometry.contour import trace
        from backend.models.mask_clean import MAX_PARTS, clean_logits
        from backend.models.mask_post import region_polygons
        from backend.models.segmenter import default_multimask

        seg, enc = self.seg, self.enc
        threshold = seg._spec["threshold"]  # noqa: SLF001 — the stages of predict_polygons
        t = [time.perf_counter()]
        pts, box, outs = seg._run_decoder(enc, [(x, y, 1)], None, None)  # noqa: SLF001
        t.append(time.perf_counter())
        scores, masks = outs[0][0], outs[1][0]
        idx = seg._select(scores, masks, default_multimask(pts, box, None, None))  # noqa: SLF001
        t.append(time.perf_counter())
        low = clean_logits(masks[idx], threshold)
        t.append(time.perf_counter())
        reg = seg.upscaler(enc.original_size).region(low, threshold)
        t.append(time.perf_counter())
        if reg is not None:
            trace(reg[0])
        t.append(time.perf_counter())
        polys = region_polygons(*reg, max_parts=MAX_PARTS) if reg is not None else []
        t.append(time.perf_counter())
        json.dumps({"image_id": self.image, **preview(polys, float(scores[idx]))})
        t.append(time.perf_counter())
        if api_s is None:
            return
        step = dict(zip(CLICK_STAGES, np.diff(t), strict=True))
        step["polygons"] -= step["trace"]  # region_polygons traces again
        step["total"] = sum(step.values())
        step["bridge"] = api_s - step["total"]
        for k, v in step.items():
            self.samples[k].append(float(v))
        self.parts.append(len(polys))
        self.vertices.append(sum(len(r) for p in polys for r in p))

    def summary(self) -> dict[str, dict[str, float]]:
        out = {k: {"p50_ms": pct(v, 50), "p95_ms": pct(v, 95)} for k, v in self.samples.items()}
        out["mask"] = {"parts_median": float(np.median(self.parts)),
                       "parts_max": float(max(self.parts)),
                       "vertices_median": float(np.median(self.vertices))}
        return out


def bench_rescore(root: Path, pack: Path, n: int) -> dict[str, Any]:
    h = Harness(root, 1, (1200, 1600))
    try:
        h.install(pack)
        image = h.images[0]
        a = h.call("classes.add", {"name": "disc"})["id"]
        b = h.call("classes.add", {"name": "stripe"})["id"]
        h.call("classes.set_prompts", {"id": a, "prompts": ["a round disc", "a circle"], "threshold": 0.1})
        h.call("classes.set_prompts", {"id": b, "prompts": ["stripes"], "threshold": 0.15})
        h.job("detect.image", {"image_id": image})
        threshold, new_phrase, counts = [], [], []
        for i in range(n):
            # Thresholds where a person works: tens to a hundred or so proposals on the image
            # (random weights put many boxes at low scores; thousands of proposals per image are
            # not a review anyone does, and cost the store time per proposal).
            h.call("classes.set_prompts", {"id": a, "prompts": ["a round disc", "a circle"],
                                           "threshold": 0.13 + 0.08 * (i % 10) / 10})
            t = time.perf_counter()
            counts.append(len(h.call("detect.rescore", {"image_id": image})["proposals"]))
            threshold.append(time.perf_counter() - t)
        for i in range(min(n, 20)):
            h.call("classes.set_prompts", {"id": b, "prompts": [f"stripes number {i}"], "threshold": 0.15})
            t = time.perf_counter()
            h.call("detect.rescore", {"image_id": image})
            new_phrase.append(time.perf_counter() - t)
        from backend.api import ai_handlers

        return {"p50_ms": pct(threshold, 50), "p95_ms": pct(threshold, 95),
                "proposals_mean": float(np.mean(counts)),
                "new_phrase_p50_ms": pct(new_phrase, 50),
                "new_phrase_p95_ms": pct(new_phrase, 95),
                "encoder_runs": ai_handlers.services(h.api).models.detector().encoder_runs,
                "threshold_ms": [t * 1000 for t in threshold],
                "new_phrase_ms": [t * 1000 for t in new_phrase]}
    finally:
        h.close()


def bench_batch(root: Path, pack: Path, n_images: int, size: tuple[int, int],
                reps: int) -> dict[str, Any]:
    """Alternates the encoder-only bound and a full run ``reps`` times (a shared machine's load
    drifts; alternating exposes both to the same drift) and reports the best and the median."""
    from backend.imaging import load_rgb
    from backend.models.detector import load_detector
    from backend.models.pack import load_pack

    h = Harness(root, n_images + 1, size)
    try:
        h.install(pack)
        c = h.call("classes.add", {"name": "disc"})["id"]
        h.call("classes.set_prompts", {"id": c, "prompts": ["a round disc"], "threshold": 0.2})
        project = h.api.project
        assert project is not None
        # One extra image warms both sides up (session creation, model loading are not
        # throughput); it is left out of the timed runs, as its embedding is now cached.
        warm, images = h.images[0], h.images[1:]
        decoded = [load_rgb(project.image_path(i)) for i in images]
        det = load_detector(load_pack(pack))
        det.encode_image(load_rgb(project.image_path(warm)))
        h.job("detect.image", {"image_id": warm})
        bounds, rates, failed = [], [], 0
        for _ in range(reps):
            t = time.perf_counter()
            for img in decoded:
                det.encode_image(img)
            bounds.append(n_images / (time.perf_counter() - t))
            t = time.perf_counter()
            result = h.job("runs.start", {"kind": "detect", "image_ids": images})
            rates.append(n_images / (time.perf_counter() - t))
            failed = len(result["failed"])
        ratios = [r / b for r, b in zip(rates, bounds, strict=True)]
        return {"images": n_images, "size": f"{size[1]}x{size[0]}", "reps": reps,
                "pipeline_img_s_best": max(rates), "encoder_only_img_s_best": max(bounds),
                "ratio_of_bests": max(rates) / max(bounds),
                "ratio_median": float(np.median(ratios)), "failed": failed,
                "pipeline_img_s": rates, "encoder_only_img_s": bounds, "ratios": ratios}
    finally:
        h.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repetitions; full-size packs only for clicks")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="fieldmark-bench-ai-"))
    rows: list[dict[str, Any]] = []
    try:
        tiny = {task: export(fam, kind, work / "packs" / f"{fam}-tiny") for task, (fam, kind) in TINY.items()}
        full = {task: export(fam, kind, CACHE / name) for task, (fam, kind, name) in FULL.items()}
        n_click = 30 if args.quick else 100
        n_rescore = 30 if args.quick else 100
        plan: list[tuple[str, str, Any]] = [
            ("click", "sam tiny", lambda r: bench_click(r, tiny["segmenter"], n_click)),
            ("click", "sam vit-b (full size)", lambda r: bench_click(r, full["segmenter"], n_click)),
            ("rescore", "owlv2 tiny", lambda r: bench_rescore(r, tiny["detector"], n_rescore)),
            ("batch", "owlv2 tiny", lambda r: bench_batch(r, tiny["detector"], 20, (768, 1024),
                                                           3 if args.quick else 5)),
        ]
        if not args.quick:
            plan += [("rescore", "owlv2 b/16 (full size)", lambda r: bench_rescore(r, full["detector"], n_rescore)),
                     ("batch", "owlv2 b/16 (full size)",
                      lambda r: bench_batch(r, full["detector"], 4, (768, 1024), 2))]
        for i, (what, model, fn) in enumerate(plan):
            print(f"{what} / {model} ...", file=sys.stderr, flush=True)
            row = {"bench": what, "model": model, **fn(work / f"run{i}")}
            rows.append(row)
            if not args.json:
                print("  " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in row.items()
                                       if k not in ("bench", "model") and not isinstance(v, list)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = {"load_average_at_start": load, "load_average_at_end": os.getloadavg(),
            "cpus": os.cpu_count(), "threads": os.environ.get("FIELDMARK_THREADS")}
    if args.json:
        print(json.dumps({"machine": info, "results": rows}, indent=2))
    else:
        print(f"machine: {info}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
