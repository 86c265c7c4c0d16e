"""The pure parts of the ``fieldmark://app/pixels/...`` scheme: request parsing and rendering.

No display needed: importing the module loads PySide6, but these two functions use no Qt.
``SchemeHandler`` only catches ValueError (bad request) and FieldmarkError from them, and treats
ImageReadError as "this file is broken" — so the exception types are part of the contract.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from backend.errors import FieldmarkError, ImageReadError
from backend.gui.scheme import parse_pixels, render_pixels


def _req(path: str, query: str = "") -> dict[str, object]:
    return parse_pixels(path, query)


# -- parse_pixels ------------------------------------------------------------------------------

def test_image_defaults() -> None:
    assert _req("/pixels/image/12") == {"kind": "image", "id": 12, "page": 0, "channels": None,
                                        "lo": 0.5, "hi": 99.5}


def test_thumb() -> None:
    req = _req("/pixels/thumb/7")
    assert (req["kind"], req["id"]) == ("thumb", 7)


def test_query_parameters() -> None:
    req = _req("/pixels/image/3", "page=2&channels=0,2,1&lo=1&hi=99")
    assert (req["page"], req["channels"], req["lo"], req["hi"]) == (2, [0, 2, 1], 1.0, 99.0)


def test_full_range_and_last_repeat_wins() -> None:
    req = _req("/pixels/image/3", "lo=5&lo=0&hi=100")
    assert (req["lo"], req["hi"]) == (0.0, 100.0)


def test_at_most_three_channels_are_shown() -> None:
    assert _req("/pixels/image/1", "channels=4,3,2,1,0")["channels"] == [4, 3, 2]


def test_empty_channels_means_default() -> None:
    assert _req("/pixels/image/1", "channels=")["channels"] is None


@pytest.mark.parametrize("path", [
    "/pixels/image/abc",
    "/pixels/image/-1",
    "/pixels/image/1.5",
    "/pixels/image/",
    "/pixels/image",
    "/pixels/video/1",
    "/pixels/image/1/2",
    "/pixels/thumb/1/../../../etc/passwd",
    "/pixels/image/../../etc/passwd",
    "/pixels/../index.html",
    "/pixels/image/..",
    "/pixels/image/%2e%2e",
    "/pixels/image/1%2f..",
    "/pixels/image/0x10",
    "/pixels/image/ 1",
    "/static/image/1",
    "/index.html",
    "",
])
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        parse_pixels(path, "")


@pytest.mark.parametrize("query", [
    "lo=50&hi=10",
    "lo=10&hi=10",
    "lo=-1",
    "hi=100.5",
    "lo=nan",
    "hi=nan",
    "hi=inf",
    "lo=-inf",
    "lo=abc",
    "page=x",
    "page=1.5",
    "channels=a,b",
    "channels=0,,1",
    "channels=1.5",
])
def test_bad_query_values_are_refused(query: str) -> None:
    with pytest.raises(ValueError):
        parse_pixels("/pixels/image/1", query)


# -- render_pixels -----------------------------------------------------------------------------

def _decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def _rgb(path: Path, w: int, h: int, orientation: int | None = None) -> Path:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[: h // 2] = (255, 0, 0)
    arr[h // 2:] = (0, 0, 255)
    kwargs = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    Image.fromarray(arr).save(path, quality=95, **kwargs)
    return path


def test_image_is_png_at_full_size(tmp_path: Path) -> None:
    src = _rgb(tmp_path / "a.png", 50, 30)
    data, mime = render_pixels(_req("/pixels/image/1"), src, tmp_path / "thumbs")
    assert mime == b"image/png"
    im = _decode(data)
    assert (im.format, im.size) == ("PNG", (50, 30))
    # Pixel-exact for an 8-bit RGB image (no stretch, lossless).
    np.testing.assert_array_equal(np.asarray(im.convert("RGB")), np.asarray(Image.open(src).convert("RGB")))


def test_exif_rotated_image_and_thumb_are_displayed_rotated(tmp_path: Path) -> None:
    src = _rgb(tmp_path / "rot.jpg", 64, 40, orientation=6)  # stored landscape, shown portrait
    data, mime = render_pixels(_req("/pixels/image/1"), src, tmp_path / "thumbs")
    assert mime == b"image/png"
    assert _decode(data).size == (40, 64)
    data, mime = render_pixels(_req("/pixels/thumb/1"), src, tmp_path / "thumbs")
    assert mime == b"image/jpeg"
    im = _decode(data)
    assert im.format == "JPEG"
    assert im.size == (40, 64)  # small images are never enlarged


def test_thumb_is_small_jpeg_and_cached(tmp_path: Path) -> None:
    src = _rgb(tmp_path / "big.png", 600, 300)
    thumbs = tmp_path / "thumbs"
    data, mime = render_pixels(_req("/pixels/thumb/9"), src, thumbs)
    assert mime == b"image/jpeg"
    im = _decode(data)
    assert im.format == "JPEG"
    assert max(im.size) == 192 and im.size[0] == 2 * im.size[1]
    assert len(list(thumbs.glob("*.jpg"))) == 1
    again, _ = render_pixels(_req("/pixels/thumb/9"), src, thumbs)
    assert again == data


def test_16bit_channels_are_stretched_to_8bit_rgb(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(0, 4096, (4, 24, 32), dtype=np.uint16)  # C, Y, X
    src = tmp_path / "cells.tif"
    tifffile.imwrite(src, data, imagej=True, metadata={"axes": "CYX"})
    out, mime = render_pixels(_req("/pixels/image/1", "channels=3,0"), src, tmp_path / "thumbs")
    assert mime == b"image/png"
    im = _decode(out)
    assert (im.mode, im.size) == ("RGB", (32, 24))
    arr = np.asarray(im)
    # The first displayed channel follows source channel 3 (a stretch is monotonic).
    src3 = data[3].astype(np.int64)
    assert np.corrcoef(src3.ravel(), arr[:, :, 0].astype(np.int64).ravel())[0, 1] > 0.99


@pytest.mark.parametrize("query", ["page=3", "page=-1", "channels=0,7"])
def test_bad_page_or_channel_is_a_bad_request_not_a_broken_file(tmp_path: Path, query: str) -> None:
    # The scheme handler marks the image as broken on ImageReadError, so a request for a page
    # or channel that does not exist must not look like one.
    src = _rgb(tmp_path / "a.png", 20, 10)
    with pytest.raises(FieldmarkError) as info:
        render_pixels(_req("/pixels/image/1", query), src, tmp_path / "thumbs")
    assert not isinstance(info.value, ImageReadError)


@pytest.mark.parametrize("kind", ["image", "thumb"])
@pytest.mark.parametrize("content", [b"", b"this is not an image\n"])
def test_unreadable_file_raises_image_read_error(tmp_path: Path, kind: str, content: bytes) -> None:
    src = tmp_path / "broken.png"
    src.write_bytes(content)
    with pytest.raises(ImageReadError) as info:
        render_pixels(_req(f"/pixels/{kind}/1"), src, tmp_path / "thumbs")
    assert "broken.png" in info.value.message
