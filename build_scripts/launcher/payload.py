"""The one-folder app packed into one blob, and that blob found again inside the single file.

Layout of the blob (all offsets in the index are relative to the start of the data section):

    b"FMAPPPK1" | u64 LE index length | index (zlib-compressed JSON) | data

The index lists every directory, symbolic link (PyInstaller 6 links libraries on POSIX) and
file with its mode, size and chunks; each chunk (at most ``CHUNK`` bytes uncompressed) is
deflated on its own, so packing and unpacking use every core (zlib's own checksum catches a
damaged single file while unpacking). ``build_id`` is a SHA-256 of every path, mode, link target and
file content: two builds with different contents never share a cache folder.

The blob is stored in PyInstaller's CArchive with the ``PKG`` type code, which the bootloader
never unpacks; ``locate`` finds it by reading the archive's cookie and table of contents the
way PyInstaller's ``CArchiveReader`` does (the tests check both agree on a real build).
"""

from __future__ import annotations

import json
import os
import stat
import struct
import threading
import zlib
from functools import partial
from pathlib import Path
from typing import Any

MAGIC = b"FMAPPPK1"
ENTRY_NAME = "fieldmark-app"  # the CArchive entry that holds the blob
CHUNK = 8 << 20
FORMAT = 1

_COOKIE_MAGIC = b"MEI\014\013\012\013\016"
_COOKIE = struct.Struct("!8sIIII64s")
_TOC_ENTRY = struct.Struct("!IIIIBc")


class PayloadError(Exception):
    """The single file is damaged or is not a Fieldmark single file."""


# -- building ------------------------------------------------------------------------------------

def _walk(src: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        here = Path(dirpath)
        for d in list(dirnames):
            if (here / d).is_symlink():  # a link to a folder is stored as a link, not walked
                dirnames.remove(d)
                filenames.append(d)
        out.append(here)
        out.extend(here / f for f in sorted(filenames))
    return out


def _pack(piece: bytes) -> bytes:
    return zlib.compress(piece, 6)


def write_payload(src: Path, out: Path, *, version: str, exe_name: str, workers: int | None = None) -> dict[str, Any]:
    """Pack the folder ``src`` (a one-folder app) into ``out``; returns the index."""
    import hashlib  # build side only: the launcher itself needs none of these
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    src = src.resolve()
    if not (src / exe_name).is_file():
        raise SystemExit(f"{src}: no app executable {exe_name} in it; build the one-folder app first")
    digest = hashlib.sha256()
    entries: list[dict[str, Any]] = []
    data_path = out.with_name(out.name + ".data")
    pending: deque[tuple[dict[str, Any], list[Any]]] = deque()  # files whose chunks are being deflated
    state = {"pos": 0, "inflight": 0}

    def drain(limit: int) -> None:  # write finished files in order until at most `limit` bytes wait
        while pending and state["inflight"] > limit:
            entry, futures = pending.popleft()
            for fut in futures:
                packed = fut.result()
                data.write(packed)
                ulen = min(CHUNK, entry["size"] - CHUNK * len(entry["chunks"]))
                entry["chunks"].append([state["pos"], len(packed), ulen])
                state["pos"] += len(packed)
            state["inflight"] -= entry["size"]

    with ThreadPoolExecutor(workers or os.cpu_count() or 2) as pool, open(data_path, "wb") as data:
        for path in _walk(src):
            rel = path.relative_to(src).as_posix()
            if rel == ".":
                continue
            meta = path.lstat()
            digest.update(rel.encode() + b"\0")
            if stat.S_ISLNK(meta.st_mode):
                target = os.readlink(path)
                if os.path.isabs(target) or not (path.parent / target).resolve().is_relative_to(src):
                    raise SystemExit(f"{path}: link to {target} leaves the app folder; the single file cannot hold it")
                digest.update(b"L" + target.encode() + b"\0")
                entries.append({"path": rel, "type": "l", "target": target})
            elif stat.S_ISDIR(meta.st_mode):
                digest.update(b"D\0")
                entries.append({"path": rel, "type": "d"})
            else:
                mode = stat.S_IMODE(meta.st_mode) | 0o600
                raw = path.read_bytes()
                digest.update(b"F%o\0" % mode + raw)
                entry = {"path": rel, "type": "f", "mode": mode, "size": len(raw), "chunks": []}
                entries.append(entry)
                pending.append((entry, [pool.submit(_pack, raw[i:i + CHUNK]) for i in range(0, len(raw), CHUNK)]))
                state["inflight"] += len(raw)
                drain(256 << 20)  # bounded memory: at most ~256 MB read ahead
        drain(-1)
    index = {"format": FORMAT, "build_id": digest.hexdigest(), "version": version, "exe": exe_name,
             "entries": entries}
    blob = zlib.compress(json.dumps(index, separators=(",", ":")).encode(), 9)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as f, open(data_path, "rb") as data:
        f.write(MAGIC + struct.pack("<Q", len(blob)) + blob)
        while block := data.read(1 << 24):
            f.write(block)
    os.replace(tmp, out)
    data_path.unlink()
    return index


# -- finding it again in the single file -----------------------------------------------------------

def _find_cookie(f: Any, size: int) -> int:
    """Offset of PyInstaller's archive cookie: the LAST occurrence of its magic in the file."""
    end = size
    while end >= len(_COOKIE_MAGIC):
        start = max(end - 65536, 0)
        f.seek(start)
        pos = f.read(end - start).rfind(_COOKIE_MAGIC)
        if pos != -1:
            return start + pos
        if start == 0:
            break
        end = start + len(_COOKIE_MAGIC) - 1
    raise PayloadError("no PyInstaller archive in it")


def locate(exe: Path, name: str = ENTRY_NAME) -> tuple[int, int]:
    """(absolute offset, length) of the archive entry ``name`` in the executable ``exe``."""
    with open(exe, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        cookie_at = _find_cookie(f, size)
        f.seek(cookie_at)
        _magic, pkg_len, toc_off, toc_len, _py, _lib = _COOKIE.unpack(f.read(_COOKIE.size))
        pkg_start = cookie_at + _COOKIE.size - pkg_len
        f.seek(pkg_start + toc_off)
        toc = f.read(toc_len)
    at = 0
    while at + _TOC_ENTRY.size <= len(toc):
        entry_len, offset, length, _ulen, flag, _code = _TOC_ENTRY.unpack_from(toc, at)
        if entry_len <= _TOC_ENTRY.size:
            break
        entry = toc[at + _TOC_ENTRY.size:at + entry_len].rstrip(b"\0").decode("utf-8", "replace")
        if entry == name:
            if flag:
                raise PayloadError(f"archive entry {name} is compressed; the build stores it as is")
            return pkg_start + offset, length
        at += entry_len
    raise PayloadError(f"no {name} entry in its archive")


def read_index(exe: Path, offset: int) -> tuple[dict[str, Any], int]:
    """The index and the absolute offset of the data section of the blob at ``offset``."""
    with open(exe, "rb") as f:
        f.seek(offset)
        head = f.read(16)
        if len(head) != 16 or head[:8] != MAGIC:
            raise PayloadError("the packed app has no valid header")
        (n,) = struct.unpack("<Q", head[8:])
        try:
            index = json.loads(zlib.decompress(f.read(n)))
        except (zlib.error, ValueError) as exc:
            raise PayloadError(f"the packed app's index is damaged ({exc})") from exc
    if index.get("format") != FORMAT:
        raise PayloadError(f"packed app format {index.get('format')} (this launcher reads {FORMAT})")
    return index, offset + 16 + n


def open_payload(exe: Path) -> tuple[dict[str, Any], int]:
    """The index and data offset of the app packed into the single file ``exe``."""
    offset, _length = locate(exe)
    return read_index(exe, offset)


# -- unpacking ----------------------------------------------------------------------------------

def _parallel(tasks: list[Any], workers: int) -> None:
    """Run callables on ``workers`` threads (zlib and file writes release the GIL); re-raise the first error."""
    lock = threading.Lock()
    errors: list[BaseException] = []
    queue = list(reversed(tasks))

    def work() -> None:
        while True:
            with lock:
                if errors or not queue:
                    return
                task = queue.pop()
            try:
                task()
            except BaseException as exc:  # noqa: BLE001 (handed to the caller below)
                with lock:
                    errors.append(exc)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def extract(exe: Path, index: dict[str, Any], data_at: int, dest: Path, workers: int | None = None) -> None:
    """Unpack every entry of ``index`` into the (new, empty) folder ``dest``."""
    dest.mkdir(parents=True)
    jobs: list[tuple[int, Any]] = []
    for e in index["entries"]:
        target = dest / e["path"]
        if e["type"] == "d":
            target.mkdir(parents=True, exist_ok=True)
        elif e["type"] == "l":
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(e["target"], target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as f:
                f.truncate(e["size"])
            start = 0
            for off, clen, ulen in e["chunks"]:
                jobs.append((ulen, partial(_unpack_chunk, exe, data_at + off, clen, ulen, target, start)))
                start += ulen
    # The biggest chunks first, so that no big one starts last while the other threads idle.
    jobs.sort(key=lambda j: -j[0])
    _parallel([job for _, job in jobs], workers or min(4, os.cpu_count() or 2))
    for e in index["entries"]:
        if e["type"] == "f":
            os.chmod(dest / e["path"], e["mode"])


def _unpack_chunk(exe: Path, at: int, clen: int, ulen: int, target: Path, start: int) -> None:
    with open(exe, "rb") as f:
        f.seek(at)
        packed = f.read(clen)
    try:  # a zlib stream carries its own checksum (Adler-32): a damaged chunk fails here
        raw = zlib.decompress(packed)
    except zlib.error as exc:
        raise PayloadError(f"the packed app is damaged at {target.name} ({exc})") from exc
    if len(raw) != ulen:
        raise PayloadError(f"the packed app is damaged at {target.name} ({len(raw)} bytes, expected {ulen})")
    with open(target, "r+b") as f:
        f.seek(start)
        f.write(raw)


def read_file(exe: Path, index: dict[str, Any], data_at: int, path: str) -> bytes:
    """The content of one packed file (for checks of a build; the launcher unpacks everything)."""
    entry = next((e for e in index["entries"] if e["path"] == path and e["type"] == "f"), None)
    if entry is None:
        raise PayloadError(f"no file {path} in the packed app")
    with open(exe, "rb") as f:
        parts = []
        for off, clen, _ulen in entry["chunks"]:
            f.seek(data_at + off)
            parts.append(zlib.decompress(f.read(clen)))
    return b"".join(parts)


def problems(dest: Path, index: dict[str, Any]) -> list[str]:
    """What is missing or of the wrong size in an unpacked app (cheap: one lstat per entry)."""
    out = []
    for e in index["entries"]:
        path = dest / e["path"]
        try:
            meta = path.lstat()
        except OSError:
            out.append(f"{e['path']}: missing")
            continue
        if e["type"] == "f" and (not stat.S_ISREG(meta.st_mode) or meta.st_size != e["size"]):
            out.append(f"{e['path']}: {meta.st_size} bytes, expected {e['size']}")
        elif e["type"] == "l" and not stat.S_ISLNK(meta.st_mode):
            out.append(f"{e['path']}: not a link")
        elif e["type"] == "d" and not stat.S_ISDIR(meta.st_mode):
            out.append(f"{e['path']}: not a folder")
    return out
