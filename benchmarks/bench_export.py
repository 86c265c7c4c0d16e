#!/usr/bin/env python3
"""COCO export of a large project (budget: 10,000 images / 100,000 shapes in <= 5 s).

    python benchmarks/bench_export.py [--images N] [--shapes N] [--masks F]
                                      [--segmentation polygon|rle] [--repeat K] [--profile]
                                      [--json] [--project DIR]

The project is built with the store's bulk paths (``sync_images``, ``update_image_info``,
``import_shapes``); image files need not exist because ``copy_images=False`` and the sizes are
recorded. Shapes: boxes, 12-vertex polygons and (fraction ``--masks``) blob masks, spread over
two classes, 640 x 480 images. Timed: ``export_project`` end to end (read the project, convert,
write JSON, move into place), best of ``--repeat`` runs, wall and CPU time (on a shared machine
the CPU time is what the export costs with a core to itself). ``--project DIR`` keeps the built
project there and reuses it on the next run (building takes ~45 s). Reported numbers only: never
asserted in tests.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.formats import ExportOptions, export_project  # noqa: E402
from backend.geometry import rle  # noqa: E402
from backend.store import Project  # noqa: E402

W, H = 640, 480


def _blob(rng: np.random.Generator) -> dict[str, Any]:
    """A filled ellipse somewhere on the image, as the store's mask geometry."""
    cx, cy = rng.uniform(60, W - 60), rng.uniform(60, H - 60)
    ax, ay = rng.uniform(8, 50), rng.uniform(8, 50)
    yy, xx = np.ogrid[:H, :W]
    mask = ((xx + 0.5 - cx) / ax) ** 2 + ((yy + 0.5 - cy) / ay) ** 2 <= 1
    enc = rle.encode(mask)
    x, y, w, h = rle.to_bbox(enc)
    return {"rle": enc, "bbox": [x, y, x + w, y + h]}


def build(folder: Path, n_images: int, n_shapes: int, mask_fraction: float) -> float:
    """Fill ``folder`` with a project; returns the seconds it took."""
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    with Project.open(folder) as project:
        project.sync_images([(f"site{i // 1000:02d}/img_{i:05d}.jpg", 1000, 0.0)
                             for i in range(n_images)])
        for im in project.images():
            project.update_image_info(im["id"], width=W, height=H)
        ids = [im["id"] for im in project.images()]
        blobs = [_blob(rng) for _ in range(64)]   # reused: RLE building is not what we time
        items = []
        for k in range(n_shapes):
            image_id = ids[k % len(ids)]
            cls = "moth" if k % 3 else "leaf litter"
            r = rng.random()
            if r < mask_fraction:
                items.append({"image_id": image_id, "class_name": cls, "kind": "mask",
                              "geometry": blobs[k % len(blobs)]})
            elif r < mask_fraction + (1 - mask_fraction) / 3:
                cx, cy, rad = rng.uniform(50, W - 50), rng.uniform(50, H - 50), rng.uniform(5, 40)
                t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
                ring = np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], 1).round(2)
                items.append({"image_id": image_id, "class_name": cls, "kind": "polygon",
                              "geometry": ring.tolist()})
            else:
                x0, y0 = rng.uniform(0, W - 60), rng.uniform(0, H - 60)
                items.append({"image_id": image_id, "class_name": cls, "kind": "box",
                              "geometry": [round(x0, 2), round(y0, 2),
                                           round(x0 + rng.uniform(5, 60), 2),
                                           round(y0 + rng.uniform(5, 60), 2)]})
        project.import_shapes(items, "Benchmark shapes")
    return time.perf_counter() - start


def run_export(folder: Path, out: Path, segmentation: str) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, summary): on a shared machine the CPU time
    shows what the export costs when it has a core to itself."""
    with Project.open(folder) as project:
        start, cpu = time.perf_counter(), time.process_time()
        summary = export_project(project, "coco", out,
                                 ExportOptions(copy_images=False, segmentation=segmentation),
                                 overwrite=True)
        return time.perf_counter() - start, time.process_time() - cpu, summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--shapes", type=int, default=100_000)
    p.add_argument("--masks", type=float, default=0.1, help="fraction of shapes that are masks")
    p.add_argument("--segmentation", choices=("polygon", "rle"), default="polygon")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--profile", action="store_true", help="print the top of a cProfile run")
    p.add_argument("--json", action="store_true")
    p.add_argument("--project", type=Path, metavar="DIR",
                   help="build the project here, or reuse the one already there")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="fieldmark-bench-export-") as tmp:
        folder = args.project or Path(tmp) / "project"
        folder.mkdir(parents=True, exist_ok=True)
        build_s = 0.0
        if not (folder / ".fieldmark").exists():
            build_s = build(folder, args.images, args.shapes, args.masks)
        times, cpus = [], []
        for _ in range(args.repeat):
            seconds, cpu, summary = run_export(folder, Path(tmp) / "out", args.segmentation)
            times.append(seconds)
            cpus.append(cpu)
        size = (summary.out / "annotations.json").stat().st_size
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            run_export(folder, Path(tmp) / "out", args.segmentation)
            prof.disable()
            pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    result = {"images": summary.images, "shapes": summary.shapes, "masks": args.masks,
              "segmentation": args.segmentation, "build_s": round(build_s, 2),
              "export_s": round(min(times), 3), "runs_s": [round(t, 3) for t in times],
              "cpu_s": round(min(cpus), 3),
              "json_mb": round(size / 1e6, 1), "budget_s": 5.0}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"COCO export ({args.segmentation}, {args.masks:.0%} masks) of {summary.images} "
              f"images / {summary.shapes} shapes: {result['export_s']:.2f} s best of "
              f"{args.repeat} (CPU {result['cpu_s']:.2f} s; budget 5 s); annotations.json "
              f"{result['json_mb']} MB; "
              f"project built in {build_s:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
