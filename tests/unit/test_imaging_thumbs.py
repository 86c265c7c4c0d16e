"""Thumbnails: made once, then served from the cache without decoding; redone when the file changes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from backend.errors import ImageReadError
from backend.imaging import thumbnail, thumbnail_path


def _thumb_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG"
        return im.size


def test_thumbnail_size_and_orientation(tmp_path: Path) -> None:
    path = tmp_path / "trap.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed portrait
    Image.new("RGB", (800, 600), (90, 140, 60)).save(path, exif=exif.tobytes())
    assert _thumb_size(thumbnail(path, tmp_path / "cache", size=192)) == (144, 192)


def test_second_call_uses_cache_without_decoding(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.new("RGB", (400, 300), (200, 30, 30)).save(path)
    cache = tmp_path / "cache"
    first = thumbnail(path, cache)
    cached = thumbnail_path(path, cache)
    assert cached.read_bytes() == first
    # Same size and mtime, but garbage inside: only a cache hit can still answer.
    st = path.stat()
    path.write_bytes(b"\0" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert thumbnail(path, cache) == first
    # A real change (new mtime) is noticed: the file is decoded again and found unreadable.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(ImageReadError):
        thumbnail(path, cache)


def test_changed_file_gets_new_thumbnail(tmp_path: Path) -> None:
    path = tmp_path / "b.png"
    cache = tmp_path / "cache"
    Image.new("RGB", (100, 100), (255, 0, 0)).save(path)
    red = thumbnail(path, cache, size=64)
    Image.new("RGB", (100, 50), (0, 0, 255)).save(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    blue = thumbnail(path, cache, size=64)
    assert _thumb_size(blue) == (64, 32)
    assert np.asarray(Image.open(io.BytesIO(blue)))[16, 32, 2] > 200
    assert red != blue
    assert len(list(cache.glob("*.jpg"))) == 2
    assert not list(cache.glob(".*tmp"))  # atomic writes leave no temp files


def test_sizes_are_cached_separately_and_small_images_not_enlarged(tmp_path: Path) -> None:
    path = tmp_path / "c.png"
    Image.new("L", (50, 40), 128).save(path)
    assert _thumb_size(thumbnail(path, tmp_path, size=192)) == (50, 40)
    assert _thumb_size(thumbnail(path, tmp_path, size=32)) == (32, 26)


def test_16bit_multichannel_thumbnail_is_stretched(tmp_path: Path) -> None:
    data = np.zeros((3, 256, 256), np.uint16)
    data[1, 64:192, 64:192] = 3000  # dim green square: visible only after the stretch
    data[1] += np.random.default_rng(0).integers(0, 20, (256, 256), dtype=np.uint16)
    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    thumb = np.asarray(Image.open(io.BytesIO(thumbnail(path, tmp_path / "cache", size=64))))
    assert thumb.shape == (64, 64, 3)
    assert thumb[32, 32, 1] > 200 and thumb[2, 2, 1] < 60


def test_cache_that_cannot_be_written_still_returns_thumbnail(tmp_path: Path) -> None:
    path = tmp_path / "d.png"
    Image.new("RGB", (100, 100), (0, 200, 0)).save(path)
    blocker = tmp_path / "not_a_dir"
    blocker.write_bytes(b"x")  # the cache folder path is a file: writes fail
    assert _thumb_size(thumbnail(path, blocker, size=50)) == (50, 50)
