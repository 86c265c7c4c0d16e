"""TIFF through tifffile: 8/16/32-bit and float, 1-N channels, pages, z-stacks and huge scans.

How an N-D TIFF becomes pages of H x W x C (tifffile names the axes; we assign roles):

* ``S`` (samples per pixel, e.g. RGB) is the channel axis; else ``C`` (ImageJ / OME channels).
* Without either, an unnamed axis (``Q``/``I``) of size <= 8 just before large Y and X is taken as
  channels: a microscopist's ``(C, H, W)`` array. A trailing X of size <= 8 after large unnamed
  and Y axes is a ``(H, W, C)`` array that tifffile stored as H pages of W x C rows.
* Every other axis (Z, T, unnamed pages, ...) enumerates pages, in C order. Several series
  (pages of different shapes) follow each other in the page numbering.

Planes are read IFD by IFD, so picking page 500 of a z-stack decodes only that page. When the
image is reduced for display, strips/tiles are averaged as they are decoded (and a pyramid level
is used when the file has one), so a 30,000 x 30,000 scan never needs its full size in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import tifffile

from backend.errors import InvalidArgument
from backend.imaging import orientation as orient
from backend.imaging import resample
from backend.imaging.failures import unreadable
from backend.imaging.info import MAX_PIXELS, ImageInfo, oriented_size

_UNNAMED = "QI"
_MAX_CHANNELS_FIRST = 8
_BIG = 32
_PALETTE = 3
_MINISWHITE = 0
_SEPARATED = 5  # CMYK
_ORIENTATION_TAG = 274

# Planes larger than this are reduced strip by strip / tile by tile while decoding (memory stays
# output-sized); smaller ones are decoded whole and reduced in one go, which is faster.
STREAM_ABOVE_PIXELS = 32_000_000
# Compressed bytes tifffile reads ahead while streaming (its default is 256 MiB).
_SEGMENT_BUFFER = 32 * 2**20


@dataclass(frozen=True)
class _Layout:
    """Roles of the axes of one series (positions index ``series.axes``)."""

    series: tifffile.TiffPageSeries
    shape: tuple[int, ...]
    y: int
    x: int
    c: int | None
    page_axes: tuple[int, ...]
    ifd_axes: int | None  # leading axes that enumerate IFDs; None -> read the series as a whole
    channels: int
    dtype: np.dtype
    orientation: int

    @property
    def height(self) -> int:
        return self.shape[self.y]

    @property
    def width(self) -> int:
        return self.shape[self.x]

    @property
    def pages(self) -> int:
        return math.prod(self.shape[p] for p in self.page_axes)


def _layout(series: tifffile.TiffPageSeries) -> _Layout:
    shape, axes = tuple(int(n) for n in series.shape), str(series.axes)
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"TIFF series without an image plane (axes {axes})")
    y, x = axes.index("Y"), axes.index("X")
    c: int | None = None
    if "S" in axes:
        c = axes.index("S")
    elif "C" in axes:
        c = axes.index("C")
    elif y > 0 and axes[y - 1] in _UNNAMED:
        before = y - 1
        if shape[before] <= _MAX_CHANNELS_FIRST and shape[y] >= _BIG and shape[x] >= _BIG:
            c = before
        elif shape[x] <= _MAX_CHANNELS_FIRST and shape[y] >= _BIG and shape[before] >= _BIG:
            y, x, c = before, y, x
    page_axes = tuple(i for i in range(len(axes)) if i not in (y, x, c))
    kf = series.keyframe
    n_ifd = len(axes) - len(kf.axes)
    ifd_wise = (
        n_ifd >= 0
        and axes.endswith(kf.axes)
        and math.prod(shape[:n_ifd]) == len(series.pages)
        and min(y, x) >= n_ifd
        and all(p < n_ifd for p in page_axes)
        and (c is None or c < n_ifd or axes[c] == "S")
    )
    channels = shape[c] if c is not None else 1
    dtype = np.dtype(series.dtype).newbyteorder("=")
    if dtype == np.bool_:
        dtype = np.dtype(np.uint8)
    if kf.photometric == _PALETTE and kf.colormap is not None and channels == 1:
        channels, dtype = 3, np.dtype(np.uint8)
    elif _is_cmyk(kf) and c is not None and axes[c] == "S":
        channels = 3
    tag = kf.tags.get(_ORIENTATION_TAG)
    return _Layout(
        series=series,
        shape=shape,
        y=y,
        x=x,
        c=c,
        page_axes=page_axes,
        ifd_axes=n_ifd if ifd_wise else None,
        channels=channels,
        dtype=dtype,
        orientation=orient.normalize(tag.value if tag is not None else 1),
    )


def _is_cmyk(page: tifffile.TiffPage) -> bool:
    dtype = page.dtype
    return bool(
        page.photometric == _SEPARATED and page.samplesperpixel >= 4 and dtype is not None and dtype.kind == "u"
    )


def _page_index(lay: _Layout, k: int) -> dict[int, int]:
    """Page ``k`` as a position along each page axis (C order)."""
    if not lay.page_axes:
        return {}
    coords = np.unravel_index(k, [lay.shape[p] for p in lay.page_axes])
    return {axis: int(v) for axis, v in zip(lay.page_axes, coords, strict=True)}


def _require_codec(page: tifffile.TiffPage) -> None:
    """Raise KeyError now (so the caller can fall back to Pillow) when decoding this page needs
    imagecodecs, which we do not ship: LZW and JPEG-in-TIFF are the common cases."""
    if page.compression != 1:
        tifffile.TIFF.DECOMPRESSORS[page.compression]


class TiffReader:
    """One open TIFF. ``fh`` stays owned by the caller; this object must be closed."""

    def __init__(self, fh: BinaryIO, path: Path, size: int) -> None:
        self.fh, self.path, self.size = fh, path, size
        self.tif = tifffile.TiffFile(fh)
        try:
            series = [s for s in self.tif.series if not s.keyframe.is_reduced] or list(self.tif.series)
            if not series:
                raise ValueError("TIFF without images")
            self.layouts = [_layout(s) for s in series]
            for lay in self.layouts:
                _require_codec(lay.series.keyframe)
            self._check_size(self.layouts[0])
        except BaseException:
            self.tif.close()
            raise

    def close(self) -> None:
        self.tif.close()

    def _check_size(self, lay: _Layout) -> None:
        if lay.height * lay.width > MAX_PIXELS:
            raise unreadable(self.path, "too large (decompression bomb)", extra=f"{lay.width} x {lay.height} pixels")

    def info(self) -> ImageInfo:
        lay = self.layouts[0]
        w, h = oriented_size(lay.width, lay.height, lay.orientation)
        pages = sum(x.pages for x in self.layouts)
        return ImageInfo(w, h, pages, lay.channels, lay.dtype.name, lay.orientation, "TIFF")

    def check_complete(self) -> None:
        kf = self.layouts[0].series.keyframe
        ends = [o + n for o, n in zip(kf.dataoffsets, kf.databytecounts, strict=False) if n]
        if ends and max(ends) > self.size:
            raise unreadable(self.path, "truncated")

    def read(self, page: int, max_side: int | None, max_pixels: int | None = None) -> tuple[np.ndarray, float]:
        """Decode ``page`` as displayed; returns ``(array, scale)``, see :mod:`resample`."""
        lay, k = self._locate(page)
        self._check_size(lay)
        target = resample.target_size(lay.width, lay.height, max_side, max_pixels)
        if target is None:
            arr = self._plane(lay, k)
        else:
            arr = self._plane_reduced(self._level_for(lay, max(target)), k, target)
        if arr.shape[2] == 1:
            arr = arr[:, :, 0]
        scale = 1.0 if target is None else max(target) / max(lay.width, lay.height)
        return orient.apply(arr, lay.orientation), scale

    def _locate(self, page: int) -> tuple[_Layout, int]:
        total = sum(x.pages for x in self.layouts)
        if isinstance(page, bool) or not isinstance(page, int) or not 0 <= page < total:
            raise InvalidArgument(f"page: expected 0 to {total - 1} for {self.path.name}, got {page!r}")
        for lay in self.layouts:
            if page < lay.pages:
                return lay, page
            page -= lay.pages
        raise AssertionError("unreachable: page was range-checked")

    def _level_for(self, lay: _Layout, long_side: int) -> _Layout:
        """The smallest pyramid level still at least ``long_side`` on its long side."""
        best = lay
        for level in lay.series.levels[1:]:
            try:
                cand = _layout(level)
            except ValueError:
                break
            same = (cand.channels, cand.pages, cand.c is None) == (lay.channels, lay.pages, lay.c is None)
            if not same or max(cand.width, cand.height) < long_side:
                break
            best = cand
        return best

    # -- decoding -------------------------------------------------------------------------

    def _ifds(self, lay: _Layout, k: int) -> list[int]:
        """IFD indices (within the series) holding page ``k``, one per channel when the channels
        are stored as separate IFDs."""
        n_ifd = lay.ifd_axes or 0
        lead = lay.shape[:n_ifd]
        base = [0] * n_ifd
        for axis, v in _page_index(lay, k).items():
            base[axis] = v
        if lay.c is not None and lay.c < n_ifd:
            out = []
            for cv in range(lay.shape[lay.c]):
                idx = list(base)
                idx[lay.c] = cv
                out.append(int(np.ravel_multi_index(idx, lead)))
            return out
        return [int(np.ravel_multi_index(base, lead))] if n_ifd else [0]

    def _plane(self, lay: _Layout, k: int) -> np.ndarray:
        if lay.ifd_axes is None:
            return self._convert(lay, self._plane_from_series(lay, k))
        parts = [self._convert(lay, self._ifd_array(lay, i)) for i in self._ifds(lay, k)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)

    def _plane_reduced(self, lay: _Layout, k: int, target: tuple[int, int]) -> np.ndarray:
        tw, th = target
        kf = lay.series.keyframe
        planar_cmyk = _is_cmyk(kf) and kf.planarconfig == 2  # needs all inks at once to convert
        if lay.ifd_axes is None or planar_cmyk or lay.width * lay.height <= STREAM_ABOVE_PIXELS:
            return resample.box_downscale(self._plane(lay, k), tw, th)
        acc = resample.BoxAccumulator(lay.height, lay.width, th, tw, lay.channels)
        ifds = self._ifds(lay, k)
        per_ifd = lay.channels // len(ifds)
        for n, i in enumerate(ifds):
            page = lay.series.pages[i]
            if page is None:  # missing IFD (OME): stays black
                continue
            if isinstance(page, tifffile.TiffFrame):
                page = page.aspage()
            for data, index, _shape in page.segments(buffersize=_SEGMENT_BUFFER):
                if data is not None:
                    # index = (separate sample, depth, y, x, contiguous sample); planar TIFFs
                    # deliver one sample per segment, contiguous ones all samples at once.
                    acc.add(self._convert(lay, data[0]), index[2], index[3], n * per_ifd + index[0])
        return acc.result(lay.dtype)

    def _ifd_array(self, lay: _Layout, i: int) -> np.ndarray:
        """IFD ``i`` of the series as H x W x S."""
        kf = lay.series.keyframe
        page = lay.series.pages[i]
        if page is None:
            return np.zeros((lay.height, lay.width, 1), dtype=kf.dtype)
        arr = page.asarray()
        if kf.axes.startswith("S"):
            return np.moveaxis(arr, 0, -1)
        return arr if arr.ndim == 3 else arr[:, :, None]

    def _plane_from_series(self, lay: _Layout, k: int) -> np.ndarray:
        series = lay.series
        data: np.ndarray
        if series.dataoffset is not None:
            # Uncompressed and contiguous: map the file instead of reading every page.
            data = np.memmap(self.path, dtype=series.dtype, mode="r", offset=series.dataoffset, shape=lay.shape)
        else:
            data = series.asarray()
        index: list[int | slice] = [slice(None)] * len(lay.shape)
        for axis, v in _page_index(lay, k).items():
            index[axis] = v
        plane = data[tuple(index)]
        kept = [a for a in range(len(lay.shape)) if a not in lay.page_axes]
        order = [kept.index(lay.y), kept.index(lay.x)] + ([kept.index(lay.c)] if lay.c is not None else [])
        plane = np.transpose(plane, order)
        return np.array(plane if plane.ndim == 3 else plane[:, :, None])

    def _convert(self, lay: _Layout, arr: np.ndarray) -> np.ndarray:
        """Stored samples (H x W x S) -> what read_array promises: native byte order, bool as
        0/255, palette as RGB, min-is-white inverted."""
        kf = lay.series.keyframe
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8) * 255
        if kf.photometric == _PALETTE and kf.colormap is not None and arr.shape[2] == 1:
            cmap = np.asarray(kf.colormap)
            cmap = (cmap >> 8 if cmap.max() > 255 else cmap).astype(np.uint8)  # 16-bit TIFF colormap
            arr = np.moveaxis(cmap[:, np.clip(arr[:, :, 0], 0, cmap.shape[1] - 1)], 0, -1)
        elif kf.photometric == _MINISWHITE and arr.dtype.kind == "u":
            arr = np.iinfo(arr.dtype).max - arr
        elif _is_cmyk(kf) and arr.shape[2] >= 4:
            # Naive ink model (no ICC profile), as Pillow does: R = (1 - C)(1 - K), ...
            top = float(np.iinfo(arr.dtype).max)
            ink = arr[:, :, :4].astype(np.float32) / top
            rgb = (1 - ink[:, :, :3]) * (1 - ink[:, :, 3:4]) * top
            arr = np.rint(rgb).astype(arr.dtype)
        return arr.astype(lay.dtype, copy=False)
