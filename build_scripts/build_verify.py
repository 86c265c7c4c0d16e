#!/usr/bin/env python3
"""Check a frozen Fieldmark before anyone runs it: is everything the app needs inside?

A frozen app that lacks a file fails only on a user's machine — a window that flashes and
vanishes. So the build fails instead when the bundle lacks: a file of ``web/`` or of the demo
images, a ``backend`` module, the Qt WebEngine helper process or its resources (``*.pak``,
``icudtl.dat``, the en-US locale), one of onnxruntime's native libraries (provider libraries
included), a file of a pack that was meant to be bundled, or the build info. The default
variant must not contain torch or transformers; the torch variant must contain them and the
export code. PyInstaller's warn file must not list a missing module that the app needs.

The same rules run on the Analysis TOC inside ``main.spec`` (before anything is written) and on
the finished artifact (``python build_scripts/build_verify.py dist/fieldmark``): the single file's
packed app is listed from its index (build_scripts/launcher/payload.py) and its executable read
with PyInstaller's ``CArchiveReader``; a one-folder app is walked.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_scripts import build_config as bc  # noqa: E402

# Modules our own code may import although they do not exist on this platform, with why.
# (Everything else our code imports must be in the bundle.)
ACCEPTED_MISSING: dict[str, str] = {
    "_winapi": "Windows-only", "winreg": "Windows-only", "nt": "Windows-only",
    "msvcrt": "Windows-only", "_scproxy": "macOS-only", "fcntl": "POSIX-only", "pwd": "POSIX-only",
}


@dataclass
class Listing:
    """What a bundle holds: data/binary files (name -> uncompressed bytes) and Python modules."""

    files: dict[str, int] = field(default_factory=dict)
    modules: set[str] = field(default_factory=set)
    packed: dict[str, int] = field(default_factory=dict)  # onefile: compressed bytes per entry


# -- reading bundles ------------------------------------------------------------------------------

def _read_carchive(exe: Path, out: Listing, *, with_files: bool) -> None:
    from PyInstaller.archive.readers import CArchiveReader

    arc = CArchiveReader(str(exe))
    for name, (_off, length, ulen, _flag, typecode) in arc.toc.items():
        if typecode == "z":  # the PYZ: every pure-Python module
            out.modules.update(arc.open_embedded_archive(name).toc)
        elif typecode in ("m", "M", "s"):
            out.modules.add(name)
        elif with_files and typecode in ("b", "x", "d", "n", "l"):
            out.files[name.replace("\\", "/")] = ulen
            out.packed[name.replace("\\", "/")] = length


def _read_packed_app(exe: Path, out: Listing) -> bool:
    """A single file made by the launcher (build_scripts/launcher): list the one-folder app
    packed inside it — files from the packed index, modules from the packed app executable."""
    import tempfile

    from build_scripts.launcher import payload

    try:
        index, data_at = payload.open_payload(exe)
    except payload.PayloadError:
        return False  # a plain PyInstaller onefile
    for e in index["entries"]:
        rel = e["path"].removeprefix("_internal/")
        if e["path"].startswith("_internal/") and e["type"] != "d":
            out.files[rel] = e.get("size", 0)
            out.packed[rel] = sum(c[1] for c in e.get("chunks", []))
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / index["exe"]
        app.write_bytes(payload.read_file(exe, index, data_at, index["exe"]))
        _read_carchive(app, out, with_files=False)
    return True


def read_bundle(artifact: Path, name: str) -> Listing:
    """List a single file (the launcher with the packed app, or a plain PyInstaller onefile) or a
    one-folder app (``<dir>/<name>`` + ``<dir>/_internal``)."""
    out = Listing()
    if artifact.is_file():
        if not _read_packed_app(artifact, out):
            _read_carchive(artifact, out, with_files=True)
        return out
    exe = artifact / (name + bc.exe_suffix())
    if not exe.is_file():
        raise SystemExit(f"{artifact}: no executable {exe.name} in the one-folder app")
    _read_carchive(exe, out, with_files=False)
    internal = artifact / "_internal"
    for f in internal.rglob("*"):
        if f.is_file() and not f.is_symlink():
            out.files[f.relative_to(internal).as_posix()] = f.stat().st_size
        elif f.is_symlink():
            out.files[f.relative_to(internal).as_posix()] = 0
    return out


def listing_from_toc(datas: Iterable[tuple], binaries: Iterable[tuple], pure: Iterable[tuple]) -> Listing:
    """The same listing from PyInstaller's Analysis TOCs (dest name, source, typecode)."""
    out = Listing()
    for dest, src, *_ in list(datas) + list(binaries):
        try:
            size = Path(src).stat().st_size
        except (OSError, TypeError):
            size = 0
        out.files[str(dest).replace("\\", "/")] = size
    out.modules.update(str(entry[0]) for entry in pure)
    return out


# -- rules ------------------------------------------------------------------------------------------

def _installed_ort_libs() -> list[str]:
    """onnxruntime's Python binding and its provider libraries as installed here.

    The providers (``onnxruntime_providers_*``) are loaded with dlopen, so binary analysis
    cannot see them. ``libonnxruntime.so.*`` (the C API for other programs) is not needed: the
    binding links the runtime statically, and the self-test runs a session to prove it.
    """
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return []
    capi = Path(next(iter(spec.submodule_search_locations))) / "capi"
    pats = ("onnxruntime_pybind11_state*", "*onnxruntime_providers_*")
    return sorted(f"onnxruntime/capi/{f.name}" for f in capi.iterdir()
                  if any(fnmatch.fnmatch(f.name, p) for p in pats) and f.suffix != ".py")


def _has(files: Iterable[str], pattern: str) -> bool:
    return any(fnmatch.fnmatch(f, pattern) for f in files)


def check_listing(listing: Listing, opts: bc.Options, packs: list[Path]) -> list[str]:
    """Every rule the bundle breaks, as sentences; empty means complete."""
    files, problems = listing.files, []

    def need(pattern: str, what: str) -> None:
        if not _has(files, pattern):
            problems.append(f"missing {what} ({pattern})")

    for f in sorted((bc.ROOT / "web").rglob("*")):
        if f.is_file():
            rel = f.relative_to(bc.ROOT).as_posix()
            if rel not in files:
                problems.append(f"missing web asset {rel}")
    for f in sorted((bc.ROOT / "demo" / "images").iterdir()):
        rel = f.relative_to(bc.ROOT).as_posix()
        if rel not in files:
            problems.append(f"missing demo image {rel}")
    need(bc.BUILD_INFO, "build info")
    need("*QtWebEngineProcess*", "the Qt WebEngine helper process")
    need("*qtwebengine_resources.pak", "Qt WebEngine resources")
    need("*qtwebengine_resources_100p.pak", "Qt WebEngine resources (100%)")
    need("*icudtl.dat", "ICU data of Qt WebEngine")
    need("*qtwebengine_locales/en-US.pak", "the en-US locale of Qt WebEngine")
    need("*platforms/*offscreen*", "the offscreen Qt platform plugin (self-test, CI)")
    if sys.platform.startswith("linux"):
        need("*platforms/*xcb*", "the xcb Qt platform plugin")
        need("*v8_context_snapshot.bin", "V8 snapshot of Qt WebEngine")
    for lib in _installed_ort_libs():
        if lib not in files:
            problems.append(f"missing onnxruntime library {lib}")
    for mod in sorted(set(bc.source_modules()) - listing.modules):
        problems.append(f"missing Python module {mod}")
    for pack in packs:
        manifest = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))
        for rel in ["manifest.json", *manifest["files"]]:
            if f"packs/{pack.name}/{rel}" not in files:
                problems.append(f"missing file {rel} of the bundled pack {pack.name}")
    torch_mods = {m for m in listing.modules if m.split(".")[0] in ("torch", "transformers")}
    torch_files = [f for f in files if f.startswith(("torch/", "transformers/"))]
    if opts.torch:
        for mod in ("torch", "transformers", "build_scripts.exporters.owl",
                    "build_scripts.exporters.sam", "build_scripts.exporters.sam2"):
            if mod not in listing.modules:
                problems.append(f"torch variant: missing Python module {mod}")
        need("torch/lib/*torch_cpu*", "torch's CPU library")
    elif torch_mods or torch_files:
        problems.append(f"the default build contains torch/transformers: "
                        f"{sorted(torch_mods)[:3] + torch_files[:3]}")
    return problems


_MISSING_RE = re.compile(r"^missing module named '?([^' ]+)'? - imported by (.*)$")
OURS = ("main", "backend", "build_scripts", "hooks")


def _exists_here(name: str) -> bool:
    """True when ``name`` is a real module in the build environment (not an attribute)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


def check_warnings(warn_file: Path, opts: bc.Options,
                   excludes: Iterable[str] = ()) -> tuple[list[str], dict[str, int]]:
    """(problems, accepted counts by reason) from PyInstaller's warn file.

    modulegraph reports every ``from pkg import name`` whose ``name`` is not a submodule as a
    "missing module", and every optional import of something not installed; most of its lines
    are those. A line is a PROBLEM when:

    - our own code imports the module and it is not in ``ACCEPTED_MISSING``: the app would fail
      to import it;
    - the module belongs to a package the app ships and does exist in this environment: then
      PyInstaller failed to collect a real module (a hidden import), not an attribute.

    Modules in ``excludes`` (or under one) were left out on purpose. Everything else is
    accepted and counted by reason (printed by the build).
    """
    excluded = tuple(excludes)
    shipped = bc.RUNTIME_PACKAGES + (bc.TORCH_PACKAGES if opts.torch else ())
    problems: list[str] = []
    accepted: dict[str, int] = {}
    for line in warn_file.read_text(encoding="utf-8").splitlines():
        m = _MISSING_RE.match(line.strip())
        if not m:
            continue
        name, importers = m.group(1), m.group(2)
        by_us = [i for i in importers.split(", ") if i.split(" ")[0].split(".")[0] in OURS]
        top = name.split(".")[0]
        if any(name == e or name.startswith(e + ".") for e in excluded):
            accepted["left out on purpose (main.spec excludes)"] = accepted.get(
                "left out on purpose (main.spec excludes)", 0) + 1
            continue
        if by_us and name not in ACCEPTED_MISSING:
            problems.append(f"our code imports {name}, which is not in the bundle ({', '.join(by_us)})")
            continue
        if top in shipped and _exists_here(name):
            problems.append(f"PyInstaller did not collect {name}, which exists here (hidden import?)")
            continue
        if name in ACCEPTED_MISSING:
            reason = ACCEPTED_MISSING[name] + (" (our code imports it only there)" if by_us else "")
        elif "." in name and _exists_here(name.rsplit(".", 1)[0]):
            reason = "a name imported from a module (from X import name), not a module"
        elif top in shipped:
            reason = "an optional part of a shipped package that this platform's wheel lacks"
        else:
            reason = "another platform's module, or an optional dependency that is not installed"
        accepted[reason] = accepted.get(reason, 0) + 1
    return problems, accepted


def top_files(listing: Listing, n: int = 15) -> list[tuple[str, int]]:
    return sorted(listing.files.items(), key=lambda kv: -kv[1])[:n]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifact", type=Path, help="dist/fieldmark (onefile) or dist/fieldmark-onedir")
    p.add_argument("--torch", action="store_true", help="the torch variant")
    p.add_argument("--packs", type=Path, help="the packs the build bundled (folder)")
    p.add_argument("--warn-file", type=Path, help="PyInstaller's warn file of the build")
    p.add_argument("--top", type=int, default=15, help="list the N biggest files")
    a = p.parse_args(argv)
    mode = "onefile" if a.artifact.is_file() else "onedir"
    opts = bc.Options(mode=mode, torch=a.torch, packs=a.packs)
    listing = read_bundle(a.artifact, opts.name)
    problems = check_listing(listing, opts, bc.pack_dirs(a.packs))
    if a.warn_file:
        warn_problems, _ = check_warnings(a.warn_file, opts, bc.excludes(opts))
        problems += warn_problems
    total = sum(listing.files.values())
    print(f"{a.artifact}: {len(listing.files)} files, {len(listing.modules)} modules, "
          f"{total / 1e6:.1f} MB unpacked")
    for name, size in top_files(listing, a.top):
        packed = listing.packed.get(name)
        print(f"  {size / 1e6:8.1f} MB  {name}" + (f"  ({packed / 1e6:.1f} MB packed)" if packed else ""))
    for prob in problems:
        print(f"PROBLEM: {prob}", file=sys.stderr)
    print("bundle complete" if not problems else f"bundle INCOMPLETE: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
