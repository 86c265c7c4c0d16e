"""Recognize a file by its first bytes, and spot truncation cheaply from its tail.

Extensions lie (a PNG saved as ``.jpg`` is common and fine), so the decoder is chosen from the
content. The truncation checks read a few bytes at the end of the file; only when the fast check
is inconclusive do they scan further (a JPEG with a trailer, e.g. a phone's motion photo).
"""

from __future__ import annotations

import mmap
import struct
from typing import BinaryIO

# container name -> predicate over the first 16 bytes
_SUPPORTED: tuple[tuple[str, tuple[bytes, ...]], ...] = (
    ("JPEG", (b"\xff\xd8\xff",)),
    ("PNG", (b"\x89PNG\r\n\x1a\n",)),
    ("GIF", (b"GIF87a", b"GIF89a")),
    ("BMP", (b"BM",)),
    ("TIFF", (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")),
)

# Recognized but not decoded: named so the message can say what the file is.
_KNOWN_OTHER: tuple[tuple[str, bytes, int], ...] = (
    ("PDF", b"%PDF", 0),
    ("JPEG 2000", b"\x00\x00\x00\x0cjP  ", 0),
    ("JPEG 2000", b"\xff\x4f\xff\x51", 0),
    ("Photoshop PSD", b"8BPS", 0),
    ("ICO", b"\x00\x00\x01\x00", 0),
    ("JPEG XL", b"\xff\x0a", 0),
    ("JPEG XL", b"\x00\x00\x00\x0cJXL ", 0),
    ("ZIP archive", b"PK\x03\x04", 0),
)


def sniff(head: bytes) -> tuple[str, str]:
    """Classify a file from its first (at least 16) bytes.

    Returns ``("ok", container)`` for a supported container, ``("unsupported", name)`` for an
    image format we recognize but do not decode, ``("not an image", "")`` otherwise.
    """
    for name, magics in _SUPPORTED:
        if any(head.startswith(m) for m in magics):
            return "ok", name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "ok", "WEBP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"mif1", b"msf1", b"heim", b"heis"):
            return "unsupported", "HEIC/HEIF"
        if brand in (b"avif", b"avis"):
            return "unsupported", "AVIF"
        return "not an image", ""
    for name, magic, offset in _KNOWN_OTHER:
        if head[offset:].startswith(magic):
            return ("not an image", "") if name in ("PDF", "ZIP archive") else ("unsupported", name)
    return "not an image", ""


def is_truncated(fh: BinaryIO, container: str, size: int, data_offset: int = 0) -> bool:
    """True when the file clearly ends before its image data does.

    ``data_offset`` is where compressed data starts (JPEG scan), so that a marker inside the EXIF
    thumbnail is not mistaken for the end of the main image. False means "not known to be
    truncated": anything this misses is found by the decoder.
    """
    if container == "JPEG":
        return _jpeg_truncated(fh, size, data_offset)
    if container == "PNG":
        return _png_truncated(fh, size)
    if container == "WEBP":
        fh.seek(4)
        (riff_size,) = struct.unpack("<I", fh.read(4))
        return riff_size + 8 > size
    if container == "TIFF":
        return _tiff_ifd_offset(fh) >= size
    if container == "GIF" and data_offset > 0:
        return _gif_truncated(fh, size, data_offset)
    return False


def raw_truncated(size: int, data_offset: int, stride: int, rows: int) -> bool:
    """True when uncompressed rows (a BMP's pixel array) need more bytes than the file has."""
    return stride > 0 and data_offset + stride * rows > size


def _tiff_ifd_offset(fh: BinaryIO) -> int:
    """Offset of the first IFD (writers often put it after the pixel data, at the end)."""
    fh.seek(0)
    head = fh.read(16)
    order = "<" if head[:2] == b"II" else ">"
    (version,) = struct.unpack(order + "H", head[2:4])
    if version == 43:  # BigTIFF
        return int(struct.unpack(order + "Q", head[8:16])[0])
    return int(struct.unpack(order + "I", head[4:8])[0])


def _tail(fh: BinaryIO, size: int, n: int) -> bytes:
    fh.seek(max(0, size - n))
    return fh.read(n)


def _jpeg_truncated(fh: BinaryIO, size: int, data_offset: int) -> bool:
    # The usual case: EOI (FF D9) at the very end, perhaps followed by padding.
    if b"\xff\xd9" in _tail(fh, size, 64):
        return False
    # Entropy-coded data never contains FF D9 (FF is stuffed as FF 00), so an EOI anywhere after
    # the scan start means the image is complete and something was appended after it.
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return mm.find(b"\xff\xd9", max(0, data_offset)) < 0


def _gif_truncated(fh: BinaryIO, size: int, data_offset: int) -> bool:
    """Walk the data sub-blocks of the first frame (the one we show) to its terminator.

    Only a byte per 256 is looked at. A cut in a later frame does not matter: it is never shown.
    """
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        pos = data_offset
        while pos < size:
            n = mm[pos]
            if n == 0:
                return False
            pos += 1 + n
        return True


def _png_truncated(fh: BinaryIO, size: int) -> bool:
    if b"IEND" in _tail(fh, size, 32):
        return False
    # Walk the chunk headers: exact, and cheap because only 8 bytes per chunk are read.
    pos = 8
    while pos + 8 <= size:
        fh.seek(pos)
        length, ctype = struct.unpack(">I4s", fh.read(8))
        end = pos + 12 + length
        if end > size:
            return True
        if ctype == b"IEND":
            return False
        pos = end
    return True
