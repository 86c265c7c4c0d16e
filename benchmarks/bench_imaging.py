"""Imaging core timings on this machine (reported numbers, never asserted).

    python benchmarks/bench_imaging.py [--repeat N] [--big] [--json]

Cases: a 12 MP camera-trap JPEG with EXIF rotation (probe, full decode, display at full size and
reduced, thumbnail cold / warm), a 16-bit 3-channel 2048 x 2048 microscopy TIFF, and with
``--big`` a 30,000 x 30,000 tiled scan reduced to 1024 px (memory stays bounded).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.imaging import load_display, load_display_scaled, probe, read_array, thumbnail  # noqa: E402


def _timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "n": repeat}


def make_jpeg(path: Path) -> None:
    """4000 x 3000 (12 MP), textured like a photo (smooth scene + sensor noise), orientation 6."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:3000, 0:4000].astype(np.float32)
    base = 110 + 60 * np.sin(xx / 170) * np.cos(yy / 130)
    scene = np.stack([base, base * 0.9 + 20, base * 0.7], axis=2)
    scene += rng.normal(0, 6, scene.shape).astype(np.float32)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8)).save(path, quality=90, exif=exif.tobytes())


def make_tiff(path: Path) -> None:
    rng = np.random.default_rng(1)
    data = rng.poisson(200, (3, 2048, 2048)).astype(np.uint16)
    data[:, 500:900, 700:1300] += 3000
    tifffile.imwrite(path, data, photometric="minisblack", compression="zlib", metadata={"axes": "CYX"})


def make_big_scan(path: Path, size: int = 30_000, tile: int = 1024) -> None:
    """A tiny-on-disk tiled TIFF: every tile entry points at one shared deflated tile."""
    blob = zlib.compress(np.random.default_rng(2).integers(0, 255, (tile, tile), dtype=np.uint8).tobytes(), 1)
    n = (-(-size // tile)) ** 2
    entries = [(256, 4, 1, size), (257, 4, 1, size), (258, 3, 1, 8), (259, 3, 1, 8), (262, 3, 1, 1)]
    entries += [(277, 3, 1, 1), (322, 3, 1, tile), (323, 3, 1, tile)]
    ifd_size = 2 + 12 * (len(entries) + 2) + 4
    offsets_at = 8 + ifd_size
    counts_at = offsets_at + 4 * n
    blob_at = counts_at + 4 * n
    out = bytearray(b"II*\x00" + struct.pack("<IH", 8, len(entries) + 2))
    for tag, typ, count, value in entries:
        out += struct.pack("<HHII" if typ == 4 else "<HHIHxx", tag, typ, count, value)
    out += struct.pack("<HHII", 324, 4, n, offsets_at) + struct.pack("<HHII", 325, 4, n, counts_at)
    out += struct.pack("<I", 0) + struct.pack(f"<{n}I", *([blob_at] * n)) + struct.pack(f"<{n}I", *([len(blob)] * n))
    path.write_bytes(bytes(out + blob))


def run(repeat: int, big: bool) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        jpg, tif = tmp / "trap_12mp.jpg", tmp / "cells_2k.tif"
        make_jpeg(jpg)
        make_tiff(tif)
        cache = tmp / "thumbs"

        for label, path in (("jpeg12mp", jpg), ("tiff16_3ch_2k", tif)):
            results[f"{label}.probe"] = _timed(lambda p=path: probe(p), repeat * 20)
            results[f"{label}.read_array"] = _timed(lambda p=path: read_array(p), repeat)
            results[f"{label}.load_display"] = _timed(lambda p=path: load_display(p), repeat)
            results[f"{label}.load_display_max2048"] = _timed(lambda p=path: load_display(p, max_side=2048), repeat)
            results[f"{label}.load_display_max1024"] = _timed(lambda p=path: load_display(p, max_side=1024), repeat)

            def cold(p: Path = path) -> None:
                shutil.rmtree(cache, ignore_errors=True)
                thumbnail(p, cache)

            results[f"{label}.thumbnail_cold"] = _timed(cold, repeat)
            thumbnail(path, cache)
            results[f"{label}.thumbnail_warm"] = _timed(lambda p=path: thumbnail(p, cache), repeat * 20)
        results["jpeg12mp.file_mb"] = {"value": jpg.stat().st_size / 1e6}

        if big:
            scan = tmp / "scan_30k.tif"
            make_big_scan(scan)
            results["scan30k.probe"] = _timed(lambda: probe(scan), repeat * 5)
            results["scan30k.load_display_max1024"] = _timed(lambda: load_display_scaled(scan, max_side=1024), 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case (probe and warm thumbnails x20)")
    parser.add_argument("--big", action="store_true", help="also time a 30,000 x 30,000 tiled scan (a few seconds)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    results = run(args.repeat, args.big)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, r in results.items():
        if "value" in r:
            print(f"{name:40s} {r['value']:10.2f}")
        else:
            print(f"{name:40s} {r['median_ms']:10.2f} ms (min {r['min_ms']:.2f}, n={r['n']})")


if __name__ == "__main__":
    main()
