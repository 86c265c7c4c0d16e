"""Model packs: a folder (or .zip of one) with ``manifest.json``, ONNX graphs and tokenizer files.

The manifest is data, not code (like osam's model registry): which graphs exist, their I/O
contract, the preprocessing constants, and the sha256 of every file. A pack is verified before
use; anything missing, altered or of an unknown schema is refused with a :class:`PackError`
that names the pack and the file and says what to do.

Manifest fields (schema 1)::

    schema_version  int, == SCHEMA_VERSION
    id              str, [a-z0-9._-]+ — stable identifier, used in shape provenance
    name            str, for people
    version         str
    task            "detector" | "segmenter"
    family          "owlvit" | "owlv2" | "sam" | "sam2"
    license         str
    source          {"checkpoint": str, "random": "tiny"|"full"|null, ...}
    preprocessing   dict, family-specific constants (image size, mean/std, ...)
    io              {"graphs": {name: {"file": str, "inputs": {...}, "outputs": {...}}}}
    config          dict, family-specific runtime constants
    files           {relative path: sha256 hex}
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from backend import atomic, leftovers
from backend.errors import PackError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1
TASKS = ("detector", "segmenter")
FAMILIES = {"owlvit": "detector", "owlv2": "detector", "sam": "segmenter", "sam2": "segmenter"}
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
# The version becomes part of the install folder name: no separators, no "..".
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_REQUIRED = ("schema_version", "id", "name", "version", "task", "family", "license", "source",
             "preprocessing", "io", "config", "files")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Pack:
    root: Path
    manifest: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.manifest["id"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def task(self) -> str:
        return str(self.manifest["task"])

    @property
    def family(self) -> str:
        return str(self.manifest["family"])

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def preprocessing(self) -> dict[str, Any]:
        return dict(self.manifest["preprocessing"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.manifest["config"])

    @property
    def source_tag(self) -> str:
        """What the store records as a shape's ``source``: ``<pack id>@<pack version>``."""
        return f"{self.id}@{self.version}"

    def file(self, relpath: str) -> Path:
        if relpath not in self.manifest["files"]:
            raise PackError(f"Model pack '{self.id}' has no file '{relpath}' in its manifest.",
                            detail={"pack": str(self.root)})
        return self.root / relpath

    def graph(self, name: str) -> Path:
        graphs = self.manifest["io"].get("graphs", {})
        if name not in graphs:
            raise PackError(f"Model pack '{self.id}' has no '{name}' graph; it is not a "
                            f"{self.family} pack this version of Fieldmark can run.",
                            detail={"pack": str(self.root), "graphs": sorted(graphs)})
        return self.file(graphs[name]["file"])

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "version": self.version, "task": self.task,
                "family": self.family, "license": self.manifest["license"], "path": str(self.root),
                "size_bytes": sum((self.root / f).stat().st_size for f in self.manifest["files"])}


def _check_manifest(m: Any, where: Path) -> None:
    def bad(msg: str) -> PackError:
        return PackError(f"The model pack at '{where}' has an invalid manifest: {msg}. "
                         "Re-export it with build_scripts/export_models.py or get a fresh copy.",
                         detail={"pack": str(where)})

    if not isinstance(m, dict):
        raise bad("it is not a JSON object")
    missing = [k for k in _REQUIRED if k not in m]
    if missing:
        raise bad(f"missing field(s) {', '.join(missing)}")
    if m["schema_version"] != SCHEMA_VERSION:
        raise bad(f"schema_version is {m['schema_version']!r}, this app reads {SCHEMA_VERSION}")
    if not isinstance(m["id"], str) or not _ID_RE.match(m["id"]):
        raise bad(f"id {m['id']!r} must be lowercase letters, digits, '.', '_' or '-'")
    if not isinstance(m["version"], str) or not _VERSION_RE.match(m["version"]):
        raise bad(f"version {m['version']!r} must be letters, digits, '.', '_', '+' or '-'")
    for key in ("source", "preprocessing", "config"):
        if not isinstance(m[key], dict):
            raise bad(f"{key} must be a JSON object")
    if m["task"] not in TASKS:
        raise bad(f"task {m['task']!r} is not one of {', '.join(TASKS)}")
    if not isinstance(m["family"], str) or FAMILIES.get(m["family"]) != m["task"]:
        raise bad(f"family {m['family']!r} is not a known {m['task']} family")
    if not isinstance(m["files"], dict) or not m["files"]:
        raise bad("files must map each file to its sha256")
    for rel, digest in m["files"].items():
        p = PurePosixPath(rel)
        if p.is_absolute() or ".." in p.parts or "\\" in rel:
            raise bad(f"file path {rel!r} leaves the pack folder")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise bad(f"sha256 of {rel!r} is not a hex digest")
    graphs = m["io"].get("graphs") if isinstance(m["io"], dict) else None
    if not isinstance(graphs, dict) or not graphs:
        raise bad("io.graphs must list the ONNX graphs")
    for name, g in graphs.items():
        if not isinstance(g, dict) or not isinstance(g.get("file"), str) \
                or g["file"] not in m["files"]:
            raise bad(f"graph {name!r} names a file that is not in files")


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise PackError(f"'{root}' is not a model pack: it has no {MANIFEST}. Choose the pack "
                        "folder (or its .zip) made by build_scripts/export_models.py.",
                        detail={"pack": str(root)})
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackError(f"'{path}', the manifest of a model pack, is not valid JSON ({exc}). "
                        "Copy the pack again, or re-export it with build_scripts/export_models.py.",
                        detail={"pack": str(root), "file": MANIFEST}) from exc
    _check_manifest(manifest, root)
    return manifest


def verify_pack(root: Path, *, hashes: bool = True) -> Pack:
    """Check the manifest and (unless ``hashes`` is False) every file's sha256."""
    root = Path(root)
    manifest = read_manifest(root)
    for rel, digest in manifest["files"].items():
        f = root / rel
        if not f.is_file():
            raise PackError(f"Model pack '{manifest['id']}' is incomplete: '{rel}' is missing "
                            f"from '{root}'. Copy the whole pack folder again.",
                            detail={"pack": str(root), "file": rel})
        if hashes and sha256_file(f) != digest:
            raise PackError(f"Model pack '{manifest['id']}' is damaged: '{rel}' does not match "
                            "its checksum. Copy or download the pack again.",
                            detail={"pack": str(root), "file": rel})
    return Pack(root=root, manifest=manifest)


_UNPACK_PREFIX = "fieldmark-pack-"
_UNPACK_MARGIN = 64 << 20        # free space left over after unpacking a zip
_MAX_ZIP_ENTRIES = 10_000
_unpacked: set[Path] = set()     # temp folders this process unpacked zips into
_unpacked_lock = threading.Lock()


def _extract_zip(zip_path: Path, dest: Path) -> Path:
    """Extract safely: refuse absolute paths, ``..``, links and archives that would not fit on
    the disk (sizes declared by the archive, which zipfile enforces while extracting); return
    the pack folder inside."""
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackError(f"'{zip_path}' is not a readable .zip model pack ({exc}). Make the .zip "
                        "again, or install the pack folder instead.",
                        detail={"pack": str(zip_path)}) from exc
    with zf:
        infos = zf.infolist()
        for info in infos:
            p = PurePosixPath(info.filename.replace("\\", "/"))
            if p.is_absolute() or ".." in p.parts or (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise PackError(f"Refused the model pack '{zip_path}': it contains the unsafe "
                                f"path '{info.filename}'. Only use packs from a source you trust.",
                                detail={"pack": str(zip_path), "file": info.filename})
        needed = sum(i.file_size for i in infos)
        free = shutil.disk_usage(dest).free
        if len(infos) > _MAX_ZIP_ENTRIES or needed + _UNPACK_MARGIN > free:
            raise PackError(f"Refused the model pack '{zip_path}': unpacking it needs "
                            f"{needed / 2**30:.1f} GB in {len(infos)} files and only "
                            f"{free / 2**30:.1f} GB is free in '{dest}'. Free some disk space, or "
                            "check that the .zip really is a model pack.",
                            detail={"pack": str(zip_path), "bytes": needed, "free": free})
        try:
            zf.extractall(dest)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, RuntimeError,
                NotImplementedError) as exc:  # CRC, truncated member, encrypted, odd method
            raise PackError(f"The .zip model pack '{zip_path}' is damaged or cannot be unpacked "
                            f"({exc}). Copy or download it again.",
                            detail={"pack": str(zip_path)}) from exc
    manifests = sorted(dest.rglob(MANIFEST), key=lambda p: len(p.parts))
    if not manifests:
        raise PackError(f"'{zip_path}' holds no {MANIFEST}; it is not a model pack. Choose the "
                        ".zip made from a pack folder by build_scripts/export_models.py.",
                        detail={"pack": str(zip_path)})
    return manifests[0].parent


def _remove_unpacked() -> None:
    with _unpacked_lock:
        folders = list(_unpacked)
        _unpacked.clear()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


atexit.register(_remove_unpacked)


def _sweep_orphans(tmp_root: Path) -> None:
    """Remove unpacked zips left by Fieldmark processes that died without cleaning up (a crash,
    ``os._exit``): the folder name carries the owner's pid (``backend.leftovers``)."""
    for path in leftovers.orphans(tmp_root, re.escape(_UNPACK_PREFIX) + r"(?P<pid>\d+)-.*"):
        leftovers.remove(path)


def release(pack: Pack) -> None:
    """Delete the temp folder a .zip pack was unpacked into (no-op for folders and for zips
    unpacked into a caller's ``unpack_dir``). Sessions already created keep working: the
    runtime reads a graph completely when it creates a session."""
    root = Path(pack.root)
    with _unpacked_lock:
        owner = next((d for d in _unpacked if d == root or d in root.parents), None)
        if owner is not None:
            _unpacked.discard(owner)
    if owner is not None:
        shutil.rmtree(owner, ignore_errors=True)


def load_pack(path: Path, *, verify: bool = True, unpack_dir: Path | None = None) -> Pack:
    """Open a pack folder or .zip. A zip is extracted into ``unpack_dir`` when given (the
    caller removes it), else into a temp folder that :func:`release` or the end of the process
    removes. Nothing is left behind when the pack is refused."""
    path = Path(path)
    if not path.exists():
        raise PackError(f"No model pack at '{path}'. Check the path.", detail={"pack": str(path)})
    if not (path.is_file() and path.suffix.lower() == ".zip"):
        return verify_pack(path, hashes=verify)
    if unpack_dir is None:
        _sweep_orphans(Path(tempfile.gettempdir()))
    dest = Path(tempfile.mkdtemp(prefix=f"{_UNPACK_PREFIX}{os.getpid()}-", dir=unpack_dir))
    if unpack_dir is None:
        with _unpacked_lock:
            _unpacked.add(dest)
    try:
        return verify_pack(_extract_zip(path, dest), hashes=verify)
    except BaseException:
        with _unpacked_lock:
            _unpacked.discard(dest)
        shutil.rmtree(dest, ignore_errors=True)
        raise


@contextmanager
def opened_pack(path: Path, *, verify: bool = True) -> Iterator[Pack]:
    """``load_pack`` for the length of a ``with`` block: an unpacked zip is removed after."""
    pack = load_pack(path, verify=verify)
    try:
        yield pack
    finally:
        release(pack)


def check_graphs(pack: Pack) -> None:
    """What checksums cannot tell: every graph loads in onnxruntime and has the inputs and
    outputs (names, element types, fixed sizes) its manifest declares. Costs one session
    creation per graph (without optimizations): done when installing, not on every start."""
    from backend.models.runtime import check_graph  # deferred: imports onnxruntime

    for name, spec in pack.manifest["io"]["graphs"].items():
        check_graph(pack.root / spec["file"], spec, pack=pack.id, graph=name)


def write_pack(out_dir: Path, manifest: dict[str, Any]) -> Pack:
    """Finish a pack whose files are already in ``out_dir``: hash them, write the manifest.

    ``manifest`` holds every field but ``files`` and ``schema_version``; ``files`` is computed
    from what the graphs and ``extra_files`` (a list in the manifest, removed here) name.
    """
    out_dir = Path(out_dir)
    manifest = dict(manifest)
    extra = manifest.pop("extra_files", [])
    rels = sorted({g["file"] for g in manifest["io"]["graphs"].values()} | set(extra))
    manifest["schema_version"] = SCHEMA_VERSION
    manifest["files"] = {rel: sha256_file(out_dir / rel) for rel in rels}
    _check_manifest(manifest, out_dir)
    atomic.write_json(out_dir / MANIFEST, manifest)
    return Pack(root=out_dir, manifest=manifest)


def zip_pack(pack_dir: Path, zip_path: Path) -> Path:
    pack_dir, zip_path = Path(pack_dir), Path(zip_path)
    tmp = zip_path.with_name(f".{zip_path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(pack_dir.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(pack_dir).as_posix())
    tmp.replace(zip_path)
    return zip_path


def install_pack(src: Path, packs_dir: Path) -> Pack:
    """Verify ``src`` (folder or zip: checksums and graphs) and copy it to
    ``packs_dir/<id>-<version>``. The installed copy is replaced only once the new one is
    complete, so a refused or failed install leaves what was there."""
    packs_dir = Path(packs_dir)
    packs_dir.mkdir(parents=True, exist_ok=True)
    _recover_interrupted(packs_dir)
    with tempfile.TemporaryDirectory(dir=packs_dir, prefix=f".unpack-{os.getpid()}-") as tmp:
        pack = load_pack(src, unpack_dir=Path(tmp))
        check_graphs(pack)
        dest = packs_dir / f"{pack.id}-{pack.version}"
        staging = packs_dir / f".{dest.name}.installing"
        old = packs_dir / f".{dest.name}.replaced"
        for leftover in (staging, old):
            shutil.rmtree(leftover, ignore_errors=True)
        try:
            shutil.copytree(pack.root, staging)
            if dest.exists():
                dest.replace(old)
            staging.replace(dest)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if old.exists() and not dest.exists():
                old.replace(dest)                 # put the previous copy back
            if isinstance(exc, OSError):          # disk full, no permission: say so, not "a bug"
                raise PackError(f"Could not copy model pack '{pack.id}' into '{packs_dir}' "
                                f"({exc.strerror or exc}). Check the free space there and that you "
                                "may write to it, then install again.",
                                detail={"pack": str(src), "file": str(packs_dir)}) from exc
            raise
        shutil.rmtree(old, ignore_errors=True)
    return verify_pack(dest, hashes=False)


def _recover_interrupted(packs_dir: Path) -> None:
    """An install killed between its two renames left the installed copy as ``.NAME.replaced``
    and nothing at ``NAME``: put it back (a finished install removes ``.NAME.replaced``). The
    unpack folders of killed installs go."""
    for path in leftovers.orphans(packs_dir, r"\.unpack-(?P<pid>\d+)-.*"):
        leftovers.remove(path)
    for old in Path(packs_dir).glob(".*.replaced"):
        dest = old.with_name(old.name[1:-len(".replaced")])
        if old.is_dir() and not dest.exists():
            log.info("restoring %s after an interrupted install", dest)
            try:
                old.replace(dest)
            except OSError:
                pass                      # another install is finishing it right now


def list_packs(packs_dir: Path) -> list[Pack | PackError]:
    """Every pack under ``packs_dir`` (manifest checked, hashes not), or the error it raised."""
    out: list[Pack | PackError] = []
    if not Path(packs_dir).is_dir():
        return out
    _recover_interrupted(packs_dir)
    for d in sorted(Path(packs_dir).iterdir()):
        if d.is_dir() and not d.name.startswith("."):
            try:
                out.append(verify_pack(d, hashes=False))
            except PackError as exc:
                out.append(exc)
    return out
