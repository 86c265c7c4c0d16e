"""Embedding cache: image encoder outputs kept in memory and on disk, reused across sessions.

An entry is a dict of named numpy arrays (e.g. a segmenter's image embedding plus the sizes it
was computed at), filed under a key that identifies *what was encoded with what*: the sha256 of
the image file's content, the pack (``<id>@<version>``) and a variant (page, preprocessing
parameters). Moving or renaming an image keeps its embedding; editing it or switching the model
does not reuse a stale one.

* Memory: least recently used entries go first once ``memory_bytes`` is exceeded.
* Disk: one ``<key>.npz`` per entry (uncompressed: embeddings are float noise that does not
  compress, and compressing would cost CPU on a 2-core laptop), written to a temporary file and
  renamed into place. Loading never unpickles (``allow_pickle=False``). Use refreshes a file's
  modification time, and the oldest files go first once ``disk_bytes`` is exceeded. A file that
  cannot be read back (truncated by a crash, damaged) counts as a miss and is deleted.

Arrays handed out are read-only and shared by every caller; copy before modifying.
Thread-safe: background pre-encoding threads and the GUI-driven path share one instance. Disk
reads and writes happen outside the lock so a slow disk never blocks memory hits.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import ImageReadError, InvalidArgument
from backend.paths import user_data_dir

log = logging.getLogger(__name__)

_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_SUFFIX = ".npz"
_KEY_SCHEME = b"fieldmark-embedding-v1"
_STALE_TMP_S = 3600.0            # temp files older than this are leftovers of a crash

# Content hashes of image files, memoized by (path, size, mtime_ns): opening the same large
# image again must not re-read it.
_hash_memo: OrderedDict[tuple[str, int, int], str] = OrderedDict()
_hash_lock = threading.Lock()
_HASH_MEMO_MAX = 4096


def default_cache_dir() -> Path:
    """Where the app keeps embeddings unless told otherwise."""
    return user_data_dir() / "cache" / "embeddings"


def file_digest(path: Path) -> str:
    """sha256 of a file's content, streamed, memoized by (resolved path, size, mtime_ns)."""
    path = Path(path)
    st = path.stat()
    memo_key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _hash_lock:
        hit = _hash_memo.get(memo_key)
        if hit is not None:
            _hash_memo.move_to_end(memo_key)
            return hit
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    digest = h.hexdigest()
    with _hash_lock:
        _hash_memo[memo_key] = digest
        while len(_hash_memo) > _HASH_MEMO_MAX:
            _hash_memo.popitem(last=False)
    return digest


def _nbytes(arrays: dict[str, np.ndarray]) -> int:
    return sum(int(a.nbytes) for a in arrays.values())


class EmbeddingCache:
    """Two-level (memory, disk) cache of ``dict[str, np.ndarray]`` entries keyed by hex keys."""

    def __init__(self, disk_dir: Path | None, memory_bytes: int = 512 << 20,
                 disk_bytes: int = 2 << 30) -> None:
        if memory_bytes < 0 or disk_bytes < 0:
            raise InvalidArgument(f"cache sizes must be >= 0, got memory_bytes={memory_bytes}, "
                                  f"disk_bytes={disk_bytes}.")
        self.disk_dir = Path(disk_dir) if disk_dir is not None else None
        self.memory_cap = int(memory_bytes)
        self.disk_cap = int(disk_bytes)
        self._lock = threading.RLock()
        self._mem: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self._mem_bytes = 0
        self._disk: dict[str, int] = {}       # key -> file size, mirrors the folder
        self._hits = 0
        self._disk_hits = 0
        self._misses = 0
        if self.disk_dir is not None:
            self.disk_dir.mkdir(parents=True, exist_ok=True)
            self._rescan()

    # -- keys ---------------------------------------------------------------------------------

    @staticmethod
    def key(file_path: Path, pack_id: str, variant: str = "") -> str:
        """Hex key for ``file_path``'s content encoded by pack ``pack_id`` (+ ``variant``).

        Pass ``Pack.source_tag`` (``<id>@<version>``) as ``pack_id`` so that a new version of a
        pack does not reuse the old one's embeddings; ``variant`` names whatever else changes
        the encoder's input (page of a multi-page TIFF, display stretch, tile).
        """
        try:
            content = file_digest(Path(file_path))
        except OSError as exc:
            raise ImageReadError(f"Could not read '{file_path}' ({exc.strerror or exc}). Check "
                                 "that the image still exists and is readable.",
                                 detail={"file": str(file_path)}) from exc
        h = hashlib.sha256(_KEY_SCHEME)
        for part in (content, pack_id, variant):
            data = part.encode("utf-8")
            h.update(len(data).to_bytes(8, "little"))  # length-prefixed: no ambiguous joins
            h.update(data)
        return h.hexdigest()

    @staticmethod
    def _check_key(key: str) -> None:
        # Keys become file names: only our own hex digests are accepted, never a path.
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise InvalidArgument(f"cache key must be a 64-character hex digest, got {key!r}.",
                                  detail={"field": "key"})

    def _path(self, key: str) -> Path:
        if self.disk_dir is None:
            raise RuntimeError("memory-only embedding cache has no files")
        return self.disk_dir / f"{key}{_SUFFIX}"

    # -- get / put ----------------------------------------------------------------------------

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        """The entry, or None. Looks in memory, then on disk (and keeps a disk hit in memory)."""
        self._check_key(key)
        with self._lock:
            entry = self._mem.get(key)
            if entry is not None:
                self._mem.move_to_end(key)
                self._hits += 1
                return dict(entry)
        # Try the file even if our index lacks it: another app instance may have written it.
        entry = self._read(key) if self.disk_dir is not None else None
        with self._lock:
            if entry is None:
                self._misses += 1
                return None
            self._hits += 1
            self._disk_hits += 1
            self._remember(key, entry)
            return dict(entry)

    def touch(self, key: str) -> None:
        """Mark an entry as just used (callers that keep their own reference to it)."""
        with self._lock:
            if key in self._mem:
                self._mem.move_to_end(key)

    def in_memory(self, key: str) -> bool:
        with self._lock:
            return key in self._mem

    def discard(self, key: str) -> None:
        """Forget one entry, in memory and on disk (a caller found it unusable)."""
        self._check_key(key)
        with self._lock:
            old = self._mem.pop(key, None)
            if old is not None:
                self._mem_bytes -= _nbytes(old)
        if self.disk_dir is not None:
            self._delete(key)

    def put(self, key: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Store a copy of ``arrays`` in memory and on disk (numeric arrays only, no objects);
        returns the stored, read-only copy, so a caller can keep that one instead of a second."""
        self._check_key(key)
        if not isinstance(arrays, dict) or not arrays:
            raise InvalidArgument("a cache entry must be a non-empty dict of arrays.",
                                  detail={"field": "arrays"})
        entry: dict[str, np.ndarray] = {}
        for name, value in arrays.items():
            arr = np.array(value, copy=True)
            if not isinstance(name, str) or not name.isidentifier():
                raise InvalidArgument(f"cache array name {name!r} must be an identifier.",
                                      detail={"field": "arrays"})
            if arr.dtype.hasobject:
                raise InvalidArgument(f"cache array {name!r} holds Python objects; only "
                                      "numeric arrays can be cached.", detail={"field": name})
            arr.flags.writeable = False
            entry[name] = arr
        with self._lock:
            self._remember(key, entry)
        if self.disk_dir is not None and _nbytes(entry) <= self.disk_cap:
            self._write(key, entry)
        return dict(entry)

    def _remember(self, key: str, entry: dict[str, np.ndarray]) -> None:
        size = _nbytes(entry)
        old = self._mem.pop(key, None)
        if old is not None:
            self._mem_bytes -= _nbytes(old)
        if size > self.memory_cap:
            return                      # bigger than the whole memory budget: disk only
        self._mem[key] = entry
        self._mem_bytes += size
        self._evict_memory()

    # -- disk I/O -----------------------------------------------------------------------------

    def _write(self, key: str, entry: dict[str, np.ndarray]) -> int | None:
        # No fsync: this is a cache. A file torn by a crash fails its zip CRC on load and is
        # deleted then; the rename still guarantees readers never see a half-written file.
        target = self._path(key)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{key[:16]}.", suffix=".tmp")
        try:
            # The .npz layout written by hand: np.savez takes names as keyword arguments, so an
            # array called "file" or "allow_pickle" would collide with its parameters.
            with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
                for name, arr in entry.items():
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, arr, allow_pickle=False)
            size = os.path.getsize(tmp)
            if size > self.disk_cap:        # headers tipped it over: memory only, like a big one
                os.unlink(tmp)
                return None
            # Make room before the file counts, so the folder never holds more than the cap
            # (the temp file aside); once more after, for writers that raced with this one.
            self._evict_disk(reserve=size, replacing=key)
            os.replace(tmp, target)
            with self._lock:
                self._disk[key] = size
            self._evict_disk()
            return size
        except OSError as exc:          # disk full, read-only: the cache just stays in memory
            log.warning("embedding cache: could not write %s: %s", target, exc)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return None

    def _read(self, key: str) -> dict[str, np.ndarray] | None:
        path = self._path(key)
        try:
            size = path.stat().st_size
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with loaded as npz:
                entry = {name: npz[name] for name in npz.files}
            if not entry:
                raise ValueError("empty cache file")
        except FileNotFoundError:         # evicted by another thread or process meanwhile
            with self._lock:
                self._disk.pop(key, None)
            return None
        except (OSError, ValueError, EOFError, KeyError, MemoryError, zipfile.BadZipFile) as exc:
            # MemoryError: a damaged .npy header can declare an absurd shape.
            log.warning("embedding cache: dropping unreadable %s: %s", path, exc)
            self._delete(key)
            return None
        for arr in entry.values():
            arr.flags.writeable = False
        with self._lock:
            self._disk[key] = size
        try:
            os.utime(path)                  # mark as recently used for disk eviction
        except OSError:
            pass
        return entry

    def _delete(self, key: str) -> None:
        with self._lock:
            self._disk.pop(key, None)
        try:
            self._path(key).unlink()
        except OSError:
            pass

    def _rescan(self) -> list[tuple[float, str, int]]:
        """Re-read the folder (other app instances may share it); returns (mtime, key, size).
        Runs outside the lock where it can: a slow disk must not block memory hits."""
        if self.disk_dir is None:
            return []
        found: list[tuple[float, str, int]] = []
        now = time.time()
        try:
            names = os.listdir(self.disk_dir)
        except OSError:
            names = []
        for name in names:
            path = self.disk_dir / name
            try:
                st = path.stat()
            except OSError:
                continue
            if name.endswith(".tmp") and name.startswith(".") and now - st.st_mtime > _STALE_TMP_S:
                try:
                    path.unlink()
                except OSError:
                    pass
                continue
            key = name[: -len(_SUFFIX)] if name.endswith(_SUFFIX) else ""
            if _KEY_RE.match(key):
                found.append((st.st_mtime, key, st.st_size))
        with self._lock:
            self._disk = {k: s for _, k, s in found}
        return found

    # -- eviction -----------------------------------------------------------------------------

    def _evict_memory(self) -> None:
        while self._mem_bytes > self.memory_cap and self._mem:
            _, entry = self._mem.popitem(last=False)
            self._mem_bytes -= _nbytes(entry)

    def _evict_disk(self, reserve: int = 0, replacing: str | None = None) -> None:
        """Delete the least recently used files until the folder plus ``reserve`` bytes (a file
        about to replace ``replacing``'s) fits the cap. The folder is measured as it is now, not
        from this instance's index: another app instance (or the ``autolabel`` command) may be
        filling it too."""
        if self.disk_dir is None:
            return
        found = sorted(f for f in self._rescan() if f[1] != replacing)
        total = sum(size for _, _, size in found) + reserve
        for _, key, size in found:
            if total <= self.disk_cap:
                break
            self._delete(key)
            total -= size

    def evict_to_caps(self) -> None:
        """Bring memory and disk use under their caps (also done on every put)."""
        with self._lock:
            self._evict_memory()
            if self.disk_dir is not None:
                self._rescan()
                self._evict_disk()

    def clear(self) -> None:
        """Forget every entry, in memory and on disk (only this cache's own files)."""
        with self._lock:
            self._mem.clear()
            self._mem_bytes = 0
            for _, key, _ in self._rescan():
                self._delete(key)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"memory_entries": len(self._mem), "memory_bytes": self._mem_bytes,
                    "disk_entries": len(self._disk), "disk_bytes": sum(self._disk.values()),
                    "hits": self._hits, "disk_hits": self._disk_hits, "misses": self._misses,
                    "memory_cap": self.memory_cap, "disk_cap": self.disk_cap}
