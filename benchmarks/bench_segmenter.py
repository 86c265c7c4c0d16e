#!/usr/bin/env python3
"""Segmenter timings: our ONNX encoder / decoder + numpy post-processing vs transformers PyTorch.

    python benchmarks/bench_segmenter.py [--quick] [--family sam|sam2] [--variant NAME] [--json]

Real-size random-weight models (same FLOPs as the released checkpoints): SAM ViT-B, SlimSAM-50
and SlimSAM-77 (ViT-B pruned to 384 / 168 wide, MLP 1536 / 696), and SAM 2.1 hiera-tiny when
the SAM2 exporter and runtime exist. The weights are blob-shaped by the exporters
(``_shape_blob_weights``), so a click traces a real-looking mask, not speckle. Packs are
exported once (fp32 and dynamic int8) into ``~/.cache/fieldmark/bench-packs/`` (``REVISION``
names a new cache entry when an exporter's weights change); torch rebuilds the same weights from the seed, and is
timed in fp32 and with ``torch.ao.quantization.quantize_dynamic`` (int8 Linear layers).
Both sides use the same number of threads (``FIELDMARK_THREADS`` or all cores we may use).

Stages, on a 1600 x 1200 photo:
``encode``  ours: preprocessing + image encoder graph; torch: ``get_image_embeddings``
            (pixel values prepared beforehand, so torch is not charged for preprocessing)
``click``   ours: ``predict_polygons`` (decoder + window upscale + polygon tracing), one new
            click each time; torch: model forward on the cached embeddings +
            ``post_process_masks`` to a full-size mask (no polygons)
``decoder`` ours: the decoder graph alone
Reported numbers only: never asserted in tests (the budget is in ARCHITECTURE.md).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.models.pack import PackError, load_pack  # noqa: E402
from backend.models.runtime import default_threads  # noqa: E402
from backend.models.segmenter import load_segmenter  # noqa: E402
from benchmarks.timing import pct, timed

CACHE = Path.home() / ".cache" / "fieldmark" / "bench-packs"
SEED = 0
# name -> (family, random kind of that family's exporter)
VARIANTS = {"sam-vit-b": ("sam", "full"), "slimsam-50": ("sam", "slimsam-50"),
            "slimsam-77": ("sam", "slimsam-77"), "sam2.1-hiera-tiny": ("sam2", "full")}
# Bumped when an exporter's random weights change, so a stale cached pack is not reused:
# SAM 2 packs before "-shaped" had unshaped weights (speckle masks, thousands of parts).
REVISION = {"sam2.1-hiera-tiny": "-shaped"}


def photo(h: int = 1200, w: int = 1600) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 255, yy / h * 255, 128 + 100 * np.sin(xx / 37) * np.cos(yy / 23)], -1)
    return np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)


def available(family: str) -> bool:
    return all(importlib.util.find_spec(m) is not None
               for m in (f"build_scripts.exporters.{family}", f"backend.models.{family}"))


def get_pack(name: str, quantize: bool) -> Any:
    family, kind = VARIANTS[name]
    out = CACHE / f"{name}{'-int8' if quantize else ''}-seed{SEED}{REVISION.get(name, '')}"
    try:
        return load_pack(out, verify=False)
    except PackError:
        from build_scripts.exporters import EXPORTERS

        print(f"exporting {out.name} (once; cached) ...", file=sys.stderr, flush=True)
        return EXPORTERS[family](family=family, checkpoint=None, random=kind, out=out,
                                 quantize=quantize, seed=SEED, pack_id=None, version="0.0.0")


def clicks(h: int, w: int, n: int) -> list[tuple[float, float, int]]:
    rng = np.random.default_rng(1)
    return [(float(rng.uniform(0.1, 0.9) * w), float(rng.uniform(0.1, 0.9) * h), 1)
            for _ in range(n)]


def ours(name: str, quantize: bool, image: np.ndarray, reps: int, n_clicks: int,
         threads: int) -> dict[str, Any]:
    seg = load_segmenter(get_pack(name, quantize), threads=threads)
    t = time.perf_counter()
    enc = seg.encode_image(image)  # session creation + first run
    first = (time.perf_counter() - t) * 1000
    encode = timed(lambda: seg.encode_image(image), reps, warmup=0)
    h, w = image.shape[:2]
    pts = iter(clicks(h, w, n_clicks + 1))
    click = timed(lambda: seg.predict_polygons(enc, [next(pts)]), n_clicks)
    dec = seg._session("decoder")  # noqa: SLF001 — the bare graph, for the breakdown
    emb = enc.arrays
    feeds = {**{k: v for k, v in emb.items()},
             "point_coords": np.array([[[500.0, 400.0], [0.0, 0.0]]], np.float32),
             "point_labels": np.array([[1.0, -1.0]], np.float32),
             "mask_input": np.zeros((1, 1, 256, 256), np.float32),
             "has_mask_input": np.zeros(1, np.float32)}
    feeds = {k: v for k, v in feeds.items() if k in dec.input_names}
    decoder = timed(lambda: dec.run(feeds), n_clicks)
    seg.unload()
    return {"first_encode_ms": first, "encode_ms": encode, "click_ms": click, "decoder_ms": decoder}


def torch_side(name: str, quantize: bool, image: np.ndarray, reps: int, n_clicks: int,
               threads: int) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F  # noqa: N812

    torch.set_num_threads(threads)
    family, kind = VARIANTS[name]
    exporter = importlib.import_module(f"build_scripts.exporters.{family}")
    eager = exporter.build_random_model(kind, SEED)  # eager attention: what we export
    config = eager.config
    config._attn_implementation = "sdpa"  # torch's default, its fastest path on CPU
    model = type(eager)(config).eval()
    model.load_state_dict(eager.state_dict())
    del eager
    if quantize:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    h, w = image.shape[:2]
    seg_pack = get_pack(name, False)
    from backend.models.sam import preprocess

    if family == "sam":
        spec = seg_pack.preprocessing
        tr = load_segmenter(seg_pack).transform((h, w))
        pixels = torch.from_numpy(preprocess(image, tr, spec["rescale"],
                                             np.asarray(spec["mean"], np.float32),
                                             np.asarray(spec["std"], np.float32)))
        rh, rw = tr.resized_size
    else:
        pixels, rh, rw = torch.zeros(1, 3, 1024, 1024), 1024, 1024
    with torch.no_grad():
        encode = timed(lambda: model.get_image_embeddings(pixels), reps)
        emb = model.get_image_embeddings(pixels)
        pts = iter(clicks(h, w, n_clicks + 1))

        def click() -> np.ndarray:
            x, y, _ = next(pts)
            out = model(image_embeddings=emb, multimask_output=True,
                        input_points=torch.tensor([[[[x * rw / w, y * rh / h]]]]),
                        input_labels=torch.tensor([[[1]]]))
            best = int(out.iou_scores[0, 0].argmax())
            low = out.pred_masks[0, :, best:best + 1]
            if family == "sam":  # SamProcessor.post_process_masks
                up = F.interpolate(low, (1024, 1024), mode="bilinear", align_corners=False)
                up = up[..., :rh, :rw]
            else:
                up = low
            return (F.interpolate(up, (h, w), mode="bilinear", align_corners=False) > 0).numpy()

        click_ms = timed(click, n_clicks)
    return {"encode_ms": encode, "click_ms": click_ms}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 encode, 8 clicks, fp32 only")
    p.add_argument("--family", choices=("sam", "sam2"), help="only this family")
    p.add_argument("--variant", choices=sorted(VARIANTS), action="append", help="only these")
    p.add_argument("--no-torch", action="store_true", help="skip the transformers side")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    threads = default_threads()
    reps, n_clicks = (1, 8) if args.quick else (3, 30)
    image = photo()
    rows: list[dict[str, Any]] = []
    for name, (family, _) in VARIANTS.items():
        if (args.family and family != args.family) or (args.variant and name not in args.variant):
            continue
        if not available(family):
            print(f"skip {name}: no {family} exporter/runtime in this checkout", file=sys.stderr)
            continue
        for quantize in (False,) if args.quick else (False, True):
            row: dict[str, Any] = {"variant": name, "precision": "int8" if quantize else "fp32"}
            row["ours"] = ours(name, quantize, image, reps, n_clicks, threads)
            if not args.no_torch:
                row["torch"] = torch_side(name, quantize, image, reps, n_clicks, threads)
            rows.append(row)
            print(_line(row), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"threads": threads, "image": list(image.shape[:2]), "rows": rows}))
    else:
        print(f"threads={threads}, image {image.shape[1]}x{image.shape[0]}; ms, p50 (p95 for clicks)")
        print(f"{'variant':<18} {'prec':<5} {'encode':>8} {'torch':>8} {'x':>5}   "
              f"{'click p50/p95':>15} {'torch p50/p95':>15} {'x':>5}  {'decoder':>7}")
        for row in rows:
            print(_line(row))
    return 0


def _line(row: dict[str, Any]) -> str:
    o, t = row["ours"], row.get("torch")
    enc, click = pct(o["encode_ms"], 50), o["click_ms"]
    s = f"{row['variant']:<18} {row['precision']:<5} {enc:8.0f} "
    if t:
        tenc = pct(t["encode_ms"], 50)
        s += f"{tenc:8.0f} {tenc / enc:5.2f}   "
    else:
        s += f"{'-':>8} {'-':>5}   "
    s += f"{pct(click, 50):7.1f}/{pct(click, 95):7.1f} "
    if t:
        tc = t["click_ms"]
        s += f"{pct(tc, 50):7.1f}/{pct(tc, 95):7.1f} {pct(tc, 50) / pct(click, 50):5.2f}  "
    else:
        s += f"{'-':>15} {'-':>5}  "
    return s + f"{pct(o['decoder_ms'], 50):7.1f}"


if __name__ == "__main__":
    raise SystemExit(main())
