"""JPEG, PNG, WebP, BMP and GIF (and, as a fallback, TIFF) through Pillow.

Pillow parses only the header on ``Image.open``, so :meth:`PilReader.info` is cheap. Decoders are
restricted to the formats we support: Pillow would otherwise also try EPS (which runs
Ghostscript) or other rarely-audited parsers on a file that merely claims an image extension.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from backend.imaging import bands, resample, sniff
from backend.imaging import orientation as orient
from backend.imaging.failures import unreadable
from backend.imaging.info import MAX_PIXELS, WHOLE_DECODE_MAX_BYTES, ImageInfo, oriented_size

# Pillow warns above this many pixels and raises above twice as many; our own, exact limit is
# MAX_PIXELS (checked below), so Pillow's checks only back it up.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_FORMATS = {
    "JPEG": ["JPEG", "MPO"],
    "PNG": ["PNG"],
    "WEBP": ["WEBP"],
    "BMP": ["BMP", "DIB"],
    "GIF": ["GIF"],
    "TIFF": ["TIFF"],
}

# Pillow mode -> (channels, dtype name, mode to convert to before reading pixels, or None).
_MODES: dict[str, tuple[int, str, str | None]] = {
    "1": (1, "uint8", "L"),
    "L": (1, "uint8", None),
    "LA": (2, "uint8", None),
    "La": (2, "uint8", "LA"),
    "PA": (4, "uint8", "RGBA"),
    "RGB": (3, "uint8", None),
    "RGBA": (4, "uint8", None),
    "RGBa": (4, "uint8", "RGBA"),
    "RGBX": (3, "uint8", "RGB"),
    "CMYK": (3, "uint8", "RGB"),
    "YCbCr": (3, "uint8", "RGB"),
    "I;16": (1, "uint16", None),
    "I;16L": (1, "uint16", None),
    "I;16B": (1, "uint16", None),
    "I;16N": (1, "uint16", None),
    "I": (1, "int32", None),
    "F": (1, "float32", None),
}


def _mode_plan(im: Image.Image) -> tuple[int, str, str | None]:
    if im.mode == "P":
        # A palette with a transparent entry becomes RGBA (Pillow refuses a lossy P -> RGB).
        return (4, "uint8", "RGBA") if "transparency" in im.info else (3, "uint8", "RGB")
    plan = _MODES.get(im.mode)
    if plan is None:
        raise ValueError(f"unsupported pixel mode {im.mode}")
    return plan


def _exif_orientation(im: Image.Image) -> int:
    """Orientation from the EXIF block already read with the header.

    ``Image.getexif()`` would decode a whole PNG to look for an eXIf chunk after the pixel data;
    reading ``info`` only keeps probing cheap and makes probe and decode agree.
    """
    if im.format == "TIFF":
        return orient.normalize(getattr(im, "tag_v2", {}).get(0x0112, 1))
    raw = im.info.get("exif")
    if not raw:
        return 1
    exif = Image.Exif()
    try:
        exif.load(raw)
    except Exception:  # noqa: BLE001 - a damaged EXIF block must not make the image unreadable
        return 1
    return orient.normalize(exif.get(0x0112, 1))


class PilReader:
    """One open file decoded by Pillow. ``fh`` stays owned by the caller."""

    def __init__(self, fh: BinaryIO, path: Path, size: int, container: str) -> None:
        self.fh, self.path, self.size, self.container = fh, path, size, container
        # Set when Pillow stands in for tifffile (a codec tifffile lacks): if Pillow cannot
        # decode the pixels either, tifffile's reason ("needs LZW") is the useful one.
        self.codec_error: BaseException | None = None
        try:
            self.im = Image.open(fh, formats=_FORMATS[container])
        except Exception:  # noqa: BLE001 - re-raised unless the real cause is a cut-off file
            # Some parsers (WebP) fail on the header of a truncated file; say why.
            if sniff.is_truncated(fh, container, size):
                raise unreadable(path, "truncated") from None
            raise
        w, h = self.im.size
        if w * h > MAX_PIXELS:
            raise unreadable(path, "too large (decompression bomb)", extra=f"{w} x {h} pixels")
        self.orientation = _exif_orientation(self.im)
        self.pages = getattr(self.im, "n_frames", 1) if container == "TIFF" else 1

    def info(self) -> ImageInfo:
        channels, dtype, _ = _mode_plan(self.im)
        w, h = oriented_size(*self.im.size, self.orientation)
        fmt = "JPEG" if self.im.format == "MPO" else str(self.im.format)
        return ImageInfo(w, h, self.pages, channels, dtype, self.orientation, fmt)

    def check_complete(self) -> None:
        tile = self.im.tile
        offset = int(tile[0][2]) if tile else 0
        cut = sniff.is_truncated(self.fh, self.container, self.size, offset)
        if not cut and len(tile) == 1 and tile[0][0] == "raw" and isinstance(tile[0][3], tuple):
            # Uncompressed rows with a known stride (BMP): the file size tells at once.
            x0, y0, x1, y1 = tile[0][1]
            args = tile[0][3]
            stride = int(args[1]) if len(args) > 1 and isinstance(args[1], int) else 0
            cut = sniff.raw_truncated(self.size, offset, stride, y1 - y0)
        if cut:
            raise unreadable(self.path, "truncated")

    def read(self, page: int, max_side: int | None, max_pixels: int | None = None) -> tuple[np.ndarray, float]:
        """Decode ``page`` as displayed; returns ``(array, scale)``, see :mod:`resample`."""
        im: Image.Image = self.im
        if page:
            self.im.seek(page)
        w, h = im.size
        if page and w * h > MAX_PIXELS:
            raise unreadable(self.path, "too large (decompression bomb)", extra=f"{w} x {h} pixels")
        target = resample.target_size(w, h, max_side, max_pixels)
        scale = 1.0 if target is None else max(target) / max(w, h)
        _, dtype, convert = _mode_plan(im)
        if target is not None and not page:
            arr = self._read_in_bands(target, dtype, convert)
            if arr is not None:
                return orient.apply(arr, self.orientation), scale
        box: tuple[float, float, float, float] = (0, 0, w, h)
        if target is not None and self.container == "JPEG":
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: memory stays bounded and a
            # 50 MP photo decodes several times faster. ``box`` is the full image in the new grid.
            drafted = self.im.draft(None, target)
            if drafted is not None:
                box = drafted[1]
        elif target is not None:
            self._check_whole_decode(w, h, convert)
        try:
            im.load()
        except Exception as exc:  # noqa: BLE001 - re-raised, possibly as the clearer codec error
            if self.codec_error is not None:
                raise self.codec_error from exc
            raise
        if convert is not None:
            im = im.convert(convert)
        if target is not None:
            im = im.resize(target, Image.Resampling.BOX, box=box)
        arr = np.asarray(im)
        if arr.dtype != np.dtype(dtype):
            arr = arr.astype(dtype)  # big-endian I;16B, or "1" read as bool
        return orient.apply(arr, self.orientation), scale

    def _read_in_bands(self, target: tuple[int, int], dtype: str, convert: str | None) -> np.ndarray | None:
        """PNG / plain BMP reduced band by band (see :mod:`bands`); None if the file's layout
        does not allow it. Small images are decoded whole: that is faster and just as small."""
        w, h = self.im.size
        if w * h <= bands.STREAM_ABOVE_PIXELS:
            return None
        if self.container == "PNG":
            parts = bands.png_bands(self.im, self.fh, self.size)
        elif self.container == "BMP":
            parts = bands.raw_bands(self.im, self.fh)
        else:
            return None
        if parts is None:
            return None
        tw, th = target
        acc: resample.BoxAccumulator | None = None
        for y0, band in parts:
            if convert is not None:
                band = band.convert(convert)
            # Columns are reduced by Pillow's box filter (fast, in C, as the whole-image path
            # does), rows by the accumulator, which carries partial output rows across bands.
            arr = np.asarray(band.resize((tw, band.height), Image.Resampling.BOX))
            if acc is None:
                acc = resample.BoxAccumulator(h, tw, th, tw, 1 if arr.ndim == 2 else arr.shape[2])
            acc.add(arr, y0, 0)
        if acc is None:
            return None
        out = acc.result(np.dtype(dtype))
        return out[:, :, 0] if out.shape[2] == 1 else out

    def _check_whole_decode(self, w: int, h: int, convert: str | None) -> None:
        """Refuse a reduced read that would first need more than WHOLE_DECODE_MAX_BYTES: the
        decoded image plus its conversion (a palette GIF becomes RGB, 4 bytes a pixel)."""
        per_pixel = _storage(self.im.mode) + (_storage(convert) if convert else 0)
        if w * h * per_pixel > WHOLE_DECODE_MAX_BYTES:
            need = w * h * per_pixel / 2**30
            raise unreadable(
                self.path, "too large (decompression bomb)",
                extra=f"a {w} x {h} {self.container} can only be decoded whole, which needs {need:.1f} GB "
                "of memory; save it as a tiled TIFF or as JPEG",
            )


def _storage(mode: str) -> int:
    """Bytes per pixel Pillow uses for an image of ``mode``."""
    return 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
