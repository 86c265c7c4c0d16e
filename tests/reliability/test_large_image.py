"""A 30,000 x 30,000 image is shown, reduced while decoding, without running out of memory.

The pixels the page gets for a huge image are at most SCREEN_MAX_PIXELS, decoded a band or a
reduced scale at a time, so the decoder never holds the full-size picture (2.7 GB as RGB). Each
case serves the image in a fresh subprocess, the way the scheme handler does, and reads that
process's peak resident memory: a bound on memory, not on time.

The test images are written directly in their final encoded form (a flat-gray baseline JPEG,
a 1-bit PNG of repeated rows), so making them costs milliseconds, not gigabytes.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.api.service import Api
from backend.api.settings import Settings
from backend.imaging import (
    SCREEN_MAX_PIXELS,
    SCREEN_MAX_SIDE,
    bands,
    load_display_scaled,
    load_screen,
    read_array,
    resample,
)
from backend.imaging.display import to_display
from tests.reliability.bad_files import png_chunk

SIDE = 30_000
ROOT = Path(__file__).resolve().parents[2]

# Serve one image like the scheme handler's worker, report peak RSS growth and what was served.
_SERVE = """
import io, json, resource, sys
from pathlib import Path
from backend.gui.scheme import parse_pixels, serve_pixels
import numpy as np
from PIL import Image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
answer = serve_pixels(parse_pixels("/pixels/image/1", ""), Path(sys.argv[1]), Path(sys.argv[2]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
img = Image.open(io.BytesIO(answer.data)).convert("L")
arr = np.asarray(img)
print(json.dumps({"grow_mb": (peak - before) / 1024, "size": img.size, "error": answer.error,
                  "row": arr[arr.shape[0] // 2].tolist(), "col": arr[:, arr.shape[1] // 4].tolist()}))
"""


def half_black_png(path: Path, width: int, height: int) -> Path:
    """1-bit PNG, left half black, right half white. Rows after the first are "same as above"
    (filter Up, all zeros), compressed once and repeated after a full flush (a legal stream)."""
    first = b"\x00" + bytes(width // 16) + b"\xff" * (width // 16)
    same = b"\x02" + bytes(width // 8)
    c = zlib.compressobj(6)
    head = c.compress(first) + c.flush(zlib.Z_FULL_FLUSH)
    per_block = 1024
    block = c.compress(same * per_block) + c.flush(zlib.Z_FULL_FLUSH)
    n_blocks, rest = divmod(height - 1, per_block)
    tail = c.compress(same * rest) + c.flush(zlib.Z_FULL_FLUSH)
    adler = zlib.adler32(first)
    for _ in range(n_blocks):
        adler = zlib.adler32(same * per_block, adler)
    adler = zlib.adler32(same * rest, adler)
    stream = head + block * n_blocks + tail + b"\x03\x00" + struct.pack(">I", adler)  # final empty block
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", stream)
                     + png_chunk(b"IEND", b""))
    return path


def flat_jpeg(path: Path, width: int, height: int) -> Path:
    """Mid-gray baseline JPEG: every 8x8 block is "DC unchanged, no AC", 6 bits with the
    standard Huffman tables that Pillow writes, so 4 blocks are the 3 bytes 28 A2 8A."""
    buf = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    sos = data.index(b"\xff\xda")
    header = bytearray(data[: sos + 2 + struct.unpack(">H", data[sos + 2: sos + 4])[0]])
    sof = header.index(b"\xff\xc0")
    header[sof + 5: sof + 9] = struct.pack(">HH", height, width)
    blocks = (width // 8) * (height // 8)
    if width % 8 or height % 8 or blocks % 4:
        raise ValueError("width and height must be multiples of 8, with a multiple of 4 blocks")
    path.write_bytes(bytes(header) + b"\x28\xa2\x8a" * (blocks // 4) + b"\xff\xd9")
    return path


def _serve_in_subprocess(path: Path, tmp_path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _SERVE, str(path), str(tmp_path / "thumbs")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("make", [flat_jpeg, half_black_png], ids=["jpeg", "png-1bit"])
def test_a_30000_px_image_is_served_reduced_within_bounded_memory(tmp_path: Path, make) -> None:
    ext = ".jpg" if make is flat_jpeg else ".png"
    path = make(tmp_path / f"scan{ext}", SIDE, SIDE)
    got = _serve_in_subprocess(path, tmp_path)
    assert got["error"] is None
    w, h = got["size"]
    assert w == h and w * h <= SCREEN_MAX_PIXELS and w <= SCREEN_MAX_SIDE
    assert w * h > SCREEN_MAX_PIXELS * 0.99, "reduced to the screen limit, not further"
    # The whole image, mapped onto the reduced bitmap (the page stretches it back to 30,000).
    row, col = np.array(got["row"]), np.array(got["col"])
    if make is flat_jpeg:
        assert np.abs(row - 128).max() <= 2 and np.abs(col - 128).max() <= 2
    else:
        # (served as JPEG, so within a few levels)
        assert row[: w // 2 - 2].max() <= 4 and row[w // 2 + 2:].min() >= 251
        assert col.max() <= 4
    # Decoding it whole for the screen, as before, needed the full-size RGB picture: 2.7 GB.
    full_rgb_mb = SIDE * SIDE * 3 / 2**20
    assert got["grow_mb"] < full_rgb_mb / 4, f"serving grew memory by {got['grow_mb']:.0f} MB"


def test_the_page_gets_the_full_size_for_coordinates(tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    flat_jpeg(folder / "slide.jpg", 24_000, 16_000)
    api = Api(Settings(tmp_path / "data" / "settings.json"), demo_dir=tmp_path / "data" / "demo")
    api.open_project(folder)
    try:
        image_id = api.call("images.list", {})["ok"][0]["id"]
        record = api.call("image.get", {"id": image_id})["ok"]
        # Shapes are in these coordinates; the page draws the served bitmap at this size.
        assert (record["width"], record["height"], record["error"]) == (24_000, 16_000, None)
        shape = api.call("shapes.add", {"image_id": image_id, "kind": "box",
                                        "geometry": [20_000, 12_000, 23_500, 15_900]})["ok"]
        assert shape["geometry"] == [20_000, 12_000, 23_500, 15_900]
    finally:
        api.close_project()
        api.jobs.shutdown()
    rgb, scale = load_screen(folder / "slide.jpg")
    assert rgb.shape[1] == round(24_000 * scale) and rgb.shape[0] == round(16_000 * scale)
    assert rgb.shape[0] * rgb.shape[1] <= SCREEN_MAX_PIXELS


# -- the band decoder against Pillow's whole decode ---------------------------------------------

def _filtered_png(path: Path, depth: int, color: int, width: int = 157, height: int = 203) -> Path:
    """A PNG Pillow cannot write (16-bit RGB(A), 2/4-bit gray...), rows cycling through the
    None, Up and Sub filters so that each band must continue from the row above it."""
    samples = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    rng = np.random.default_rng(depth * 10 + color)
    row_bytes = (width * depth * samples + 7) // 8
    bpp = max(1, depth * samples // 8)
    ramp = (np.arange(row_bytes) * 7 % 256).astype(np.int64)
    prev = np.zeros(row_bytes, np.int64)
    out = []
    for y in range(height):
        cur = (ramp + y * 3 + rng.integers(0, 8, row_bytes)) % 256
        if y % 3 == 1:
            out.append(b"\x02" + ((cur - prev) % 256).astype(np.uint8).tobytes())
        elif y % 3 == 2:
            left = np.concatenate([np.zeros(bpp, np.int64), cur[:-bpp]])
            out.append(b"\x01" + ((cur - left) % 256).astype(np.uint8).tobytes())
        else:
            out.append(b"\x00" + cur.astype(np.uint8).tobytes())
        prev = cur
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                     + png_chunk(b"IDAT", zlib.compress(b"".join(out))) + png_chunk(b"IEND", b""))
    return path


def _pillow_file(path: Path, mode: str, fmt: str, **kwargs: object) -> Path:
    yy, xx = np.mgrid[0:203, 0:157]
    rng = np.random.default_rng(1)
    rgb = np.stack([xx, yy, xx + yy], axis=2) % 256 + rng.integers(0, 8, (203, 157, 3))
    im = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    im = {"P": lambda: im.quantize(64), "1": lambda: im.convert("L").convert("1"),
          "I;16": lambda: Image.fromarray((rgb[:, :, 0] * 200).astype(np.uint16))}.get(mode, lambda: im.convert(mode))()
    im.save(path, format=fmt, **kwargs)
    return path


BAND_CASES = {
    "png-rgb": lambda p: _pillow_file(p, "RGB", "PNG"),
    "png-rgba": lambda p: _pillow_file(p, "RGBA", "PNG"),
    "png-gray": lambda p: _pillow_file(p, "L", "PNG"),
    "png-gray-alpha": lambda p: _pillow_file(p, "LA", "PNG"),
    "png-palette-transparent": lambda p: _pillow_file(p, "P", "PNG", transparency=3),
    "png-1bit": lambda p: _pillow_file(p, "1", "PNG"),
    "png-gray16": lambda p: _pillow_file(p, "I;16", "PNG"),
    "png-gray2": lambda p: _filtered_png(p, 2, 0),
    "png-gray4": lambda p: _filtered_png(p, 4, 0),
    "png-la16": lambda p: _filtered_png(p, 16, 4),
    "png-rgb16": lambda p: _filtered_png(p, 16, 2),
    "png-rgba16": lambda p: _filtered_png(p, 16, 6),
    "bmp-rgb": lambda p: _pillow_file(p, "RGB", "BMP"),
    "bmp-palette": lambda p: _pillow_file(p, "P", "BMP"),
    "bmp-1bit": lambda p: _pillow_file(p, "1", "BMP"),
}


# Smooth pictures, where summing whole rows and Pillow's fractional rows look the same.
SMOOTH = {"png-rgb", "png-rgba", "png-gray", "png-gray-alpha", "png-gray16", "bmp-rgb"}


@pytest.mark.parametrize("case", list(BAND_CASES))
def test_band_decoding_matches_the_whole_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                case: str) -> None:

    path = BAND_CASES[case](tmp_path / f"img.{case[:3]}")
    whole, whole_scale = load_display_scaled(path, max_side=61)
    full = read_array(path)
    # Bands of ~3 rows (and of 1 row): every band starts from the row above it.
    for band_bytes in (2_000, 1):
        monkeypatch.setattr(bands, "STREAM_ABOVE_PIXELS", 0)
        monkeypatch.setattr(bands, "BAND_BYTES", band_bytes)
        banded, scale = load_display_scaled(path, max_side=61)
        assert scale == whole_scale and banded.shape == whole.shape
        # Exactly the band computation, done on the whole decoded image in one go: Pillow's box
        # filter along rows, then whole source rows summed per output row.
        tw, th = resample.target_size(full.shape[1], full.shape[0], 61)
        cols = np.asarray(Image.fromarray(full).resize((tw, full.shape[0]), Image.Resampling.BOX))
        planes = cols if cols.ndim == 3 else cols[:, :, None]
        acc = resample.BoxAccumulator(full.shape[0], tw, th, tw, planes.shape[2])
        acc.add(planes, 0, 0)
        reduced = acc.result(full.dtype)
        reference = to_display(reduced[:, :, 0] if reduced.shape[2] == 1 else reduced)
        assert np.abs(banded.astype(int) - reference).max() <= 1, case
        if case in SMOOTH:
            # And close to the plain whole-image reduction a person would otherwise see.
            assert np.abs(banded.astype(int) - whole).mean() < 1.0, case
