"""``python main.py export|import PROJECT ...``: datasets in and out of a project.

Both commands open the project as the app does (taking its lock, so they refuse while the app
has it open) and re-scan its folder first, so images added since it was last opened count.

Exit codes: 0 everything was exported/imported; 1 done, but some shapes or images were skipped
(each is listed with its reason); 2 nothing was written (bad arguments, a locked or unreadable
project, a malformed input file, an output that already exists).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from backend.errors import FieldmarkError

_EXIT_HELP = ("exit codes: 0 done, nothing skipped; 1 done, some shapes or images skipped "
              "(listed with the reason); 2 error, nothing written")


def _formats() -> list[str]:
    from backend.formats import FORMATS

    return list(FORMATS)


def add_parser(subparsers: Any) -> None:
    """Register both ``export`` and ``import`` (main.py builds a parser from one module)."""
    formats = _formats()
    p = subparsers.add_parser(
        "export", help="write the project's labels as a training dataset",
        description="Export a project's labels (accepted shapes unless --include-pending) as "
                    "a dataset: " + ", ".join(formats) + ". Shapes a format cannot hold are "
                    "listed with the reason, never dropped silently.",
        epilog=_EXIT_HELP + ". Example: export ~/moths --format yolo --out ~/moths-yolo "
               "--split 0.8,0.1,0.1 --resize 640")
    p.add_argument("project", type=Path, metavar="PROJECT", help="the project folder")
    p.add_argument("--format", required=True, choices=formats, metavar="FORMAT",
                   help="one of: " + ", ".join(formats))
    p.add_argument("--out", required=True, type=Path, metavar="PATH",
                   help="output folder (or .zip file; --resize always writes a .zip)")
    p.add_argument("--split", metavar="F,F[,F]",
                   help="train,val[,test] fractions, e.g. 0.8,0.1,0.1 (seeded, stratified by "
                        "class)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    p.add_argument("--resize", type=int, metavar="PX",
                   help="scale every image so its longest side is PX, with coordinates to "
                        "match, into a .zip")
    p.add_argument("--include-pending", action="store_true",
                   help="also export model proposals nobody has accepted yet")
    p.add_argument("--no-images", dest="copy_images", action="store_false",
                   help="write labels only, do not copy the images")
    p.add_argument("--no-unlabeled", dest="include_unlabeled", action="store_false",
                   help="leave out images without exported shapes")
    p.add_argument("--segmentation", choices=("polygon", "rle"), default="polygon",
                   help="COCO masks as polygons (default; masks with holes become RLE) or RLE")
    p.add_argument("--overwrite", action="store_true",
                   help="replace PATH if it already exists")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = subparsers.add_parser(
        "import", help="add labels from a dataset to the project",
        description="Import annotations (COCO, YOLO, ...) into a project: all or nothing, as "
                    "one undo step. Images are matched by relative path, then by unique file "
                    "name; classes are created as needed.",
        epilog=_EXIT_HELP + ". Example: import ~/moths --format coco --from "
               "~/moths-coco/annotations.json")
    p.add_argument("project", type=Path, metavar="PROJECT", help="the project folder")
    p.add_argument("--format", required=True, choices=formats, metavar="FORMAT",
                   help="one of: " + ", ".join(formats))
    p.add_argument("--from", dest="source", required=True, type=Path, metavar="PATH",
                   help="the annotation file or dataset folder")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


class TextProgress:
    """A one-line progress bar on a terminal; on a pipe, a line per phase (no flood)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0
        self.phase = ""
        self.drawn = False

    def __call__(self, done: int, total: int, message: str) -> None:
        phase = message.split(" ", 1)[0]
        if not self.tty:
            if phase != self.phase:
                self.phase = phase
                self.stream.write(f"{message if phase != 'Copying' else 'Copying images'}"
                                  f"{f' ({total})' if total > 1 else ''}...\n")
                self.stream.flush()
            return
        now = time.monotonic()
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        frac = done / total if total else 0.0
        bar = "#" * int(frac * 24)
        line = f"\r[{bar:<24}] {frac:4.0%} {message}"[:100]
        self.stream.write(line.ljust(101))
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\r" + " " * 101 + "\r")
            self.stream.flush()


def _open(folder: Path) -> Any:
    from backend.imaging import SUPPORTED_EXTENSIONS
    from backend.store import Project

    project = Project.open(folder)
    try:
        project.scan(SUPPORTED_EXTENSIONS)
    except BaseException:
        project.close()
        raise
    return project


def _print_skipped(skipped: list[dict[str, Any]], key: str, out: TextIO) -> None:
    for item in skipped[:50]:
        where = item.get(key) or ""
        shape = f" shape {item['shape_id']}" if item.get("shape_id") is not None else ""
        out.write(f"  skipped {where}{shape}: {item['reason']}\n")
    if len(skipped) > 50:
        out.write(f"  ... and {len(skipped) - 50} more (use --json for the full list)\n")


def _export(args: argparse.Namespace, progress: TextProgress) -> int:
    from backend.formats import ExportOptions, export_project
    from backend.formats.base import check_split

    options = ExportOptions(
        include_pending=args.include_pending, include_unlabeled=args.include_unlabeled,
        split=check_split(args.split) if args.split else None, seed=args.seed,
        resize=args.resize, copy_images=args.copy_images, segmentation=args.segmentation)
    with _open(args.project) as project:
        summary = export_project(project, args.format, args.out, options, progress,
                                 overwrite=args.overwrite)
    progress.finish()
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(f"Exported {summary.images} images and {summary.shapes} shapes as "
              f"{args.format} to {summary.out}")
        for note in summary.notes[:10]:
            print(f"  note: {note['image']} shape {note['shape_id']}: {note['note']}")
        _print_skipped(summary.skipped, "image", sys.stdout)
    return 1 if summary.skipped else 0


def _import(args: argparse.Namespace, progress: TextProgress) -> int:
    from backend.formats import import_project

    with _open(args.project) as project:
        result = import_project(project, args.format, args.source, progress)
    progress.finish()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        added = ", ".join(result.classes_added) or "none"
        print(f"Imported {result.shapes_added} shapes on {result.images_matched} images "
              f"from {args.source} (new classes: {added})")
        _print_skipped(result.skipped, "item", sys.stdout)
    return 1 if result.skipped else 0


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``export`` or ``import`` command; returns the exit code."""
    progress = TextProgress(sys.stderr)
    try:
        return _export(args, progress) if args.command == "export" else _import(args, progress)
    except FieldmarkError as exc:
        progress.finish()
        sys.stderr.write(f"error: {exc.message}\n")
        if getattr(args, "json", False):
            print(json.dumps({"error": exc.to_dict()}, indent=2, default=str))
        return 2
    except OSError as exc:
        progress.finish()
        sys.stderr.write(f"error: could not complete '{args.command}': {exc}. Check the paths "
                         "and that you may read and write them.\n")
        return 2
