"""Files that cannot be read are reported with a reason a person understands; sound files are not."""

from __future__ import annotations

import builtins
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from backend.errors import ImageReadError, InvalidArgument
from backend.imaging import load_display, probe, read_array


def _reason(exc: pytest.ExceptionInfo[ImageReadError]) -> str:
    return str(exc.value.detail["reason"])


def _photo(path: Path, size: tuple[int, int] = (320, 240), fmt: str | None = None) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, format=fmt)
    return path


def _png_chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny, well-formed PNG whose header claims ``width`` x ``height`` gray pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def _tiff_claiming(path: Path, width: int, height: int, tile: int = 1024) -> Path:
    """A few-kB deflate-tiled gray TIFF of ``width`` x ``height``: every tile entry points at one
    shared compressed all-zero tile (legal TIFF, decodable, tiny on disk)."""
    blob = zlib.compress(bytes(tile * tile))
    n_tiles = -(-width // tile) * -(-height // tile)
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 8),
        (262, 3, 1, 1),
        (277, 3, 1, 1),
        (322, 3, 1, tile),
        (323, 3, 1, tile),
        (324, 4, n_tiles, None),
        (325, 4, n_tiles, None),
    ]
    ifd_at = 8
    ifd_size = 2 + 12 * len(entries) + 4
    offsets_at = ifd_at + ifd_size
    counts_at = offsets_at + 4 * n_tiles
    blob_at = counts_at + 4 * n_tiles
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_at) + struct.pack("<H", len(entries)))
    for tag, typ, count, value in entries:
        if tag == 324:
            value = offsets_at
        elif tag == 325:
            value = counts_at
        fmt = "<HHII" if typ == 4 or count > 1 else "<HHIHxx"
        out += struct.pack(fmt, tag, typ, count, value)
    out += struct.pack("<I", 0)
    out += struct.pack(f"<{n_tiles}I", *([blob_at] * n_tiles))
    out += struct.pack(f"<{n_tiles}I", *([len(blob)] * n_tiles))
    out += blob
    path.write_bytes(bytes(out))
    return path


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError) as exc:
        probe(path)
    assert _reason(exc) == "zero bytes"
    assert "empty.jpg" in exc.value.message and "zero bytes" in exc.value.message


@pytest.mark.parametrize("ext,fmt", [(".jpg", "JPEG"), (".png", "PNG"), (".webp", "WEBP"), (".tif", "TIFF")])
def test_truncated_file_is_reported_by_probe_and_read(tmp_path: Path, ext: str, fmt: str) -> None:
    whole = _photo(tmp_path / f"whole{ext}", fmt=fmt).read_bytes()
    path = tmp_path / f"cut{ext}"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    for call in (probe, read_array):
        with pytest.raises(ImageReadError) as exc:
            call(path)
        assert _reason(exc) == "truncated", (call.__name__, exc.value.message)
        assert f"cut{ext}" in exc.value.message


def test_jpeg_with_trailing_data_after_end_marker_is_fine(tmp_path: Path) -> None:
    # Phones append e.g. a motion-photo video after the JPEG's end marker.
    path = _photo(tmp_path / "motion.jpg")
    rng = np.random.default_rng(1)
    trailer = rng.integers(0, 255, 200_000, dtype=np.uint8).tobytes().replace(b"\xff\xd9", b"\xff\x00")
    with path.open("ab") as fh:
        fh.write(trailer)
    assert probe(path).width == 320
    assert read_array(path).shape == (240, 320, 3)


def test_text_file_named_jpg_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("field notes: 3 moths, 1 beetle\n" * 20)
    with pytest.raises(ImageReadError) as exc:
        probe(path)
    assert _reason(exc) == "not an image"
    assert "notes.jpg" in exc.value.message


@pytest.mark.parametrize(
    "head,name",
    [(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIC"), (b"8BPS\x00\x01" + bytes(20), "Photoshop")],
)
def test_known_but_unsupported_format_is_named(tmp_path: Path, head: bytes, name: str) -> None:
    path = tmp_path / "IMG_0001.jpg"
    path.write_bytes(head + bytes(100))
    with pytest.raises(ImageReadError) as exc:
        probe(path)
    assert _reason(exc) == "unsupported format"
    assert name in exc.value.message


def test_unsupported_extension(tmp_path: Path) -> None:
    path = _photo(tmp_path / "photo.png").rename(tmp_path / "photo.xcf")
    with pytest.raises(ImageReadError) as exc:
        probe(path)
    assert _reason(exc) == "unsupported format"


def test_content_decides_the_decoder_not_the_extension(tmp_path: Path) -> None:
    path = _photo(tmp_path / "really_a_png.jpg", fmt="PNG")
    info = probe(path)
    assert (info.format, info.width, info.height) == ("PNG", 320, 240)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError) as exc:
        probe(tmp_path / "gone.jpg")
    assert _reason(exc) == "not found"
    folder = tmp_path / "x.jpg"
    folder.mkdir()
    with pytest.raises(ImageReadError) as exc:
        probe(folder)
    assert _reason(exc) == "not a file"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_permission_denied_real(tmp_path: Path) -> None:
    path = _photo(tmp_path / "locked.jpg")
    path.chmod(0)
    try:
        with pytest.raises(ImageReadError) as exc:
            probe(path)
        assert _reason(exc) == "permission denied"
    finally:
        path.chmod(0o644)


def test_permission_denied_from_the_os(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs as root too (where chmod cannot deny): the OS refusal is simulated at open(), the
    # imaging core is real.
    path = _photo(tmp_path / "locked.jpg")
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    with pytest.raises(ImageReadError) as exc:
        probe(path)
    assert _reason(exc) == "permission denied"
    assert "locked.jpg" in exc.value.message


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("width,height", [(100_000, 100_000), (40_000, 30_000)])
def test_decompression_bomb_png_is_refused_without_decoding(tmp_path: Path, width: int, height: int) -> None:
    path = _png_claiming(tmp_path / "bomb.png", width, height)
    for call in (probe, load_display):
        with pytest.raises(ImageReadError) as exc:
            call(path)
        assert _reason(exc) == "too large (decompression bomb)"


def test_decompression_bomb_tiff_is_refused(tmp_path: Path) -> None:
    path = _tiff_claiming(tmp_path / "bomb.tif", 50_000, 50_000)
    with pytest.raises(ImageReadError) as exc:
        probe(path)
    assert _reason(exc) == "too large (decompression bomb)"


def test_big_scan_probes_without_decoding(tmp_path: Path) -> None:
    path = _tiff_claiming(tmp_path / "scan.tif", 30_000, 30_000)
    assert path.stat().st_size < 50_000
    info = probe(path)
    assert (info.width, info.height, info.channels, info.dtype) == (30_000, 30_000, 1, "uint8")


def test_big_png_probes_without_decoding(tmp_path: Path) -> None:
    # 30,000 x 30,000 is allowed; the header is read, the (bogus, tiny) pixel data is not.
    info = probe(_png_claiming(tmp_path / "scan.png", 30_000, 30_000))
    assert (info.width, info.height) == (30_000, 30_000)


def test_lzw_tiff_decodes_through_the_fallback(tmp_path: Path) -> None:
    # tifffile needs imagecodecs for LZW, which we do not ship; Pillow decodes it instead.
    data = (np.arange(60 * 80, dtype=np.uint16).reshape(60, 80) * 13).astype(np.uint16)
    path = tmp_path / "lzw.tif"
    Image.fromarray(data).save(path, compression="tiff_lzw")
    info = probe(path)
    assert (info.width, info.height, info.dtype) == (80, 60, "uint16")
    np.testing.assert_array_equal(read_array(path), data)


def test_undecodable_compression_says_what_to_do(tmp_path: Path) -> None:
    # A 16-bit 3-channel LZW TIFF: neither tifffile (no imagecodecs) nor Pillow can decode it.
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, np.zeros((40, 50, 3), np.uint16), photometric="rgb", compression="zlib")
    raw = bytearray(good.read_bytes())
    with tifffile.TiffFile(good) as tif:
        tag = tif.pages[0].tags["Compression"]
        raw[tag.valueoffset : tag.valueoffset + 2] = struct.pack("<H", 5)  # claim LZW
    path = tmp_path / "lzw16.tif"
    path.write_bytes(bytes(raw))
    with pytest.raises(ImageReadError) as exc:
        read_array(path)
    assert _reason(exc) == "unsupported format"
    assert "LZW" in exc.value.message


def test_page_out_of_range_is_an_argument_error(tmp_path: Path) -> None:
    path = _photo(tmp_path / "one.png")
    with pytest.raises(InvalidArgument, match="page"):
        read_array(path, page=1)
