"""``python main.py models list|verify|install|convert``: manage installed model packs.

Installed packs live in ``<user data>/packs`` (see ``backend.paths.user_data_dir``), or in the
folder given by ``--packs-dir`` or the ``FIELDMARK_PACKS_DIR`` environment variable.
Exit codes: 0 success, 2 a pack or argument problem (the message goes to stderr; with
``--json`` the error object also goes to stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from backend.errors import FieldmarkError, PackError
from backend.models import pack as packs
from backend.paths import user_data_dir

ENV_PACKS_DIR = "FIELDMARK_PACKS_DIR"


def packs_dir(override: Path | str | None = None) -> Path:
    """Where installed packs live: ``override``, else ``$FIELDMARK_PACKS_DIR``, else user data."""
    if override:
        return Path(override)
    env = os.environ.get(ENV_PACKS_DIR)
    if env:
        return Path(env)
    return user_data_dir() / "packs"


def open_pack(spec: str) -> packs.Pack:
    """A pack folder or .zip path, or the id of an installed pack (verified either way)."""
    path = Path(spec)
    if path.exists():
        return packs.load_pack(path)
    for found in packs.list_packs(packs_dir()):
        if not isinstance(found, PackError) and found.id == spec:
            return packs.load_pack(found.root)
    raise PackError(f"No model pack at '{spec}' and no installed pack with that id. Give the "
                    "pack folder or .zip, or install it with 'models install'.",
                    detail={"pack": spec})


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--packs-dir", type=Path, metavar="DIR",
                   help=f"folder of installed packs (default: ${ENV_PACKS_DIR} or the app's "
                        "data folder)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def add_parser(subparsers: Any) -> None:
    """Register ``models`` and its subcommands on an ``argparse`` subparsers object."""
    models = subparsers.add_parser(
        "models", help="list, verify and install model packs",
        description="Manage model packs (detector and segmenter models). A pack is a folder or "
                    ".zip with manifest.json, made by build_scripts/export_models.py.")
    sub = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", help="show installed packs and the ONNX Runtime providers",
                       description="Show every installed pack (id, version, task, family, "
                                   "size), packs that cannot be used and why, and which ONNX "
                                   "Runtime execution providers this machine offers.")
    _common(p)

    p = sub.add_parser("verify", help="check a pack's files against its checksums",
                       description="Check a pack folder or .zip (or an installed pack, by id) "
                                   "against the sha256 checksums in its manifest, and that each "
                                   "ONNX graph loads and has the inputs and outputs the manifest "
                                   "declares. Without PATH, verify every installed pack.")
    p.add_argument("path", nargs="?", metavar="PATH",
                   help="pack folder, .zip, or the id of an installed pack")
    _common(p)

    p = sub.add_parser("install", help="verify a pack and copy it into the packs folder",
                       description="Verify a pack folder or .zip (checksums and graphs, as "
                                   "'verify') and copy it into the packs folder. Installing the "
                                   "same id and version again replaces the installed copy once "
                                   "the new one is complete; a refused pack changes nothing.")
    p.add_argument("path", metavar="PATH", help="pack folder or .zip to install")
    _common(p)

    p = sub.add_parser("convert", help="turn a checkpoint folder into a pack (torch build only)",
                       description="Export a Hugging Face checkpoint folder (save_pretrained "
                                   "output, e.g. from a USB stick) to a model pack with the same "
                                   "code as build_scripts/export_models.py. Needs torch and "
                                   "transformers: the 'fieldmark-torch' build bundles them; the "
                                   "standard build says how to convert instead.")
    p.add_argument("checkpoint", type=Path, metavar="CHECKPOINT_DIR", help="checkpoint folder")
    p.add_argument("--family", required=True, choices=sorted(packs.FAMILIES), help="model family")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="pack folder to create")
    p.add_argument("--quantize", action="store_true", help="dynamic-int8 weights (smaller)")
    p.add_argument("--install", action="store_true", help="also install the new pack")
    _common(p)


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _error_entry(exc: PackError) -> dict[str, Any]:
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    return {"path": detail.get("pack"), "error": exc.message}


def _list(args: argparse.Namespace, out: Any) -> int:
    from backend.models.runtime import provider_report  # deferred: imports onnxruntime

    root = packs_dir(args.packs_dir)
    ok, broken = [], []
    for item in packs.list_packs(root):
        if isinstance(item, PackError):
            broken.append(_error_entry(item))
        else:
            ok.append(item.summary())
    providers = provider_report()
    if args.json:
        json.dump({"packs_dir": str(root), "packs": ok, "broken": broken,
                   "providers": providers}, out, indent=2)
        out.write("\n")
        return 0
    out.write(f"Model packs in {root}:\n")
    if not ok and not broken:
        out.write("  (none installed — add one with: main.py models install PATH)\n")
    for s in ok:
        out.write(f"  {s['id']:<28} {s['version']:<10} {s['task']:<10} {s['family']:<8} "
                  f"{_human_size(s['size_bytes']):>10}\n")
    for b in broken:
        out.write(f"  BROKEN {b['path']}: {b['error']}\n")
    out.write(f"ONNX Runtime {providers.get('onnxruntime')}: providers "
              f"{', '.join(providers.get('installed', []))}; {providers.get('threads')} "
              "threads\n")
    return 0


def _resolve_target(path: str, root: Path) -> Path:
    """A path as given, or an installed pack named by id (``<id>`` or ``<id>-<version>``)."""
    p = Path(path)
    if p.exists():
        return p
    for item in packs.list_packs(root):
        if not isinstance(item, PackError) and path in (item.id, item.root.name):
            return item.root
    raise PackError(f"No model pack at '{path}', and no installed pack with that id in "
                    f"'{root}'. Check the path, or run 'main.py models list'.",
                    detail={"pack": path})


def _verify(args: argparse.Namespace, out: Any) -> int:
    root = packs_dir(args.packs_dir)
    if args.path:
        targets = [_resolve_target(args.path, root)]
    else:
        targets = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")
                   ] if root.is_dir() else []
    results: list[dict[str, Any]] = []
    for t in targets:
        try:
            # Checksums, then whether each graph loads and matches the manifest; a .zip is
            # unpacked into a temp folder that is gone when the check ends.
            with packs.opened_pack(t, verify=True) as pk:
                packs.check_graphs(pk)
            results.append({"path": str(t), "ok": True, "id": pk.id, "version": pk.version})
        except PackError as exc:
            results.append({"path": str(t), "ok": False, "error": exc.message})
    failed = [r for r in results if not r["ok"]]
    if args.json:
        json.dump({"results": results, "ok": not failed}, out, indent=2)
        out.write("\n")
    else:
        if not results:
            out.write(f"No packs installed in {root}.\n")
        for r in results:
            if r["ok"]:
                out.write(f"OK      {r['id']}@{r['version']}  ({r['path']})\n")
    for r in failed:
        sys.stderr.write(f"{r['error']}\n")
    return 2 if failed else 0


def _install(args: argparse.Namespace, out: Any) -> int:
    root = packs_dir(args.packs_dir)
    pk = packs.install_pack(Path(args.path), root)
    if args.json:
        json.dump({"installed": pk.summary()}, out, indent=2)
        out.write("\n")
    else:
        out.write(f"Installed {pk.id}@{pk.version} ({pk.task}, {pk.family}) to {pk.root}\n")
    return 0


def conversion_unavailable() -> str | None:
    """Why this build cannot convert checkpoints (torch/transformers missing), or None."""
    import importlib.util

    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return (f"This build of Fieldmark cannot convert checkpoints: it does not include "
            f"{' and '.join(missing)}. Use the Fieldmark build with torch ('fieldmark-torch'), "
            "or convert on a computer with Python: pip install -r requirements-export.txt, then "
            "python build_scripts/export_models.py --family FAMILY --checkpoint CHECKPOINT_DIR "
            "--out PACK_DIR, and install the pack here with 'models install PACK_DIR'.")


def convert_checkpoint(checkpoint: Path, family: str, out: Path, *, quantize: bool = False) -> packs.Pack:
    """Export a local checkpoint folder to a verified pack in ``out`` (never downloads)."""
    why = conversion_unavailable()
    if why:
        raise PackError(why, detail={"checkpoint": str(checkpoint)})
    if not Path(checkpoint).is_dir() or not (Path(checkpoint) / "config.json").is_file():
        raise PackError(f"'{checkpoint}' is not a checkpoint folder: it has no config.json. Choose "
                        "the folder that save_pretrained wrote.", detail={"checkpoint": str(checkpoint)})
    if Path(out).exists() and any(Path(out).iterdir()):
        raise PackError(f"'{out}' already exists and is not empty; choose a new folder for the pack.",
                        detail={"out": str(out)})
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder only: never the network
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import importlib

    exporters = importlib.import_module("build_scripts.exporters")
    exporters.EXPORTERS[family](family=family, checkpoint=str(checkpoint), random=None, out=Path(out),
                                quantize=quantize, seed=0, pack_id=None, version="1.0.0")
    return packs.verify_pack(Path(out), hashes=True)


def _convert(args: argparse.Namespace, out: Any) -> int:
    pk = convert_checkpoint(args.checkpoint, args.family, args.out, quantize=args.quantize)
    if args.install:
        pk = packs.install_pack(pk.root, packs_dir(args.packs_dir))
    if args.json:
        json.dump({"pack": pk.summary(), "installed": bool(args.install)}, out, indent=2)
        out.write("\n")
    else:
        out.write(f"Converted {args.checkpoint} to {pk.id}@{pk.version} in {pk.root}\n")
    return 0


_COMMANDS = {"list": _list, "verify": _verify, "install": _install, "convert": _convert}


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``models`` command; returns the process exit code."""
    out = sys.stdout
    try:
        return _COMMANDS[args.models_command](args, out)
    except FieldmarkError as exc:
        sys.stderr.write(f"{exc.message}\n")
        if getattr(args, "json", False):
            json.dump({"error": exc.to_dict()}, out, indent=2, default=str)
            out.write("\n")
        return 2
    except OSError as exc:   # permission denied, disk full while copying a pack
        sys.stderr.write(f"Could not complete 'models {args.models_command}': {exc}. Check "
                         "that the folders exist and that you may write to them.\n")
        return 2
