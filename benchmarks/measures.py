"""The measures of ``benchmarks/run.py``: each runs in its own subprocess and returns rows.

A row is a dict: ``name``, ``unit``, ``p50``, ``p95``, ``n`` (samples), and where there is one
``baseline`` (p50 of the reference measured in the same run, same unit), ``baseline_name``,
``ratio`` (how the budget reads it: reference time / ours for speed-ups, ours / bound for
throughput), ``note`` (how it was measured, what was skipped) and ``extra`` (other figures).
Budgets are not here: ``run.py`` adds them from ARCHITECTURE.md's table.

For throughputs (higher is better) ``p95`` is the slow side: the rate that 95 % of the runs
reached (the 5th percentile of the rates), so "p95" always means "the bad tail".

The functions import the single-purpose scripts next to them (bench_ai, bench_segmenter, ...)
and reuse their measuring code, so a number here and there means the same thing. Default packs
(docs/adr/0008): OWL-ViT B/32 int8 and SAM 2.1 hiera-tiny int8, real-size random weights
exported once by the exporters into ``~/.cache/fieldmark/bench-packs/`` (the same cache as
bench_segmenter / bench_detector; exporting takes minutes the first time).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SEG_DEFAULT = "sam2.1-hiera-tiny"   # bench_segmenter variant; int8 pack
DET_DEFAULT = "owlvit"              # bench_detector family; int8 pack
Row = dict[str, Any]


def row(name: str, unit: str, samples: list[float], *, higher_is_better: bool = False,
        baseline: float | None = None, baseline_name: str | None = None,
        ratio: float | None = None, note: str = "", **extra: Any) -> Row:
    xs = np.asarray(samples, dtype=float)
    p50 = float(np.percentile(xs, 50))
    p95 = float(np.percentile(xs, 5 if higher_is_better else 95))
    return {"name": name, "unit": unit, "p50": p50, "p95": p95, "n": len(samples),
            "baseline": baseline, "baseline_name": baseline_name, "ratio": ratio,
            "note": note, "extra": extra}


def empty_row(name: str, unit: str, note: str) -> Row:
    return {"name": name, "unit": unit, "p50": None, "p95": None, "n": 0, "baseline": None,
            "baseline_name": None, "ratio": None, "note": note, "extra": {}}


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"fieldmark-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def seg_pack_path() -> Path:
    import bench_segmenter

    return Path(bench_segmenter.get_pack(SEG_DEFAULT, True).root)


def det_pack_path() -> Path:
    import bench_detector

    return Path(bench_detector.get_pack(DET_DEFAULT, True).root)


# -- AI through the app's API (the bridge minus Qt) -------------------------------------------

def m_click(quick: bool, tiny: bool) -> list[Row]:
    import bench_ai

    n = 20 if quick else 100
    with workdir("click") as root:
        r = bench_ai.bench_click(root, seg_pack_path(), n, stages=True)
    st = r.get("stages", {})
    return [row("click", "ms", r["times_ms"],
                note=f"SAM 2.1 hiera-tiny int8 (default), Api.call + job, 1600x1200, {n} clicks; "
                "blob-shaped random weights (one part per click, like a real checkpoint); "
                "extra.stages_p50_ms: where a click's time goes",
                first_encode_s=r["first_encode_s"],
                stages_p50_ms={k: round(v["p50_ms"], 2) for k, v in st.items() if k != "mask"},
                mask=st.get("mask"))]


def m_first_mask(quick: bool, tiny: bool) -> list[Row]:
    """New image -> first mask, as the page does it: ``segment.prepare`` then ``segment.click``.

    ``cold``: an image nobody encoded (decode + encoder + decoder + polygons). ``prefetched``:
    the next image after one the person worked on, once the background pre-encoding of it has
    reported ``encode.ready`` (what a labeler stepping through a folder gets).
    """
    import bench_ai

    n = 3 if quick else 6
    with workdir("first-mask") as root:
        h = bench_ai.Harness(root, 2 * n + 1, (1200, 1600))
        ready: set[int] = set()
        cond = threading.Condition()

        def on_event(name: str, payload: Any) -> None:
            if name == "encode.ready":
                with cond:
                    ready.add(payload["image_id"])
                    cond.notify_all()

        h.api.listeners.append(on_event)

        def first_mask(image: int) -> float:
            t = time.perf_counter()
            h.job("segment.prepare", {"image_id": image})
            h.job("segment.click", {"image_id": image, "points": [[800.0, 600.0, 1]]})
            return (time.perf_counter() - t) * 1000

        try:
            h.install(seg_pack_path())
            cold_ids, warm_ids = h.images[:n], h.images[n:]
            first_mask(h.images[-1])  # session creation is not "a new image"
            # Last to first: the prefetch after each image only finds images already encoded.
            cold = [first_mask(i) for i in reversed(cold_ids)]
            first_mask(warm_ids[0])
            warm = []
            for i in warm_ids[1:-1]:
                with cond:
                    if not cond.wait_for(lambda i=i: i in ready, 600):
                        raise RuntimeError(f"image {i} was never pre-encoded")
                warm.append(first_mask(i))
        finally:
            h.close()
    note = "SAM 2.1 hiera-tiny int8 (default), 1600x1200 JPEG, segment.prepare + segment.click"
    return [row("first_mask_cold", "ms", cold, note=f"{note}; image never encoded"),
            row("first_mask_prefetched", "ms", warm,
                note=f"{note}; next image after encode.ready from the background pre-encoding")]


def m_rescore(quick: bool, tiny: bool) -> list[Row]:
    import bench_ai

    n = 30 if quick else 100
    with workdir("rescore") as root:
        r = bench_ai.bench_rescore(root, det_pack_path(), n)
    note = "OWL-ViT B/32 int8 (default), Api.call detect.rescore on a cached embedding"
    return [row("rescore_threshold", "ms", r["threshold_ms"], note=f"{note}; threshold change",
                proposals_mean=r["proposals_mean"], encoder_runs=r["encoder_runs"]),
            row("rescore_prompt", "ms", r["new_phrase_ms"],
                note=f"{note}; a phrase never seen (text encoder + head)")]


def m_batch(quick: bool, tiny: bool) -> list[Row]:
    import bench_ai

    n, reps = (6, 2) if quick else (20, 5)
    with workdir("batch") as root:
        r = bench_ai.bench_batch(root, det_pack_path(), n, (768, 1024), reps)
    bound = float(np.median(r["encoder_only_img_s"]))
    return [row("batch_throughput", "img/s", r["pipeline_img_s"], higher_is_better=True,
                baseline=bound, baseline_name="encode_image alone on decoded images",
                ratio=r["ratio_median"],
                note=f"OWL-ViT B/32 int8 (default), runs.start over {n} images 1024x768, "
                f"{reps} alternated reps; ratio = median of per-rep pipeline/bound",
                failed=r["failed"], bound_img_s=r["encoder_only_img_s"])]


# -- model encoders vs transformers PyTorch ----------------------------------------------------

def m_segmenter_encode(quick: bool, tiny: bool) -> list[Row]:
    import bench_segmenter as bs

    from backend.models.runtime import default_threads

    threads = default_threads()
    reps, treps = (3, 2) if quick else (6, 4)
    image = bs.photo()
    ours = bs.ours(SEG_DEFAULT, True, image, reps, 2, threads)
    torch = bs.torch_side(SEG_DEFAULT, True, image, treps, 1, threads)
    base = float(np.median(torch["encode_ms"]))
    enc = float(np.median(ours["encode_ms"]))
    return [row("segmenter_encode", "ms", ours["encode_ms"], baseline=base,
                baseline_name="torch get_image_embeddings (dynamic int8, same weights)",
                ratio=base / enc,
                note=f"SAM 2.1 hiera-tiny int8 (default), 1600x1200, preprocessing included "
                f"(torch gets prepared pixels); {threads} threads",
                first_encode_ms=ours["first_encode_ms"])]


def m_detector_encode(quick: bool, tiny: bool) -> list[Row]:
    import bench_detector as bd
    import torch

    from backend.models.detector import Detector
    from backend.models.owl_preprocess import pixel_values
    from backend.models.runtime import default_threads
    from build_scripts.exporters import owl

    threads = default_threads()
    torch.set_num_threads(threads)
    reps = 2 if quick else 6
    image = bd.photo()
    variants = ("int8",) if quick else ("int8", "fp32")
    packs = {v: bd.get_pack(DET_DEFAULT, quantize=v == "int8") for v in variants}
    dets = {v: Detector(p, threads=threads) for v, p in packs.items()}
    pixels = torch.from_numpy(pixel_values(image, packs[variants[0]].preprocessing))
    wrapper = owl.ImageEncoder(owl.build_random(DET_DEFAULT, "full", bd.SEED, vocab_size=49408)).eval()

    def torch_image() -> Any:
        with torch.no_grad():
            return wrapper(pixels)

    fns: dict[str, Callable[[], Any]] = {v: partial(d.encode_image, image) for v, d in dets.items()}
    fns["torch"] = torch_image
    times = bd.round_robin(fns, reps)
    base = float(np.median(times["torch"]))
    rows = []
    for v in variants:
        name = "detector_encode" if v == "int8" else "detector_encode_fp32"
        rows.append(row(name, "ms", times[v], baseline=base,
                        baseline_name="torch fp32 image encoder (transformers modules, same weights)",
                        ratio=base / float(np.median(times[v])),
                        note=f"OWL-ViT B/32 {v}{' (default)' if v == 'int8' else ''} @768, "
                        "preprocessing included (torch gets prepared pixels), round-robin"
                        + ("; fp32 pack skipped in --quick" if quick else "")))
    return rows


# -- the real page ------------------------------------------------------------------------------

def _ui() -> Any:
    with contextlib.redirect_stdout(sys.stderr):
        import bench_ui
    return bench_ui


def m_open_folder(quick: bool, tiny: bool) -> list[Row]:
    bench_ui = _ui()
    from backend.gui.app import make_application

    n = 200 if tiny else 10_000
    trials = 2 if quick else 4
    app = make_application([sys.argv[0]])
    try:
        with contextlib.redirect_stdout(sys.stderr):
            runs = bench_ui.bench_open(n, trials)
    finally:
        del app
        shutil.rmtree(bench_ui._TMP, ignore_errors=True)  # noqa: SLF001
    first, again = runs[0], runs[1:]
    note = f"{n:,} JPEGs, real page (offscreen): open_project call -> list rows in a frame"
    return [row("open_folder_first", "ms", [first["rows_ms"]], note=f"{note}; no .fieldmark yet",
                first_image_ms=first["image_ms"], probe_ms=first["probe_ms"],
                probe_gap_p95_ms=first["gap_p95_ms"], sized_down=tiny),
            row("open_folder_reopen", "ms", [r["rows_ms"] for r in again], note=f"{note}; reopen",
                first_image_ms=[r["image_ms"] for r in again], sized_down=tiny)]


def m_frame_time(quick: bool, tiny: bool) -> list[Row]:
    bench_ui = _ui()
    from backend.gui.app import make_application

    frames = 120 if quick else 240
    modes = ("pan+zoom",) if quick else bench_ui.MODES
    app = make_application([sys.argv[0]])
    try:
        with contextlib.redirect_stdout(sys.stderr):
            runs = bench_ui.bench_canvas(2000, frames, modes)
    finally:
        del app
        shutil.rmtree(bench_ui._TMP, ignore_errors=True)  # noqa: SLF001
    out = []
    for r in runs:
        mode = r["mode"].replace("+", "_")
        name = f"frame_time_{mode}{'_raster' if r['raster'] else ''}"
        x = row(name, "ms", [r["p50_ms"]],
                note=f"2,000 polygons, {r['mode']}, canvas draw time per frame"
                f"{' with forced rasterization' if r['raster'] else ''}, {r['frames']} frames"
                + ("; only pan+zoom in --quick" if quick else ""),
                drawn=r["drawn"], raf_gap_p50_ms=r["gap_p50_ms"], raf_gap_p95_ms=r["gap_p95_ms"],
                raf_gap_max_ms=r["gap_max_ms"])
        x.update(p95=r["p95_ms"], n=r["frames"])
        out.append(x)
    return out


# -- export ---------------------------------------------------------------------------------------

EXPORT_CACHE = Path.home() / ".cache" / "fieldmark" / "bench-export"


def m_coco_export(quick: bool, tiny: bool) -> list[Row]:
    import bench_export

    n_images, n_shapes = (200, 2000) if tiny else (10_000, 100_000)
    reps = 2 if quick else 5
    with workdir("export") as tmp:
        # The 10k project takes ~45 s to build: kept between runs (a tiny one is not).
        folder = (tmp if tiny else EXPORT_CACHE) / f"project-{n_images}-{n_shapes}"
        built = 0.0
        for attempt in (0, 1):
            if not (folder / ".fieldmark").exists():
                folder.mkdir(parents=True, exist_ok=True)
                built = bench_export.build(folder, n_images, n_shapes, 0.1)
            try:
                runs = [bench_export.run_export(folder, tmp / "out", "polygon") for _ in range(reps)]
                break
            except Exception:
                if attempt or tiny:
                    raise
                # A cached project from an older store schema: build it again.
                shutil.rmtree(folder, ignore_errors=True)
        summary = runs[-1][2]
        size = (summary.out / "annotations.json").stat().st_size
    return [row("coco_export", "s", [w for w, _, _ in runs],
                note=f"{summary.images:,} images / {summary.shapes:,} shapes (10% masks), "
                "polygon segmentation, export_project end to end",
                images=summary.images, shapes=summary.shapes, cpu_s=[c for _, c, _ in runs],
                json_mb=round(size / 1e6, 1), build_s=round(built, 1), sized_down=tiny)]


# -- the frozen app -------------------------------------------------------------------------------

def m_frozen(quick: bool, tiny: bool) -> list[Row]:
    from build_scripts import build_config as bc
    from build_scripts import build_report as br
    from build_scripts import build_verify as bv
    from build_scripts.build_common import tree_size

    dist = ROOT / "dist"
    runs = 2 if quick else 5
    onefile = dist / ("fieldmark" + bc.exe_suffix())
    onedir = dist / "fieldmark-onedir"
    rows: list[Row] = []
    if onefile.is_file():
        listing = bv.read_bundle(onefile, onefile.name)
        packs = sum(listing.packed.get(n) or s for n, s in listing.files.items() if n.startswith("packs/"))
        total = tree_size(onefile)
        rows.append(row("frozen_onefile_size", "MB", [(total - packs) / 1e6],
                        note=f"{onefile.name} on disk minus bundled packs",
                        total_mb=total / 1e6, packs_mb=packs / 1e6))
        s: dict[str, Any] = br.measure_startup(onefile, runs, "offscreen")
        rows.append(row("frozen_onefile_cold_start", "s", [r["to_ready_s"] for r in s["runs"]],
                        note=f"start to usable page (offscreen), {runs} runs, fresh data folder each, "
                        "the app already unpacked in the per-user cache (ADR 0011)",
                        first_s=s["first_s"], median_cpu_s=s["median_cpu_s"]))
        f: dict[str, Any] = br.measure_startup(onefile, runs, "offscreen", first_start=True)
        rows.append(row("frozen_onefile_first_start", "s", [r["to_ready_s"] for r in f["runs"]],
                        note="first start of a build: unpacks the app into the per-user cache, once",
                        median_cpu_s=f["median_cpu_s"]))
    else:
        rows += [empty_row("frozen_onefile_size", "MB", f"not built ({onefile} missing)"),
                 empty_row("frozen_onefile_cold_start", "s", f"not built ({onefile} missing)"),
                 empty_row("frozen_onefile_first_start", "s", f"not built ({onefile} missing)")]
    if onedir.is_dir():
        exe = br.executable(onedir)
        d: dict[str, Any] = br.measure_startup(exe, runs, "offscreen")
        rows.append(row("frozen_onedir_cold_start", "s", [r["to_ready_s"] for r in d["runs"]],
                        note=f"start to usable page (offscreen), {runs} runs",
                        first_s=d["first_s"], size_mb=tree_size(onedir) / 1e6))
    else:
        rows.append(empty_row("frozen_onedir_cold_start", "s", f"not built ({onedir} missing)"))
    return rows


# -- memory ---------------------------------------------------------------------------------------

def _rss_hwm_mb() -> float:
    """This process's resident-set high-water mark (VmHWM; ru_maxrss where /proc is absent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / (1024 * 1024) if sys.platform == "darwin" else kb / 1024


def m_peak_memory(quick: bool, tiny: bool) -> list[Row]:
    import bench_ai

    with workdir("memory") as root:
        h = bench_ai.Harness(root, 1, (1200, 1600))
        try:
            before = _rss_hwm_mb()
            h.install(seg_pack_path())
            h.install(det_pack_path())
            image = h.images[0]
            h.job("segment.prepare", {"image_id": image})
            for x, y in ((400.0, 300.0), (800.0, 600.0), (1200.0, 900.0)):
                h.job("segment.click", {"image_id": image, "points": [[x, y, 1]]})
            c = h.call("classes.add", {"name": "disc"})["id"]
            h.call("classes.set_prompts", {"id": c, "prompts": ["a round disc"], "threshold": 0.2})
            h.job("detect.image", {"image_id": image})
            h.call("detect.rescore", {"image_id": image})
            peak = _rss_hwm_mb()
        finally:
            h.close()
    return [row("peak_memory", "MB", [peak],
                note="RSS high-water of an Api process after loading and running both default "
                "packs (SAM 2.1 hiera-tiny int8 + OWL-ViT B/32 int8) on a 1600x1200 photo",
                before_models_mb=before, pid=os.getpid())]


# name -> (what it measures, function); the order is the table's order.
MEASURES: dict[str, tuple[str, Callable[[bool, bool], list[Row]]]] = {
    "click": ("click -> polygon through the bridge (Api.call + job), default segmenter", m_click),
    "segmenter_encode": ("default segmenter encode vs transformers PyTorch", m_segmenter_encode),
    "first_mask": ("new image -> first mask (cold, and pre-encoded in background)", m_first_mask),
    "rescore": ("prompt / threshold change -> re-scored proposals (cached embedding)", m_rescore),
    "detector_encode": ("default detector encode vs transformers PyTorch forward", m_detector_encode),
    "batch": ("batch auto-label throughput vs the encoder-only bound", m_batch),
    "open_folder": ("open a 10,000-image folder to a usable list (real page)", m_open_folder),
    "frame_time": ("2,000-shape frame time in the real page", m_frame_time),
    "coco_export": ("COCO export of 10,000 images / 100,000 shapes", m_coco_export),
    "frozen": ("frozen onefile size + cold start, one-folder cold start (dist/)", m_frozen),
    "peak_memory": ("peak RSS with both default packs loaded and run", m_peak_memory),
}
