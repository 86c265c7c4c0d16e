"""Native pixel data -> 8-bit RGB for the screen, and PNG/JPEG encoding.

Rules of :func:`to_display` (what a person sees):

* 8-bit images with 1-4 channels are shown as they are: gray is replicated to RGB, gray+alpha
  and RGBA lose their alpha, RGB passes through unchanged. No stretch - a photo keeps its colours.
* Anything else (16-bit, 32-bit, float, or more than 4 channels) gets a per-channel percentile
  stretch: the ``lo`` percentile maps to 0 and the ``hi`` percentile to 255, computed for each
  displayed channel on its own.
* ``channels`` picks up to three channel indices mapped to R, G, B in that order; one index shows
  that channel as gray, two leave blue empty. The default is the first three channels (a single
  channel image shows as gray; two channels show as red and green).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from backend.errors import InvalidArgument

# Above this many samples per channel, float percentiles are estimated from a regular grid of
# samples (exact percentiles of 100 MP would take seconds; the stretch does not need them).
_PERCENTILE_SAMPLES = 4_000_000


def to_display(
    arr: np.ndarray,
    channels: Sequence[int] | None = None,
    lo: float = 0.5,
    hi: float = 99.5,
) -> np.ndarray:
    """Map ``arr`` (H x W or H x W x C, any numeric dtype) to a uint8 H x W x 3 RGB array."""
    if not isinstance(arr, np.ndarray) or arr.ndim not in (2, 3):
        raise InvalidArgument(f"arr: expected an H x W or H x W x C array, got {_describe(arr)}")
    lo, hi = _check_percentiles(lo, hi)
    data = arr[:, :, None] if arr.ndim == 2 else arr
    n = data.shape[2]
    if data.dtype == np.bool_:
        data = data.astype(np.uint8) * 255
    picked = _check_channels(channels, n)
    plain_8bit = data.dtype == np.uint8 and n <= 4
    if picked is None:
        if plain_8bit and n >= 3:
            return np.ascontiguousarray(data[:, :, :3])
        picked = [0] if n in (1, 2) and plain_8bit else list(range(min(n, 3)))
    planes = [data[:, :, c] if plain_8bit else _stretch(data[:, :, c], lo, hi) for c in picked]
    if len(planes) == 1:
        planes = planes * 3
    elif len(planes) == 2:
        planes.append(np.zeros_like(planes[0]))
    return np.ascontiguousarray(np.stack(planes, axis=2))


def percentiles(channel: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """The ``lo`` and ``hi`` percentiles of a 2-D channel, as ``np.percentile`` (linear) gives.

    Integer data of up to 16 bits is counted exactly with a histogram (fast, no sort); other data
    ignores NaN and +-inf and, when very large, is sampled on a regular grid.
    """
    if channel.dtype.kind in "ui" and channel.dtype.itemsize <= 2:
        offset = int(np.iinfo(channel.dtype).min)
        shifted = channel if offset == 0 else channel.astype(np.int32) - offset
        counts = np.bincount(shifted.ravel())
        cum = np.cumsum(counts)
        total = int(cum[-1])

        def at(q: float) -> float:
            pos = q / 100.0 * (total - 1)
            i = math.floor(pos)
            v0 = int(np.searchsorted(cum, i, side="right"))
            v1 = int(np.searchsorted(cum, min(i + 1, total - 1), side="right"))
            return offset + v0 + (pos - i) * (v1 - v0)

        return at(lo), at(hi)
    step = max(1, math.ceil(math.sqrt(channel.size / _PERCENTILE_SAMPLES)))
    sample = channel[::step, ::step].astype(np.float64, copy=False).ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 0.0
    p_lo, p_hi = np.percentile(sample, [lo, hi])
    return float(p_lo), float(p_hi)


def _stretch(channel: np.ndarray, lo: float, hi: float) -> np.ndarray:
    p_lo, p_hi = percentiles(channel, lo, hi)
    if p_hi <= p_lo:
        # Sparse signal (e.g. a few bright cells on black): the percentiles coincide, so fall
        # back to the full range rather than showing an all-black channel.
        finite = channel[np.isfinite(channel)] if channel.dtype.kind == "f" else channel
        if finite.size == 0:
            return np.zeros(channel.shape, np.uint8)
        p_lo, p_hi = float(finite.min()), float(finite.max())
        if p_hi <= p_lo:
            return np.zeros(channel.shape, np.uint8)
    scale = 255.0 / (p_hi - p_lo)
    if channel.dtype.kind in "ui" and channel.dtype.itemsize <= 2:
        # A lookup table over every possible value: one gather instead of float math per pixel.
        info = np.iinfo(channel.dtype)
        values = np.arange(info.min, info.max + 1, dtype=np.float64)
        lut = np.clip(np.rint((values - p_lo) * scale), 0, 255).astype(np.uint8)
        return lut[channel.astype(np.int32) - info.min] if info.min else lut[channel]
    out = (channel.astype(np.float32) - np.float32(p_lo)) * np.float32(scale)
    out = np.nan_to_num(out, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _check_percentiles(lo: float, hi: float) -> tuple[float, float]:
    for name, value in (("lo", lo), ("hi", hi)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidArgument(f"{name}: expected a percentile between 0 and 100, got {value!r}")
        if not 0 <= value <= 100:
            raise InvalidArgument(f"{name}: expected a percentile between 0 and 100, got {value!r}")
    if lo >= hi:
        raise InvalidArgument(f"lo/hi: lo ({lo}) must be below hi ({hi})")
    return float(lo), float(hi)


def _check_channels(channels: Sequence[int] | None, n: int) -> list[int] | None:
    if channels is None:
        return None
    if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence):
        raise InvalidArgument(f"channels: expected a list of 1-3 channel indices, got {channels!r}")
    picked = list(channels)
    if not 1 <= len(picked) <= 3:
        raise InvalidArgument(f"channels: expected 1-3 channel indices, got {len(picked)}: {picked!r}")
    for c in picked:
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)):
            raise InvalidArgument(f"channels: expected integer indices, got {c!r}")
        if not 0 <= c < n:
            raise InvalidArgument(f"channels: index {c} is out of range for an image with {n} channel(s) (0-{n - 1})")
    return [int(c) for c in picked]


def _describe(arr: object) -> str:
    if isinstance(arr, np.ndarray):
        return f"an array of shape {arr.shape}"
    return type(arr).__name__


def _as_uint8_image(arr: np.ndarray, name: str) -> Image.Image:
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8:
        raise InvalidArgument(f"{name}: expected a uint8 array, got {_describe(arr)}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(arr))
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(arr))
    raise InvalidArgument(f"{name}: expected H x W, H x W x 3 or H x W x 4, got shape {arr.shape}")


def encode_png(arr: np.ndarray) -> bytes:
    """PNG bytes of a uint8 H x W, H x W x 3 or H x W x 4 array (fast, lightly compressed)."""
    im = _as_uint8_image(arr, "arr")
    buf = io.BytesIO()
    # Level 1: these PNGs travel over a local URL scheme, so encode time matters more than size.
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def encode_jpeg(arr: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a uint8 H x W or H x W x 3 array (alpha, if any, is dropped)."""
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise InvalidArgument(f"quality: expected an integer from 1 to 100, got {quality!r}")
    im = _as_uint8_image(arr, "arr")
    if im.mode == "RGBA":
        im = im.convert("RGB")
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
