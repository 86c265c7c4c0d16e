#!/usr/bin/env python3
"""Fieldmark — label images with an AI that proposes and a person who decides.

    python main.py                       open the built-in demo project
    python main.py PROJECT_DIR           open a folder of images
    python main.py --self-test [--report FILE]
                                         headless health check (exit 0 = healthy)
    python main.py detect|segment|models ...
                                         the same core from the command line; each has --help
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from backend import __version__
from backend.cli import SUBCOMMANDS


def _gui_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fieldmark", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Commands: " + ", ".join(SUBCOMMANDS) + " (python main.py COMMAND --help).")
    p.add_argument("project", nargs="?", help="folder of images to open (default: the demo project)")
    p.add_argument("--self-test", action="store_true", help="run the headless health check and exit")
    p.add_argument("--report", type=Path, help="with --self-test: write a JSON report here")
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
        parser, module = _command_parser(argv[0])
        return int(module.run(parser.parse_args(argv)))  # type: ignore[attr-defined]
    args = _gui_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.self_test:
        from backend.gui.selftest import run_self_test

        return run_self_test(args.report)
    from backend.gui.run import run_gui

    return run_gui(args.project, screenshot=args.screenshot)


if __name__ == "__main__":
    raise SystemExit(main())
