"""Microscopy TIFFs: 16-bit, channels first or last, z-stacks, hyperstacks, series, huge planes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from backend.imaging import load_display, load_display_scaled, probe, read_array, tiff_reader, to_display
from backend.imaging.resample import BoxAccumulator, box_downscale

RNG = np.random.default_rng(11)


def _u16(*shape: int) -> np.ndarray:
    return RNG.integers(0, 4096, shape, dtype=np.uint16)


def _block_mean(arr: np.ndarray, f: int) -> np.ndarray:
    """Independent reference for an integer-factor area average (H, W divisible by f); integer
    input is rounded back to its dtype."""
    h, w = arr.shape[:2]
    rest = arr.shape[2:]
    mean = arr.reshape(h // f, f, w // f, f, *rest).astype(np.float64).mean(axis=(1, 3))
    return np.rint(mean).astype(arr.dtype) if arr.dtype.kind in "ui" else mean.astype(arr.dtype)


def test_gray_16bit_keeps_dtype_and_stretches(tmp_path: Path) -> None:
    data = _u16(50, 60)
    path = tmp_path / "g16.tif"
    tifffile.imwrite(path, data)
    info = probe(path)
    assert (info.width, info.height, info.channels, info.dtype, info.pages) == (60, 50, 1, "uint16", 1)
    arr = read_array(path)
    assert arr.dtype == np.uint16
    np.testing.assert_array_equal(arr, data)
    rgb = load_display(path)
    lo, hi = np.percentile(data, [0.5, 99.5])
    expected = np.clip(np.rint((data - lo) * 255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(rgb[:, :, 0], expected)
    np.testing.assert_array_equal(rgb[:, :, 1], expected)


@pytest.mark.parametrize("channels", [3, 4, 5])
def test_channels_first(tmp_path: Path, channels: int) -> None:
    data = _u16(channels, 48, 64)
    path = tmp_path / "chw.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    info = probe(path)
    assert (info.width, info.height, info.channels, info.pages) == (64, 48, channels, 1)
    np.testing.assert_array_equal(read_array(path), np.moveaxis(data, 0, -1))


@pytest.mark.parametrize("channels", [2, 3, 5])
def test_channels_last(tmp_path: Path, channels: int) -> None:
    data = _u16(48, 64, channels)
    path = tmp_path / "hwc.tif"
    tifffile.imwrite(path, data, photometric="minisblack", planarconfig="contig" if channels <= 4 else None)
    info = probe(path)
    assert (info.width, info.height, info.channels, info.pages) == (64, 48, channels, 1)
    np.testing.assert_array_equal(read_array(path), data)


def test_z_stack_pages(tmp_path: Path) -> None:
    data = _u16(12, 40, 50)  # 12 > 8: planes, not channels
    path = tmp_path / "z.tif"
    tifffile.imwrite(path, data)
    info = probe(path)
    assert (info.pages, info.channels) == (12, 1)
    np.testing.assert_array_equal(read_array(path, page=7), data[7])


def test_imagej_hyperstack_pages_and_channels(tmp_path: Path) -> None:
    data = _u16(2, 5, 3, 40, 50)  # T, Z, C, Y, X
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TZCYX"})
    info = probe(path)
    assert (info.pages, info.channels, info.width, info.height) == (10, 3, 50, 40)
    # Page k enumerates (T, Z) in C order.
    np.testing.assert_array_equal(read_array(path, page=7), np.moveaxis(data[1, 2], 0, -1))


def test_multipage_rgb(tmp_path: Path) -> None:
    data = RNG.integers(0, 255, (3, 20, 30, 3), dtype=np.uint8)
    path = tmp_path / "pages.tif"
    tifffile.imwrite(path, data, photometric="rgb")
    assert (probe(path).pages, probe(path).channels) == (3, 3)
    np.testing.assert_array_equal(read_array(path, page=2), data[2])
    np.testing.assert_array_equal(load_display(path, page=1), data[1])  # 8-bit RGB: not stretched


def test_pages_of_different_shapes(tmp_path: Path) -> None:
    a, b = _u16(40, 50), RNG.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    path = tmp_path / "mixed.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(a)
        tif.write(b, photometric="rgb")
    info = probe(path)
    assert (info.pages, info.width, info.height) == (2, 50, 40)
    np.testing.assert_array_equal(read_array(path, page=0), a)
    np.testing.assert_array_equal(read_array(path, page=1), b)


def test_channel_picker_on_tiff(tmp_path: Path) -> None:
    data = np.zeros((5, 40, 40), np.uint16)
    for c in range(5):
        data[c, c * 8 : c * 8 + 8, :] = 1000 * (c + 1)  # channel c is bright in band c only
    path = tmp_path / "five.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    rgb = load_display(path, channels=[4, 0, 2])
    assert rgb[35, 5].tolist() == [255, 0, 0]  # band 4 -> red
    assert rgb[3, 5].tolist() == [0, 255, 0]  # band 0 -> green
    assert rgb[19, 5].tolist() == [0, 0, 255]  # band 2 -> blue
    gray = load_display(path, channels=[3])
    assert gray[27, 5].tolist() == [255, 255, 255] and gray[3, 5].tolist() == [0, 0, 0]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("layout", ["strips", "tiles", "planar", "pages_as_channels", "rgb8"])
def test_reduced_read_matches_area_average(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str, stream: bool
) -> None:
    # Big planes are reduced strip by strip while decoding; lowering the threshold sends these
    # small test planes down that path too, against the same reference.
    monkeypatch.setattr(tiff_reader, "STREAM_ABOVE_PIXELS", 0 if stream else 10**9)
    h, w, f = 240, 320, 4
    path = tmp_path / f"{layout}.tif"
    if layout == "strips":
        full = _u16(h, w)
        tifffile.imwrite(path, full, rowsperstrip=7, compression="zlib")
    elif layout == "tiles":
        full = _u16(h, w, 3)
        tifffile.imwrite(path, full, photometric="rgb", tile=(48, 64))
    elif layout == "planar":
        full = _u16(h, w, 3)
        tifffile.imwrite(path, np.moveaxis(full, -1, 0), photometric="rgb", planarconfig="separate", rowsperstrip=16)
    elif layout == "pages_as_channels":
        full = _u16(h, w, 4)
        tifffile.imwrite(path, np.moveaxis(full, -1, 0)[None], photometric="minisblack", metadata={"axes": "ZCYX"})
    else:
        full = RNG.integers(0, 255, (h, w, 3), dtype=np.uint8)
        tifffile.imwrite(path, full, photometric="rgb", rowsperstrip=10)
    rgb, scale = load_display_scaled(path, max_side=w // f)
    assert scale == pytest.approx(1 / f)
    expected = to_display(_block_mean(full, f))
    assert rgb.shape == expected.shape
    assert np.abs(rgb.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_accumulator_and_whole_downscale_agree_with_block_mean(dtype: type) -> None:
    full = (RNG.random((90, 120, 2)) * 1000).astype(dtype)
    expected = _block_mean(full.astype(np.float64), 3)
    acc = BoxAccumulator(90, 120, 30, 40, 2)
    y = 0
    for rows in (7, 20, 1, 33, 29):  # uneven strips, fed in odd pieces across columns
        acc.add(full[y : y + rows, :50], y, 0)
        acc.add(full[y : y + rows, 50:], y, 50)
        y += rows
    np.testing.assert_allclose(acc.result(np.dtype(np.float64)), expected, atol=1e-3)
    whole = box_downscale(full, 40, 30)
    assert whole.dtype == full.dtype
    # Pillow's two-pass box filter rounds between passes for integer data: within one level.
    np.testing.assert_allclose(whole.astype(np.float64), expected, atol=1.0 if dtype != np.float32 else 1e-2)


def test_reduced_read_uses_pyramid_level(tmp_path: Path) -> None:
    full = np.tile(np.linspace(0, 60000, 512, dtype=np.uint16), (512, 1))
    path = tmp_path / "pyramid.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(full, subifds=2, tile=(128, 128))
        tif.write(full[::2, ::2], subfiletype=1, tile=(128, 128))
        tif.write(full[::4, ::4], subfiletype=1, tile=(128, 128))
    assert probe(path).pages == 1
    rgb, scale = load_display_scaled(path, max_side=100)
    assert rgb.shape == (100, 100, 3) and scale == pytest.approx(100 / 512)
    expected = to_display(np.asarray(Image.fromarray(full).resize((100, 100), Image.Resampling.BOX)))
    assert np.abs(rgb.astype(int) - expected).max() <= 3


def test_float_with_nan(tmp_path: Path) -> None:
    data = RNG.normal(100, 10, (30, 40)).astype(np.float32)
    data[0, :5] = np.nan
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, data)
    assert probe(path).dtype == "float32"
    rgb = load_display(path)
    assert rgb.dtype == np.uint8 and rgb[0, 0].tolist() == [0, 0, 0]
    assert rgb[5:].max() == 255 and rgb[5:].min() == 0


def test_cmyk_tiff_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.tif"
    Image.new("CMYK", (30, 20), (0, 255, 255, 0)).save(path)  # pure red in ink
    info = probe(path)
    assert (info.channels, info.dtype) == (3, "uint8")
    assert read_array(path)[10, 15].tolist() == [255, 0, 0]


def test_min_is_white_and_palette(tmp_path: Path) -> None:
    data = np.array([[0, 255], [10, 200]], np.uint8).repeat(8, 0).repeat(8, 1)
    path = tmp_path / "mw.tif"
    tifffile.imwrite(path, data, photometric="miniswhite")
    np.testing.assert_array_equal(read_array(path), 255 - data)
    pal = Image.fromarray(RNG.integers(0, 255, (16, 16, 3), dtype=np.uint8)).quantize(colors=4)
    path = tmp_path / "pal.tif"
    pal.save(path)
    info = probe(path)
    assert (info.channels, info.dtype) == (3, "uint8")
    np.testing.assert_array_equal(read_array(path), np.asarray(pal.convert("RGB")))
