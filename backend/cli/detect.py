"""``python main.py detect IMAGE... --pack PACK --prompt TEXT``: open-vocabulary detection.

Each image is encoded once and scored for every prompt. ``--prompt`` is a phrase (its own label)
or ``label=phrase;phrase`` (several phrases for one label; the label's score is the best
phrase's). Boxes are ``[x0, y0, x1, y1]`` in pixels of the image as displayed (EXIF applied).

Exit codes: 0 all images done, 1 some images could not be read (reported on stderr, the others
are still processed), 2 a usage or pack problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from backend.cli.models import open_pack
from backend.errors import FieldmarkError, InvalidArgument, PackError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "detect", help="find objects described by text in images",
        description="Find objects described by text prompts in one or more images with a "
                    "detector pack (OWL-ViT or OWLv2) and print their boxes.",
        epilog='Example: detect photo.jpg --pack packs/owlv2 --prompt "moth=moth;a photo of a '
               'moth" --prompt leaf --threshold 0.2 --json')
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files")
    p.add_argument("--pack", required=True, metavar="PACK",
                   help="detector pack folder or .zip, or the id of an installed pack")
    p.add_argument("--prompt", action="append", required=True, metavar="TEXT",
                   help="what to look for: 'phrase' or 'label=phrase;phrase' (repeatable)")
    p.add_argument("--threshold", type=float, default=0.1, metavar="T",
                   help="minimum score, 0..1 (default 0.1)")
    p.add_argument("--nms", type=float, default=0.5, metavar="IOU",
                   help="suppress same-label boxes overlapping more than this IoU (default 0.5; "
                        "1 keeps all)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for the model")
    p.add_argument("--json", action="store_true", help='print {"<image>": [detections]} as JSON')


def parse_prompts(values: list[str]) -> dict[str, list[str]]:
    """``["moth=a moth;moth", "leaf"]`` -> ``{"moth": ["a moth", "moth"], "leaf": ["leaf"]}``."""
    prompts: dict[str, list[str]] = {}
    for raw in values:
        label, sep, rest = raw.partition("=")
        phrases = [p.strip() for p in (rest if sep else raw).split(";") if p.strip()]
        label = label.strip() if sep else raw.strip()
        if not label or not phrases:
            raise InvalidArgument(f"--prompt {raw!r} needs text to look for, as 'phrase' or "
                                  "'label=phrase;phrase'.", detail={"field": "prompt"})
        prompts.setdefault(label, [])
        prompts[label] += [p for p in phrases if p not in prompts[label]]
    return prompts


def _table(path: Path, dets: list[dict[str, Any]]) -> str:
    lines = [f"{path}: {len(dets)} detection{'s' if len(dets) != 1 else ''}"]
    if dets:
        width = max(5, *(len(d["label"]) for d in dets))
        lines.append(f"  {'label':<{width}}  score   x0       y0       x1       y1")
        for d in dets:
            x0, y0, x1, y1 = d["box"]
            lines.append(f"  {d['label']:<{width}}  {d['score']:.3f}  {x0:7.1f}  {y0:7.1f}  "
                         f"{x1:7.1f}  {y1:7.1f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from backend.models.detector import load_detector
    from backend.models.inputs import load_image

    try:
        if not 0.0 <= args.threshold <= 1.0:
            raise InvalidArgument(f"--threshold must be between 0 and 1, got {args.threshold}.")
        if not 0.0 < args.nms <= 1.0:
            raise InvalidArgument(f"--nms must be above 0 and at most 1, got {args.nms}.")
        prompts = parse_prompts(args.prompt)
        detector = load_detector(open_pack(args.pack), threads=args.threads)
        detector.encode_text([p for ps in prompts.values() for p in ps])  # fail early on a bad pack
    except FieldmarkError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    results: dict[str, list[dict[str, Any]]] = {}
    failed = 0
    for path in args.images:
        try:
            img = load_image(path)
            enc = detector.encode_image(img.pixels, size=img.size)
        except PackError as exc:  # the pack, not the image: no point trying the others
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        except FieldmarkError as exc:
            failed += 1
            print(f"error: {exc.message}", file=sys.stderr)
            continue
        dets = detector.detect(enc, prompts, args.threshold,
                               nms_iou=None if args.nms >= 1.0 else args.nms)
        results[str(path)] = [{"label": d.label, "score": d.score, "box": d.box} for d in dets]
        if not args.json:
            print(_table(path, results[str(path)]))
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0
