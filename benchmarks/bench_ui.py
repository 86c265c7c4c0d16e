"""UI timings in the real page (QtWebEngine, offscreen): a 10,000-image folder and 2,000 polygons.

    python benchmarks/bench_ui.py [--images 10000] [--polygons 2000] [--frames 240] [--skip-open] [--skip-canvas]

(a) Open a folder of ``--images`` tiny real JPEGs (64 x 48, generated once into
    ~/.cache/fieldmark/bench-10k): a window on the welcome screen, then ``api.open_project`` is
    called; reported is the wall time from that call until the page's image list has rows in an
    animation frame (epoch clocks of Python and the page, same machine), for a first open
    (no ``.fieldmark`` yet) and for reopening. Also: the synchronous part (the call itself), until
    the first image is on the canvas, and the background header probe with the page's largest
    frame gap while it runs (the page re-reads the list as batches arrive).
(b) One 1600 x 1200 image with ``--polygons`` random ~20-vertex polygons (``add_shapes``): pan,
    zoom and both for ``--frames`` animation frames, driven from a rAF loop in the page. Reported:
    the canvas's own frame stats (p50/p95 draw ms, with and without forced rasterization) and,
    independently, rAF-to-rAF intervals measured in the page.

Numbers only, no assertions (performance is measured, never asserted).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
_TMP = Path(tempfile.mkdtemp(prefix="fieldmark-bench-ui-"))
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["FIELDMARK_DATA_DIR"] = str(_TMP / "data")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from backend.api.service import Api  # noqa: E402
from backend.api.settings import Settings  # noqa: E402
from backend.gui.app import make_application  # noqa: E402
from backend.gui.waiting import spin, wait_until  # noqa: E402
from tests.e2e.harness import Driver, launch  # noqa: E402

CACHE = Path.home() / ".cache" / "fieldmark" / "bench-10k"

# Records, in an animation frame, the first moment (epoch ms) the list has rows and the first
# image is on the canvas; also every frame time until stopped (frame gaps while the probe runs).
WATCH = """(() => {
  const b = window.__bench = {rows: null, image: null, frames: [], stop: false};
  const tick = () => {
    const now = performance.timeOrigin + performance.now();
    b.frames.push(now);
    if (b.rows === null && document.querySelector('#images .row')) b.rows = now;
    const s = window.fieldmark.state;
    if (b.image === null && s.current && !s.loading && window.fieldmark.canvas.stats.frames > 0
        && s.current.id === s.currentId) b.image = now;
    if (!b.stop) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  return true;
})()"""


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def ensure_folder(n: int) -> Path:
    """``n`` tiny real JPEGs, generated once (a marker file says the set is complete)."""
    folder = CACHE / f"images-{n}"
    marker = CACHE / f".complete-{n}"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    for i in range(n):
        img = (base.astype(np.int32) + i * 7) % 256
        Image.fromarray(img.astype(np.uint8)).save(folder / f"IMG_{i:05d}.jpg", quality=80)
    marker.write_text("ok\n", encoding="utf-8")
    print(f"generated {n} JPEGs in {folder} ({time.perf_counter() - t0:.1f} s, once)")
    return folder


def close(driver: Driver) -> None:
    problems = driver.close()
    if problems:
        print("  page problems:", *problems[:5], sep="\n    ")


def bench_open(n: int, trials: int) -> list[dict[str, Any]]:
    folder = ensure_folder(n)
    print(f"\n(a) open a folder of {n:,} images -> image list usable in the page")
    out = []
    for trial in range(trials):
        if trial == 0:
            shutil.rmtree(folder / ".fieldmark", ignore_errors=True)
        out.append(open_once(folder, "first open (no .fieldmark)" if trial == 0 else f"reopen #{trial}"))
    return out


def open_once(folder: Path, label: str) -> dict[str, Any]:
    """One open; returns ms from the ``open_project`` call: ``rows_ms`` (list usable),
    ``call_ms``, ``image_ms``, ``probe_ms`` (None when no probe ran) and the frame gaps
    (``gap_p50_ms``, ``gap_p95_ms``, ``gap_max_ms``) while the probe ran."""
    api = Api(Settings(_TMP / "data" / "settings.json"), demo_dir=_TMP / "demo")
    driver = launch(api, None)
    driver.js(WATCH)
    spin(100)
    t0 = time.time() * 1000
    api.open_project(folder)
    t_call = time.time() * 1000
    if not wait_until(lambda: driver.js("window.__bench.rows !== null && window.__bench.image !== null"), 60):
        print("  the list or the image never appeared")
    probe = api._probe_job
    t_probe = None
    if probe is not None and probe.future is not None:
        future = probe.future
        wait_until(future.done, 600)
        t_probe = time.time() * 1000
    spin(300)
    b = driver.js("(() => { window.__bench.stop = true; const b = window.__bench;"
                  " return {rows: b.rows, image: b.image, frames: b.frames}; })()")
    records = driver.js("window.fieldmark.state.images.length")
    gaps = [y - x for x, y in zip(b["frames"], b["frames"][1:], strict=False)
            if x >= t0 and (t_probe is None or y <= t_probe)]
    if b["rows"] is None or b["image"] is None:
        close(driver)
        api.close_project()
        raise RuntimeError(f"{label}: the image list or the first image never appeared in the page")
    result = {"label": label, "rows_ms": b["rows"] - t0, "call_ms": t_call - t0,
              "image_ms": b["image"] - t0, "records": records,
              "probe_ms": None if t_probe is None else t_probe - t0,
              "gap_p50_ms": pct(gaps, 50), "gap_p95_ms": pct(gaps, 95),
              "gap_max_ms": max(gaps, default=float("nan"))}
    print(f"  {label:<28} list rows after {b['rows'] - t0:7.0f} ms"
          f"  (open_project call {t_call - t0:6.0f} ms, first image {b['image'] - t0:7.0f} ms,"
          f" {records:,} records)")
    if t_probe is not None:
        print(f"  {'':<28} header probe done after {t_probe - t0:7.0f} ms;"
              f" frame gaps meanwhile p50 {pct(gaps, 50):.0f} ms, p95 {pct(gaps, 95):.0f} ms,"
              f" max {max(gaps, default=float('nan')):.0f} ms")
    close(driver)
    api.close_project()
    return result


def random_polygons(n: int, w: int, h: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        cx, cy = rng.uniform(30, w - 30), rng.uniform(30, h - 30)
        k = int(rng.integers(16, 25))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        r = rng.uniform(8, 30) * rng.uniform(0.6, 1.0, k)
        pts = np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], axis=1)
        pts = np.clip(pts, 0, [w - 1, h - 1])
        out.append({"kind": "polygon", "geometry": pts.round(2).tolist()})
    return out


DRIVE = """
const c = window.fieldmark.canvas;
const mode = %(mode)s, n = %(frames)d;
c.measureRaster = %(raster)s;
c.fit();
await new Promise((r) => setTimeout(r, 400));
c.resetStats();
const times = [];
await new Promise((done) => {
  let i = 0;
  const step = () => {
    times.push(performance.now());
    if (i >= n) { done(); return; }
    const phase = Math.floor(i / 60) %% 2 ? -1 : 1;
    if (mode !== 'zoom') c.panBy(6 * phase, 4 * phase);
    if (mode !== 'pan') c.zoomBy(phase > 0 ? 1.02 : 1 / 1.02);
    i += 1;
    requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
});
const stats = c.stats;
c.measureRaster = false;
const gaps = times.slice(1).map((t, k) => t - times[k]);
return {stats, gaps};
"""


MODES = ("pan", "zoom", "pan+zoom")


def bench_canvas(n_polygons: int, frames: int, modes: tuple[str, ...] = MODES,
                 rasters: tuple[bool, ...] = (False, True)) -> list[dict[str, Any]]:
    """Frame stats per (mode, raster): the canvas's own ``p50FrameMs`` / ``p95FrameMs`` (draw
    time of a frame) and the page's rAF-to-rAF intervals (``gap_*_ms``), all in ms."""
    folder = _TMP / "polygons"
    folder.mkdir()
    w, h = 1600, 1200
    yy, xx = np.mgrid[0:h, 0:w]
    Image.fromarray(np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8)).save(
        folder / "field.jpg", quality=85)
    api = Api(Settings(_TMP / "data" / "settings.json"), demo_dir=_TMP / "demo")
    api.open_project(folder)
    project = api.require_project()
    (image,) = project.images()
    t0 = time.perf_counter()
    project.add_shapes(image["id"], random_polygons(n_polygons, w, h))
    print(f"\n(b) {n_polygons:,} polygons of ~20 vertices on a {w} x {h} image"
          f" (add_shapes {1000 * (time.perf_counter() - t0):.0f} ms)")
    t0 = time.perf_counter()
    driver = launch(api, folder)
    drawn = driver.drawn_count()
    print(f"  window to first image with its shapes drawn: {time.perf_counter() - t0:.2f} s;"
          f" canvas holds {drawn:,} shapes")
    out = []
    for mode in modes:
        for raster in rasters:
            r = driver.run(DRIVE % {"mode": json.dumps(mode), "frames": frames,
                                    "raster": json.dumps(raster)}, timeout=300)
            s, gaps = r["stats"], r["gaps"]
            out.append({"mode": mode, "raster": raster, "drawn": drawn, "frames": s["frames"],
                        "p50_ms": s["p50FrameMs"], "p95_ms": s["p95FrameMs"],
                        "gap_p50_ms": statistics.median(gaps), "gap_p95_ms": pct(gaps, 95),
                        "gap_max_ms": max(gaps)})
            print(f"  {mode:<9} {'draw+raster' if raster else 'draw only  '}"
                  f"  canvas frame p50 {s['p50FrameMs']:6.2f} ms  p95 {s['p95FrameMs']:6.2f} ms"
                  f" ({s['frames']} frames) | rAF interval p50 {statistics.median(gaps):5.1f} ms"
                  f"  p95 {pct(gaps, 95):5.1f} ms  max {max(gaps):5.1f} ms")
    close(driver)
    api.close_project()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--trials", type=int, default=3, help="opens of the folder (the first is cold)")
    ap.add_argument("--polygons", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--skip-open", action="store_true")
    ap.add_argument("--skip-canvas", action="store_true")
    args = ap.parse_args()
    app = make_application([sys.argv[0]])
    try:
        if not args.skip_open:
            bench_open(args.images, args.trials)
        if not args.skip_canvas:
            bench_canvas(args.polygons, args.frames)
    finally:
        del app
        shutil.rmtree(_TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
