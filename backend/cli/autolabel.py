"""``python main.py autolabel PROJECT --detector PACK --prompt CLASS=phrase;phrase ...``

The app's batch run without a window: each image of the project folder is encoded once, every
class is searched with its phrases, and the boxes are stored as ``pending`` proposals (review
them in the app). ``--segment`` turns each proposal into a polygon with the segmenter. The run
is recorded in the project: Ctrl-C pauses it after the current image, and ``--resume RUN``
continues it later (also after a crash or a kill) without processing any image twice. The
command that continues it is printed on stderr before the first image, so it is known even when
the process is killed without a word.

Exit codes: 0 every image done, 1 some images could not be read (listed; the others were
done), 2 a usage, pack or project problem (or ``--resume`` of a run that already finished),
130 paused by Ctrl-C (resumable).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from backend.errors import FieldmarkError, InvalidArgument

EXIT_PAUSED = 130


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "autolabel", help="propose labels for every image of a project (batch, resumable)",
        description="Run the detector over every image of a project folder and store its boxes "
                    "as pending proposals, to review in the app. Resumable: Ctrl-C pauses, "
                    "--resume RUN continues where it stopped.",
        epilog='Example: autolabel ~/moths --detector packs/owlv2 --prompt "moth=a moth;a '
               'photo of a moth" --prompt leaf --threshold 0.2 --segmenter packs/sam --segment')
    p.add_argument("project", type=Path, metavar="PROJECT", help="folder of images")
    p.add_argument("--detector", metavar="PACK",
                   help="detector pack folder or .zip, or the id of an installed pack")
    p.add_argument("--segmenter", metavar="PACK",
                   help="segmenter pack folder or .zip, or the id of an installed pack")
    p.add_argument("--prompt", action="append", default=[], metavar="CLASS=PHRASES",
                   help="a class and what to look for: 'class=phrase;phrase' or 'phrase' "
                        "(repeatable; classes are created when missing)")
    p.add_argument("--threshold", type=float, metavar="T",
                   help="minimum score 0..1 for the classes given (default: the class's own, "
                        "0.1 for a new class)")
    p.add_argument("--segment", action="store_true",
                   help="turn each proposal into a polygon with --segmenter")
    p.add_argument("--resume", type=int, metavar="RUN",
                   help="continue run RUN (its prompts and packs are reused)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for the models")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def _use_pack(ai: Any, spec: str, task: str) -> Any:
    path = Path(spec).expanduser()
    pack = ai.models.register(path) if path.exists() else ai.models.find(spec, task)
    if pack.task != task:
        raise InvalidArgument(f"'{spec}' is a {pack.task} pack; --{task} needs a {task} pack.")
    ai.models.activate(task, pack.source_tag)
    return pack


def _prepare_classes(project: Any, prompts: dict[str, list[str]],
                     threshold: float | None) -> set[int]:
    by_name = {c["name"]: c for c in project.classes()}
    ids = set()
    for name, phrases in prompts.items():
        cls = by_name.get(name) or project.add_class(name)
        thr = threshold if threshold is not None else cls["threshold"]
        project.set_class_prompts(cls["id"], phrases, thr)
        ids.add(cls["id"])
    return ids


class Bar:
    """A progress line on stderr: redrawn in place on a terminal, a line per step elsewhere."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.started = time.monotonic()
        self.last = 0.0
        self.first: int | None = None

    def __call__(self, done: int, total: int, message: str, eta: float | None) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = done
        if not self.tty and now - self.last < 5 and done < total:
            return
        self.last = now
        width = 28
        filled = int(width * done / total) if total else width
        rate = (done - self.first) / max(now - self.started, 1e-9)
        eta_text = "--:--" if eta is None else f"{int(eta) // 60:d}:{int(eta) % 60:02d}"
        line = (f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total} "
                f"{100 * done / max(total, 1):3.0f}%  {rate:.2f} img/s  ETA {eta_text}")
        self.out.write(("\r" + line) if self.tty else line + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def run(args: argparse.Namespace) -> int:
    from backend import paths
    from backend.ai.runs import RunControl, RunStopped
    from backend.ai.services import AiServices
    from backend.cli.detect import parse_prompts
    from backend.cli.models import packs_dir
    from backend.imaging import SUPPORTED_EXTENSIONS
    from backend.models.cache import default_cache_dir
    from backend.store import Project

    project = None
    ai = None
    try:
        if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
            raise InvalidArgument(f"--threshold must be between 0 and 1, got {args.threshold}.")
        if args.resume is None and not args.prompt:
            raise InvalidArgument("Give at least one --prompt (or --resume RUN).")
        if args.resume is None and not args.detector:
            raise InvalidArgument("Give the detector pack with --detector (or --resume RUN).")
        if args.segment and not args.segmenter:
            raise InvalidArgument("--segment needs a segmenter pack: add --segmenter PACK.")
        prompts = parse_prompts(args.prompt) if args.prompt else {}
        # The user's active choices in the app are not touched: state_path=None.
        ai = AiServices(lambda name, payload: None, packs_dir=packs_dir(),
                        bundled_dir=paths.resource("packs"), state_path=None,
                        cache_dir=default_cache_dir(), threads=args.threads, prefetch_count=0)
        if args.detector:
            _use_pack(ai, args.detector, "detector")
        if args.segmenter:
            _use_pack(ai, args.segmenter, "segmenter")
        project = Project.open(args.project)
        project.scan(SUPPORTED_EXTENSIONS)
        if args.resume is not None:
            _refuse_finished(project, args.resume)
            rec = ai.runs.prepare_resume(project, args.resume)
            params = rec["params"]
            for task in ("detector", "segmenter"):
                if params.get(task):
                    ai.models.find(params[task], task)  # a clear error before starting
        else:
            _mention_unfinished(ai, project, args)
            classes = _prepare_classes(project, prompts, args.threshold)
            rec = ai.runs.create(project, "detect", segment=args.segment, only_classes=classes)
        # Said before the first image: after a kill or a power cut this line is all a person
        # has to continue the run instead of starting every image again.
        print(f"run {rec['run']}: {rec['total'] - rec['done'] - rec['failed']} of "
              f"{rec['total']} images to do; if it stops, continue with: "
              f"{resume_command(args, rec['run'])}", file=sys.stderr, flush=True)
        return _execute(ai, project, rec["run"], args, RunControl, RunStopped)
    except FieldmarkError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": exc.to_dict()}, indent=2, default=str))
        return 2
    finally:
        if ai is not None:
            ai.shutdown()
        if project is not None:
            project.close()


def _refuse_finished(project: Any, run_id: int) -> None:
    """A finished run has nothing to resume. Say what it did: a kill that came after the last
    image but before the summary was printed leaves a person asking for exactly this, and
    "start a new run" would do every image again."""
    rec = project.run(run_id)
    if rec["state"] == "done":
        raise InvalidArgument(
            f"Run {run_id} already finished: {rec['done']} of {rec['total']} images done, "
            f"{rec['failed']} failed. Nothing to resume; its proposals are in the project, "
            "ready to review in the app.", code="run_finished", detail={"run": run_id})


def _mention_unfinished(ai: Any, project: Any, args: argparse.Namespace) -> None:
    """Starting afresh while an interrupted run exists processes its done images again: the
    person may have meant to continue it (after a kill nothing told them how)."""
    for rec in ai.runs.records(project):
        if rec["kind"] == "detect" and rec["state"] in ("interrupted", "paused") \
                and rec["done"] + rec["failed"]:
            print(f"note: run {rec['run']} stopped after {rec['done'] + rec['failed']} of "
                  f"{rec['total']} images; to continue it instead of starting over: "
                  f"{resume_command(args, rec['run'])}", file=sys.stderr)


def resume_command(args: argparse.Namespace, run_id: int) -> str:
    """The command that continues run ``run_id``: with the packs given now, which a run started
    from a pack folder (not installed) needs again."""
    parts = ["autolabel", _quoted(str(args.project)), "--resume", str(run_id)]
    for option in ("detector", "segmenter"):
        if getattr(args, option):
            parts += [f"--{option}", _quoted(getattr(args, option))]
    return " ".join(parts)


def _quoted(text: str) -> str:
    """``text`` as one argument of a command line a person can paste into their shell."""
    return subprocess.list2cmdline([text]) if sys.platform == "win32" else shlex.quote(text)


def _execute(ai: Any, project: Any, run_id: int, args: argparse.Namespace, control_cls: Any,
             stopped_cls: Any) -> int:
    control = control_cls()
    bar = Bar(sys.stderr)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = ai.runs.execute(project, run_id, bar, control)
        except stopped_cls as exc:
            outcome["stopped"] = exc.state
        except BaseException as exc:  # noqa: BLE001 — reported by the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=work, name=f"autolabel-{run_id}", daemon=True)
    thread.start()
    interrupted = False
    while thread.is_alive():
        try:
            thread.join(0.2)
        except KeyboardInterrupt:
            if interrupted:
                # A second Ctrl-C: leave now. The store is crash-safe and the image in flight
                # is still to do; the run shows as interrupted and resumes like a paused one.
                bar.close()
                print(f"stopped; resume with: {resume_command(args, run_id)}", file=sys.stderr)
                sys.stderr.flush()
                os._exit(EXIT_PAUSED)
            interrupted = True
            control.request("paused")
            print("\npausing after the current image (Ctrl-C again to stop at once)...",
                  file=sys.stderr)
    bar.close()
    if "error" in outcome:
        raise outcome["error"]
    record = project.run(run_id)
    failed = project.run_failures(run_id)
    summary = {"run": run_id, "state": outcome.get("stopped", "done"), "done": record["done"],
               "total": record["total"], "failed": failed,
               "shapes": outcome.get("result", {}).get("shapes", 0)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"run {run_id}: {summary['done']} of {summary['total']} images done, "
              f"{summary['shapes']} proposals stored, {len(failed)} failed")
        for f in failed:
            print(f"  failed: {f['name']}: {f['reason']}")
    if "stopped" in outcome:
        print(f"paused; resume with: {resume_command(args, run_id)}", file=sys.stderr)
        return EXIT_PAUSED
    return 1 if failed else 0
