"""A folder's worth of files a labeler really meets: broken, disguised, unusual or enormous.

Each kind is one :class:`Kind`: a builder that writes the file into a folder, and what the app
must do with it: show it (``shows`` = its displayed width x height) or refuse it with
``reason`` (one of :data:`backend.imaging.failures.REASONS`). Builders write small files (a few
kB, the "enormous" ones only claim their size) so the whole table is cheap to make.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

W, H = 64, 48


@dataclass(frozen=True)
class Kind:
    name: str  # the file name in the folder
    make: Callable[[Path], None]  # writes the file at the given path
    reason: str | None = None  # expected refusal; None: the image shows
    shows: tuple[int, int] = (W, H)  # displayed width x height when it shows
    plane: int | None = None  # the source channel a one-channel file was made from
    likeness: float = 0.6  # least correlation of the shown brightness with the source's


def picture(w: int = W, h: int = H, seed: int = 0) -> np.ndarray:
    """Gradients plus a little noise: a recognizable picture that does not compress to nothing."""
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    tint = rng.integers(0, 255, 3)
    base = np.stack([xx * 3 + tint[0], yy * 4 + tint[1], xx + yy + tint[2]], axis=-1) % 200
    return (base + rng.integers(0, 40, base.shape)).astype(np.uint8)


def encoded(fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(picture()).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _write(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _cut(fmt: str, fraction: float) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        whole = encoded(fmt)
        path.write_bytes(whole[: max(1, int(len(whole) * fraction))])
    return make


def _zero_tail(fmt: str) -> Callable[[Path], None]:
    """A half-copied file from a USB stick: full size on disk, but the second half never written."""
    def make(path: Path) -> None:
        whole = encoded(fmt)
        half = len(whole) // 2
        path.write_bytes(whole[:half] + bytes(len(whole) - half))
    return make


def _pil(mode: str, fmt: str, **kwargs: object) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        im = Image.fromarray(picture())
        if mode == "P":
            im = im.quantize(16)
        elif mode == "1":
            im = im.convert("L").point(lambda v: 255 if v > 128 else 0).convert("1")
        elif mode != "RGB":
            im = im.convert(mode)
        im.save(path, format=fmt, **kwargs)
    return make


def _palette_with_transparency(path: Path) -> None:
    im = Image.fromarray(picture()).quantize(16)
    im.save(path, format="PNG", transparency=0)


def _animated(fmt: str, **kwargs: object) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        frames = [Image.fromarray(picture(seed=s)) for s in range(3)]
        frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=80, loop=0, **kwargs)
    return make


def _gray16_png(path: Path) -> None:
    Image.fromarray(picture()[:, :, 0].astype(np.uint16) * 257).save(path, format="PNG")


def _rgb16_png(path: Path) -> None:
    """16 bits per sample RGB, as scanners and raw converters write: Pillow cannot save it, so
    the PNG is assembled by hand."""
    rows = (picture().astype(">u2") * 257).reshape(H, W * 3)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    path.write_bytes(png_bytes(W, H, 16, 2, zlib.compress(raw)))


def _tiff(data: np.ndarray, **kwargs: object) -> Callable[[Path], None]:
    return lambda path: tifffile.imwrite(path, data, **kwargs)


def _cmyk_tiff(path: Path) -> None:
    cmyk = np.asarray(Image.fromarray(picture()).convert("CMYK"))
    tifffile.imwrite(path, cmyk, photometric="separated")


def png_chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def png_bytes(width: int, height: int, depth: int, color: int, idat: bytes, interlace: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def _png_claiming(width: int, height: int) -> Callable[[Path], None]:
    return _write(png_bytes(width, height, 8, 0, zlib.compress(b"\0" * 64)))


def _gif_claiming(side: int) -> Callable[[Path], None]:
    """A GIF whose screen and image descriptors claim ``side`` x ``side`` over tiny data."""
    def make(path: Path) -> None:
        whole = bytearray(encoded("GIF"))
        whole[6:10] = struct.pack("<HH", side, side)
        # The image descriptor (after the global colour table) carries the size Pillow uses.
        at = whole.index(b"\x2c", 13 + 3 * 2 ** ((whole[10] & 7) + 1))
        whole[at + 5: at + 9] = struct.pack("<HH", side, side)
        path.write_bytes(bytes(whole))
    return make


def _jpeg_claiming(path: Path) -> None:
    """A JPEG whose frame header (SOF0) claims 65,000 x 65,000 pixels."""
    whole = bytearray(encoded("JPEG"))
    at = whole.index(b"\xff\xc0")
    whole[at + 5: at + 9] = struct.pack(">HH", 65000, 65000)
    path.write_bytes(bytes(whole))


def _tiff_claiming(path: Path) -> None:
    """A strip TIFF whose IFD claims 60,000 x 60,000 pixels (3.6 GP), with 1 strip of data."""
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8))
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        for name in ("ImageWidth", "ImageLength"):
            tag = tags[name]
            fmt = "<I" if tag.dtype == 4 else "<H"
            value = 60_000 if fmt == "<I" else 60_000  # fits both SHORT and LONG
            raw[tag.valueoffset: tag.valueoffset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(raw))


def _tiff_ifd_beyond_end(path: Path) -> None:
    """Header says the first IFD is at an offset past the end of the file (cut-off copy)."""
    whole = bytearray(encoded("TIFF"))
    whole[4:8] = struct.pack("<I", len(whole) + 10_000)
    path.write_bytes(bytes(whole))


def _tiff_garbage_ifd(path: Path) -> None:
    """The IFD the header points to is noise: entry counts and offsets that make no sense."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 255, 600, dtype=np.uint8).tobytes()
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + b"\xff\x7f" + noise)


def _tiff_strip_offset_beyond_end(path: Path) -> None:
    """A well-formed IFD whose pixel strip lies beyond the end of the file."""
    tifffile.imwrite(path, picture(), photometric="rgb")
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[0].tags["StripOffsets"]
        if tag.count != 1:
            raise RuntimeError("expected one strip")
        raw[tag.valueoffset: tag.valueoffset + 4] = struct.pack("<I", len(raw) + 50_000)
    path.write_bytes(bytes(raw))


def _png_bad_crc(path: Path) -> None:
    whole = bytearray(encoded("PNG"))
    whole[29] ^= 0xFF  # last byte of the IHDR checksum
    path.write_bytes(bytes(whole))


def _png_zero_width(path: Path) -> None:
    path.write_bytes(png_bytes(0, H, 8, 0, zlib.compress(b"\0" * H)))


def _png_damaged_data(path: Path) -> None:
    """Complete file (IEND present), but the compressed pixel data in the middle is noise."""
    raw = b"".join(b"\x00" + bytes(range(W)) for _ in range(H))
    good = zlib.compress(raw)
    bad = good[:10] + bytes((b ^ 0x5A) for b in good[10:-4]) + good[-4:]
    path.write_bytes(png_bytes(W, H, 8, 0, bad))


def _jpeg_damaged_scan(path: Path) -> None:
    """Complete JPEG (ends with EOI) whose scan data was overwritten with marker garbage."""
    whole = bytearray(encoded("JPEG"))
    start = whole.index(b"\xff\xda") + 20
    whole[start: start + 200] = b"\xff\xc0" * 100
    path.write_bytes(bytes(whole))


def _bmp_bad_depth(path: Path) -> None:
    """A BMP whose header claims 13 bits per pixel (no such thing)."""
    whole = bytearray(encoded("BMP"))
    whole[28:30] = struct.pack("<H", 13)
    path.write_bytes(bytes(whole))


def _html(path: Path) -> None:
    path.write_text('<!DOCTYPE html><html><body><img src="x.png"><script>alert(1)</script></body></html>\n')


def _exif_orientation_9(path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 9  # out of range: must be treated as "no rotation"
    Image.fromarray(picture()).save(path, format="JPEG", exif=exif.tobytes())


def _float_tiff_all_nan(path: Path) -> None:
    tifffile.imwrite(path, np.full((H, W), np.nan, np.float32))


GOOD_KINDS: list[Kind] = [
    Kind("png_named.jpg", _write(encoded("PNG"))),
    Kind("jpeg_named.png", _write(encoded("JPEG"))),
    Kind("jpeg_named.tif", _write(encoded("JPEG"))),
    Kind("cmyk.jpg", _pil("CMYK", "JPEG")),
    Kind("cmyk.tif", _cmyk_tiff),
    Kind("gray16.png", _gray16_png, plane=0),
    Kind("rgb16.png", _rgb16_png),
    Kind("gray16.tif", _tiff(picture()[:, :, 0].astype(np.uint16) * 257), plane=0),
    Kind("rgb16.tif", _tiff(picture().astype(np.uint16) * 257, photometric="rgb")),
    Kind("float_nan.tif", _float_tiff_all_nan),
    Kind("palette.png", _pil("P", "PNG")),
    Kind("palette_transparent.png", _palette_with_transparency),
    Kind("palette.gif", _pil("P", "GIF")),
    Kind("palette.bmp", _pil("P", "BMP")),
    Kind("bilevel.png", _pil("1", "PNG"), likeness=0.4),  # black and white only: a coarse likeness
    Kind("bilevel.tif", _pil("1", "TIFF"), likeness=0.4),
    Kind("gray_alpha.png", _pil("LA", "PNG")),
    Kind("animated.gif", _animated("GIF")),
    Kind("animated.png", _animated("PNG")),
    Kind("animated.webp", _animated("WEBP", lossless=True)),
    Kind("exif_orientation_9.jpg", _exif_orientation_9),
]

BAD_KINDS: list[Kind] = [
    Kind("zero_bytes.jpg", _write(b""), "zero bytes"),
    *(Kind(f"usb_cut_{int(f * 100):02d}.jpg", _cut("JPEG", f), "truncated") for f in (0.02, 0.3, 0.6, 0.97)),
    *(Kind(f"usb_cut_{int(f * 100):02d}.png", _cut("PNG", f), "truncated") for f in (0.15, 0.3, 0.6, 0.9)),
    Kind("usb_cut_50.webp", _cut("WEBP", 0.5), "truncated"),
    Kind("usb_cut_50.gif", _cut("GIF", 0.5), "truncated"),
    Kind("usb_cut_50.bmp", _cut("BMP", 0.5), "truncated"),
    Kind("usb_cut_50.tif", _cut("TIFF", 0.5), "truncated"),
    Kind("usb_zero_tail.jpg", _zero_tail("JPEG"), "truncated"),
    Kind("usb_zero_tail.png", _zero_tail("PNG"), "truncated"),
    Kind("notes.png", _write(b"field notes: 3 moths, 1 beetle\n" * 10), "not an image"),
    Kind("saved_page.png", _html, "not an image"),
    Kind("noise.jpg", _write(np.random.default_rng(3).integers(0, 255, 4000, dtype=np.uint8).tobytes()),
         "not an image"),
    Kind("report.jpg", _write(b"%PDF-1.7\n" + bytes(300)), "not an image"),
    Kind("iphone.jpg", _write(b"\x00\x00\x00\x18ftypheic" + bytes(300)), "unsupported format"),
    Kind("bomb.png", _png_claiming(100_000, 100_000), "too large (decompression bomb)"),
    Kind("bomb.gif", _gif_claiming(65_535), "too large (decompression bomb)"),
    # Within the pixel limit, but GIF can only be decoded whole: 4 GB as RGB. Found on display.
    Kind("huge.gif", _gif_claiming(30_000), "too large (decompression bomb)"),
    Kind("bomb.jpg", _jpeg_claiming, "too large (decompression bomb)"),
    Kind("bomb.tif", _tiff_claiming, "too large (decompression bomb)"),
    Kind("ifd_beyond_end.tif", _tiff_ifd_beyond_end, "truncated"),
    Kind("garbage_ifd.tif", _tiff_garbage_ifd, "corrupt"),
    Kind("strip_beyond_end.tif", _tiff_strip_offset_beyond_end, "truncated"),
    Kind("bad_crc.png", _png_bad_crc, "corrupt"),
    Kind("zero_width.png", _png_zero_width, "corrupt"),
    Kind("damaged_data.png", _png_damaged_data, "corrupt"),
    Kind("damaged_scan.jpg", _jpeg_damaged_scan, "corrupt"),
    Kind("bad_depth.bmp", _bmp_bad_depth, "corrupt"),
]

ALL_KINDS = GOOD_KINDS + BAD_KINDS


def write_all(folder: Path, kinds: list[Kind] = ALL_KINDS) -> dict[str, Kind]:
    folder.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        kind.make(folder / kind.name)
    return {k.name: k for k in kinds}
