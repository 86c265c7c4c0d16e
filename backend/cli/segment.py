"""``python main.py segment IMAGE --pack PACK --point X,Y[,1|0] ... [--box X0,Y0,X1,Y1]``.

Prompt a segmenter pack (SAM, SAM2, ... — any family ``load_segmenter`` knows) with clicks and/or
a box and print the mask as polygons and COCO RLE. Coordinates are pixels of the image as
displayed (EXIF applied), x right, y down; label 1 = object, 0 = background.

Output (``--json``)::

    {"score": float, "area": int, "bbox": [x0, y0, x1, y1],
     "polygons": [[[x, y], ...], ...]  (outer ring first, holes after, per part),
     "rle": {"size": [h, w], "counts": str}}

Exit codes: 0 done, 1 the image could not be read, 2 a usage or pack problem (bad --point /
--box, a point outside the image, a missing or damaged pack).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from backend.cli.models import open_pack
from backend.errors import FieldmarkError, ImageReadError, InvalidArgument, PackError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "segment", help="cut out an object from clicks or a box",
        description="Segment one object in an image with a segmenter pack (SAM or SAM2) from "
                    "positive / negative clicks and/or a box, and print its outline.",
        epilog="Example: segment photo.jpg --pack packs/sam --point 320,240 --point 400,260,0 "
               "--json")
    p.add_argument("image", type=Path, metavar="IMAGE", help="image file")
    p.add_argument("--pack", required=True, metavar="PACK",
                   help="segmenter pack folder or .zip, or the id of an installed pack")
    p.add_argument("--point", action="append", default=[], metavar="X,Y[,L]",
                   help="a click in image pixels; L = 1 object (default) or 0 background "
                        "(repeatable)")
    p.add_argument("--box", metavar="X0,Y0,X1,Y1", help="a box around the object, in pixels")
    p.add_argument("--tolerance", type=float, default=1.0, metavar="T",
                   help="polygon simplification in pixels (default 1; 0 = exact outline)")
    p.add_argument("--multimask", choices=("auto", "yes", "no"), default="auto",
                   help="pick the best of three candidate masks (auto: only for a lone click)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for the model")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def parse_point(text: str) -> tuple[float, float, int]:
    """``"12.5,40"`` -> (12.5, 40.0, 1); ``"12,40,0"`` -> (12.0, 40.0, 0)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        label = int(parts[2]) if len(parts) == 3 else 1
        if label not in (0, 1):
            raise ValueError
        return float(parts[0]), float(parts[1]), label
    except ValueError:
        raise InvalidArgument(f"--point {text!r} must be X,Y or X,Y,L with L 1 (object) or 0 "
                              "(background).", detail={"field": "point"}) from None


def parse_box(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise InvalidArgument(f"--box {text!r} must be four numbers X0,Y0,X1,Y1.",
                              detail={"field": "box"})
    return values


def segment(args: argparse.Namespace) -> dict[str, Any]:
    """Run the prompt; raise FieldmarkError subclasses for anything a user can get wrong."""
    from backend.geometry import rle
    from backend.geometry.masks import mask_to_polygons
    from backend.models.inputs import load_image
    from backend.models.segmenter import check_prompt, load_segmenter

    points = [parse_point(p) for p in args.point]
    box = parse_box(args.box) if args.box else None
    if not points and box is None:
        raise InvalidArgument("Give at least one --point or a --box.", detail={"field": "point"})
    if args.threads is not None and args.threads < 1:
        raise InvalidArgument(f"--threads must be at least 1, got {args.threads}.")
    if not args.tolerance >= 0:
        raise InvalidArgument(f"--tolerance must be >= 0 pixels, got {args.tolerance}.")
    pack = open_pack(args.pack)  # backend.cli.models: a folder, a .zip or an installed id
    if pack.task != "segmenter":
        raise PackError(f"Model pack '{pack.id}' is a {pack.task}; 'segment' needs a segmenter "
                        "pack (SAM or SAM2).", detail={"pack": str(pack.root)})
    image = load_image(args.image)
    check_prompt(image.size, points, box)  # before loading the model: fail fast
    seg = load_segmenter(pack, threads=args.threads)
    multimask = {"auto": None, "yes": True, "no": False}[args.multimask]
    enc = seg.encode_image(image.pixels, size=image.size)
    res = seg.predict(enc, points, box, multimask=multimask, clean=True)  # as the app shows it
    mask = res.mask
    return {"score": round(res.score, 6), "area": res.area, "bbox": res.bbox,
            "polygons": mask_to_polygons(mask, args.tolerance) if mask is not None else [],
            "rle": rle.encode(mask) if mask is not None else None}


def run(args: argparse.Namespace) -> int:
    try:
        result = segment(args)
    except ImageReadError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except FieldmarkError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        x0, y0, x1, y1 = result["bbox"]
        print(f"{args.image}: score {result['score']:.3f}, area {result['area']} px, "
              f"box [{x0:g}, {y0:g}, {x1:g}, {y1:g}], {len(result['polygons'])} polygon(s)")
    return 0
