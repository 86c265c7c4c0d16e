#!/usr/bin/env python3
"""Fieldmark — label images with an AI that proposes and a person who decides.

    python main.py                       open the built-in demo project
    python main.py PROJECT_DIR           open a folder of images
    python main.py --self-test [--report FILE] [--require-packs]
                                         headless health check (exit 0 = healthy)
    python main.py --startup-report FILE time from process start to a usable page, then exit
    python main.py detect|segment|models|autolabel|export|import ...
                                         the same core from the command line; each has --help
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from pathlib import Path

from backend import __version__
from backend.cli import SUBCOMMANDS

_STARTED = time.time()  # --startup-report measures from here (and from the process start)


def _gui_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fieldmark", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Commands: " + ", ".join(SUBCOMMANDS) + " (python main.py COMMAND --help).")
    p.add_argument("project", nargs="?", help="folder of images to open (default: the demo project)")
    p.add_argument("--self-test", action="store_true", help="run the headless health check and exit")
    p.add_argument("--report", type=Path, help="with --self-test: write a JSON report here")
    p.add_argument("--require-packs", action="store_true",
                   help="with --self-test: fail when no model packs are bundled (CI on the binary)")
    p.add_argument("--startup-report", type=Path, metavar="JSON",
                   help="open the window, write the time to a usable page to JSON, and exit")
    p.add_argument("--screenshot", type=Path, metavar="PNG",
                   help="open the window, save a screenshot of it to PNG once the page is ready, and exit")
    p.add_argument("--verbose", "-v", action="store_true", help="log debug details to stderr")
    p.add_argument("--version", action="version", version=f"Fieldmark {__version__}")
    return p


def _command_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    module = importlib.import_module(SUBCOMMANDS[name])
    p = argparse.ArgumentParser(prog="fieldmark")
    sub = p.add_subparsers(dest="command", required=True)
    module.add_parser(sub)  # type: ignore[attr-defined]
    return p, module


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        for stream in (sys.stdout, sys.stderr):
            # A file name that is not UTF-8 reaches a summary as a lone surrogate: print it
            # escaped rather than fail after the work is done.
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(errors="backslashreplace")
        parser, module = _command_parser(argv[0])
        return int(module.run(parser.parse_args(argv)))  # type: ignore[attr-defined]
    args = _gui_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.self_test:
        from backend.gui.selftest import run_self_test

        return run_self_test(args.report, require_packs=args.require_packs)
    from backend.gui import crash

    # An uncaught exception gets a log in <user data>/logs and a dialog (none when automated).
    automated = args.screenshot is not None or args.startup_report is not None
    handler = crash.install(show=None if automated else crash.show_dialog)

    def gui() -> int:
        from backend.gui.run import run_gui

        return run_gui(args.project, screenshot=args.screenshot, startup_report=args.startup_report,
                       started=_STARTED)

    return crash.run_guarded(handler, gui)


if __name__ == "__main__":
    raise SystemExit(main())
