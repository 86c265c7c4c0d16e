"""Decode a PNG or an uncompressed BMP a band of rows at a time, for a reduced read.

Pillow decodes a whole image into memory before it can be resized; a 30,000 x 30,000 RGB PNG
would need 3.6 GB. Here only one band (~16 MB of rows) plus the reduced output are in memory.

PNG: the zlib stream is inflated here; each band of filtered scanlines is handed to Pillow's own
PNG row decoder (so filters, bit depths and palettes behave exactly as in a whole decode),
preceded by the previous band's last reconstructed row stored unfiltered, because a row's
filter refers to the row above it. To get that row back bit-exact, the band is decoded in a
lossless byte layout of the same pixel width first, then reinterpreted in Pillow's own mode.

Interlaced (Adam7) PNGs cannot be cut into row bands; :func:`png_bands` returns None for them.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
from PIL import Image

# Images with more pixels than this are reduced in bands; smaller ones are decoded whole and
# reduced in one go, which is faster and needs at most a few hundred MB.
STREAM_ABOVE_PIXELS = 32_000_000
BAND_BYTES = 16 * 2**20  # decoded bytes per band: large enough that per-band overhead is small
_READ = 2**20

# bits per pixel -> the (mode, rawmode) pairs whose PNG row decode is lossless at that width:
# Pillow's filters work on (bits + 7) // 8 bytes per pixel, so the layout must have the same bits.
_LOSSLESS: dict[int, tuple[tuple[str, str], ...]] = {
    8: (("L", "L"),),
    16: (("I;16", "I;16"),),
    24: (("RGB", "RGB"),),
    32: (("RGBA", "RGBA"),),
    # No 48/64-bit layout keeps every byte: decode the high bytes, then the low bytes.
    48: (("RGB", "RGB;16B"), ("RGB", "RGB;16L")),
    64: (("RGBA", "RGBA;16B"), ("RGBA", "RGBA;16L")),
}
_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel


def _like(im: Image.Image, band: Image.Image) -> Image.Image:
    """Give a band the palette and transparency of the whole image (what convert() uses)."""
    if band.mode in ("P", "PA"):
        palette = im.getpalette()
        if palette is not None:
            band.putpalette(palette)
    if "transparency" in im.info:
        band.info["transparency"] = im.info["transparency"]
    return band


def _stored_zlib(data: bytes) -> bytes:
    """``data`` as a zlib stream of stored (uncompressed) blocks: what ``zlib.compress(data, 0)``
    makes, ~15x faster, because only the checksum is computed."""
    view = memoryview(data)
    parts: list[bytes | memoryview] = [b"\x78\x01"]
    step = 65535
    for i in range(0, len(data), step):
        piece = view[i:i + step]
        final = 1 if i + step >= len(data) else 0
        parts += [struct.pack("<BHH", final, len(piece), len(piece) ^ 0xFFFF), piece]
    parts.append(struct.pack(">I", zlib.adler32(data)))
    return b"".join(parts)


def _rows(height: int, row_bytes: int) -> int:
    return max(1, min(height, BAND_BYTES // max(1, row_bytes)))


# -- PNG ------------------------------------------------------------------------------------

def _idat(fh: BinaryIO, size: int) -> Iterator[bytes]:
    """The concatenated IDAT payload, a piece at a time."""
    pos = 8
    while pos + 8 <= size:
        fh.seek(pos)
        length, ctype = struct.unpack(">I4s", fh.read(8))
        if ctype == b"IDAT":
            left = length
            while left > 0:
                piece = fh.read(min(left, _READ))
                if not piece:
                    raise EOFError("PNG image data ends early (truncated)")
                left -= len(piece)
                yield piece
        elif ctype == b"IEND":
            return
        pos += 12 + length
    raise EOFError("PNG without an end (truncated)")


def _filtered_rows(fh: BinaryIO, size: int, row_len: int, height: int, rows: int) -> Iterator[bytes]:
    """Inflated scanlines (filter byte + row), ``rows`` at a time (fewer at the end)."""
    inflater = zlib.decompressobj()
    pieces = _idat(fh, size)
    done = 0
    buf = bytearray()
    while done < height:
        want = min(rows, height - done) * row_len
        while len(buf) < want:
            if inflater.unconsumed_tail:
                buf += inflater.decompress(inflater.unconsumed_tail, want - len(buf))
                continue
            piece = next(pieces, None)
            if piece is None:
                raise EOFError("PNG image data ends early (truncated)")
            buf += inflater.decompress(piece, want - len(buf))
            if inflater.eof and len(buf) < want:
                raise ValueError("PNG image data is shorter than the image (damaged)")
        yield bytes(buf[:want])
        del buf[:want]
        done += want // row_len


def png_bands(im: Image.Image, fh: BinaryIO, size: int) -> Iterator[tuple[int, Image.Image]] | None:
    """``(first row, band)`` pairs covering a non-interlaced PNG, each band in ``im.mode``;
    None when the file cannot be decoded in bands (interlaced, or an unknown layout)."""
    fh.seek(8)
    length, ctype = struct.unpack(">I4s", fh.read(8))
    if ctype != b"IHDR" or length < 13:
        return None
    width, height, depth, color, _c, _f, interlace = struct.unpack(">IIBBBBB", fh.read(13))
    bits = depth * _SAMPLES.get(color, 0)
    unit_bits = max(bits, 8)  # sub-byte depths filter byte by byte, like 8-bit gray
    layouts = _LOSSLESS.get(unit_bits)
    if interlace or not bits or not layouts or (width, height) != im.size or len(im.tile) != 1:
        return None
    rawmode = im.tile[0][3]
    if not isinstance(rawmode, str):
        return None
    row_bytes = (width * bits + 7) // 8
    return _png_band_iter(im, fh, size, rawmode, layouts, row_bytes, row_bytes * 8 // unit_bits)


def _png_band_iter(im: Image.Image, fh: BinaryIO, size: int, rawmode: str,
                   layouts: tuple[tuple[str, str], ...], row_bytes: int,
                   units: int) -> Iterator[tuple[int, Image.Image]]:
    width, height = im.size
    previous = b""
    y = 0
    # Bands are sized by what Pillow holds per row (up to 4 bytes a pixel), not by the file's
    # row size: a 1-bit row of 3,750 bytes is 30,000 bytes once decoded.
    for chunk in _filtered_rows(fh, size, row_bytes + 1, height, _rows(height, max(row_bytes, 4 * width))):
        n = len(chunk) // (row_bytes + 1)
        stream = _stored_zlib((b"\x00" + previous if previous else b"") + chunk)
        rows_in = n + (1 if previous else 0)
        parts = []
        for mode, raw in layouts:
            decoded = Image.frombytes(mode, (units, rows_in), stream, "zip", raw)
            parts.append(np.frombuffer(decoded.tobytes(), np.uint8).reshape(rows_in, -1))
        if len(parts) == 2:  # high bytes, low bytes -> big-endian 16-bit samples
            data = np.stack(parts, axis=2).reshape(rows_in, row_bytes)
        else:
            data = parts[0]
        previous = data[-1].tobytes()
        band = Image.frombytes(im.mode, (width, n), data[rows_in - n:].tobytes(), "raw", rawmode)
        yield y, _like(im, band)
        y += n


# -- BMP (uncompressed rows) ----------------------------------------------------------------

def raw_bands(im: Image.Image, fh: BinaryIO) -> Iterator[tuple[int, Image.Image]] | None:
    """Bands of an image stored as plain rows with a known stride (BMP); None otherwise."""
    if len(im.tile) != 1 or im.tile[0][0] != "raw":
        return None
    _name, (x0, y0, x1, y1), offset, args = im.tile[0]
    if not isinstance(args, tuple) or len(args) != 3 or not isinstance(args[1], int) or args[1] <= 0:
        return None
    rawmode, stride, direction = args
    if (x0, y0, x1 - x0, y1 - y0) != (0, 0, *im.size) or direction not in (1, -1):
        return None
    return _raw_band_iter(im, fh, int(offset), rawmode, stride, direction)


def _raw_band_iter(im: Image.Image, fh: BinaryIO, offset: int, rawmode: str, stride: int,
                   direction: int) -> Iterator[tuple[int, Image.Image]]:
    width, height = im.size
    rows = _rows(height, max(stride, 4 * width))
    for y in range(0, height, rows):
        n = min(rows, height - y)
        # Bottom-up files (direction -1) store the last row first.
        first = y if direction == 1 else height - y - n
        fh.seek(offset + first * stride)
        data = fh.read(n * stride)
        if len(data) < n * stride:
            raise EOFError("image data ends early (truncated)")
        band = Image.frombytes(im.mode, (width, n), data, "raw", rawmode, stride, direction)
        yield y, _like(im, band)
