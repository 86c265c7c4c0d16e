"""Thumbnails, made on first request and cached on disk.

A cached thumbnail is named by a hash of (absolute path, modification time, file size, thumbnail
size, algorithm version): when the file changes, its old thumbnail is simply never asked for
again. A hit reads one small file and decodes nothing. Writes are atomic, so two workers making
the same thumbnail at once, or a crash mid-write, never leave a half-written JPEG behind.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from backend.atomic import write_bytes
from backend.errors import InvalidArgument
from backend.imaging.display import encode_jpeg
from backend.imaging.failures import from_os_error
from backend.imaging.load import load_display_scaled

# Bump when thumbnails would look different (stretch, resampling), so old caches are ignored.
_VERSION = 1
_QUALITY = 85


def thumbnail_path(path: Path, cache_dir: Path, size: int = 192) -> Path:
    """Where the thumbnail of ``path`` at its current state is (or will be) cached."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise from_os_error(path, exc) from exc
    key = f"{_VERSION}\0{os.path.abspath(path)}\0{st.st_mtime_ns}\0{st.st_size}\0{size}"
    return Path(cache_dir) / f"{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}.jpg"


def thumbnail(path: Path, cache_dir: Path, size: int = 192) -> bytes:
    """JPEG bytes of page 0 shrunk to at most ``size`` pixels on its long side (never enlarged),
    as displayed (EXIF applied; 16-bit / N-channel images with the default display stretch).

    Raises :class:`~backend.errors.ImageReadError` when the image cannot be read.
    """
    if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 2048:
        raise InvalidArgument(f"size: expected a thumbnail size from 16 to 2048 pixels, got {size!r}")
    cached = thumbnail_path(path, cache_dir, size)
    try:
        return cached.read_bytes()
    except OSError:
        pass  # not cached yet (or unreadable cache): make it
    rgb, _scale = load_display_scaled(Path(path), page=0, max_side=size)
    data = encode_jpeg(rgb, quality=_QUALITY)
    try:
        write_bytes(cached, data)
    except OSError:
        pass  # a read-only or full cache must not stop the thumbnail from being shown
    return data
