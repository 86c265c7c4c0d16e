"""OWL-ViT / OWLv2 image preprocessing in numpy + Pillow, equal to the transformers processors.

OWL-ViT (``method="squash"``): Pillow resize of the uint8 image to S x S (aspect ratio not kept,
bicubic), then ``x / 255``, then ``(x - mean) / std`` — the same operations in the same dtypes as
``OwlViTImageProcessorPil``, so the result is bit-identical. Model boxes are relative to the
whole image: pixel box = box * (w, h, w, h).

OWLv2 (``method="pad_square_gaussian_linear"``): ``x / 255``, pad bottom/right with
``pad_value`` to a square of side ``max(h, w)``, Gaussian anti-aliasing (sigma = (factor - 1) / 2,
scipy's truncate 4, "mirror" edges) and linear resampling with pixel-centre alignment
(``scipy.ndimage.zoom(order=1, grid_mode=True, mode="mirror")``), clip to the input range, then
normalize — what ``Owlv2ImageProcessorPil`` does with scipy, re-implemented without scipy. Both
separable passes are folded into one sparse weight table per axis and the padding is never
materialized (a 4000 x 3000 photo would otherwise need a 4000 x 4000 float copy). Model boxes
are relative to the padded square: pixel box = box * max(h, w).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.models import inputs

_RESAMPLE = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3}


def check_image(image: Any) -> np.ndarray:
    """Validate an (h, w, 3) uint8 RGB array (an (h, w) gray one is expanded)."""
    return inputs.check_image(image, allow_gray=True)


def box_scale(pre: dict[str, Any], height: int, width: int) -> np.ndarray:
    """(4,) factors from the model's relative xyxy boxes to original-image pixels."""
    if pre["method"] == "squash":
        return np.array([width, height, width, height], dtype=np.float64)
    side = float(max(height, width))
    return np.array([side, side, side, side], dtype=np.float64)


def pixel_values(image: np.ndarray, pre: dict[str, Any]) -> np.ndarray:
    """(h, w, 3) uint8 RGB -> (1, 3, S, S) float32 model input (``pre``: manifest preprocessing)."""
    image = check_image(image)
    size = int(pre["image_size"])
    if pre["method"] == "squash":
        chw = _squash(image, size, pre)
    elif pre["method"] == "pad_square_gaussian_linear":
        chw = _pad_square_resize(image, size, pre)
    else:
        raise ValueError(f"unknown preprocessing method {pre['method']!r}")
    mean = np.array(pre["mean"], dtype=np.float32)
    std = np.array(pre["std"], dtype=np.float32)
    # Same expression and dtype as transformers' normalize(): ((x.T - mean) / std).T in float32.
    out = ((chw.T - mean) / std).T
    return np.ascontiguousarray(out[None], dtype=np.float32)


def _rescale(x: np.ndarray, factor: float) -> np.ndarray:
    # transformers upcasts to float64, multiplies, then casts to float32.
    return (x.astype(np.float64) * factor).astype(np.float32)


def _squash(image: np.ndarray, size: int, pre: dict[str, Any]) -> np.ndarray:
    from PIL import Image

    resample = _RESAMPLE[pre.get("resample", "bicubic")]
    resized = np.asarray(Image.fromarray(image).resize((size, size), resample=resample))
    return _rescale(resized, float(pre["rescale_factor"])).transpose(2, 0, 1)


def _mirror(idx: np.ndarray, n: int) -> np.ndarray:
    """scipy's "mirror" extension (d c b | a b c d | c b a): reflect about the edge centres."""
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - idx, idx)


def axis_weights(n_in: int, n_out: int) -> np.ndarray:
    """Gaussian anti-aliasing then linear interpolation along one axis, as one (n_out, n_in) matrix.

    ``out = A @ in`` along that axis; rows of ``A`` sum to 1 and hold about 2 * (8 sigma + 2)
    non-zeros (a band), so it is applied block by block.
    """
    factor = n_in / n_out
    sigma = max(0.0, (factor - 1.0) / 2.0)
    if sigma > 0:
        radius = int(4.0 * sigma + 0.5)  # scipy.ndimage.gaussian_filter1d, truncate=4.0
        taps = np.arange(-radius, radius + 1)
        g = np.exp(-0.5 / sigma**2 * taps.astype(np.float64) ** 2)
        g /= g.sum()
    else:
        taps, g = np.zeros(1, dtype=np.int64), np.ones(1)
    # zoom with grid_mode=True: output pixel centres map onto input pixel centres.
    coord = (np.arange(n_out, dtype=np.float64) + 0.5) * factor - 0.5
    coord = np.where(coord < 0, -coord, coord)  # mirror about pixel 0 (upsampling edges)
    if n_in > 1:
        coord = np.where(coord > n_in - 1, 2 * (n_in - 1) - coord, coord)
    else:
        coord = np.zeros_like(coord)
    lo = np.floor(coord).astype(np.int64)
    frac = coord - lo
    lin_idx = _mirror(np.stack([lo, lo + 1], axis=1), n_in)  # (n_out, 2)
    lin_w = np.stack([1.0 - frac, frac], axis=1)
    idx = _mirror(lin_idx[:, :, None] + taps[None, None, :], n_in).reshape(n_out, -1)
    w = (lin_w[:, :, None] * g[None, None, :]).reshape(n_out, -1)
    a = np.zeros((n_out, n_in), dtype=np.float64)
    np.add.at(a, (np.repeat(np.arange(n_out), idx.shape[1]), idx.ravel()), w.ravel())
    return a


def _apply_axis0(x: np.ndarray, a: np.ndarray, valid: int, pad_value: float,
                 block: int = 32) -> np.ndarray:
    """``a @ x`` along axis 0, where only the first ``valid`` rows of the (virtual, padded) input
    exist and the rest equal ``pad_value``. Blocked over output rows: each block touches only
    the input rows its band covers, so BLAS does the work without the dense zeros."""
    n_out = a.shape[0]
    flat = x.reshape(x.shape[0], -1)
    a_in = a[:, :valid].astype(np.float32)
    out = np.empty((n_out, flat.shape[1]), dtype=np.float32)
    for s in range(0, n_out, block):
        rows = a_in[s:s + block]
        cols = np.flatnonzero(rows.any(axis=0))
        if cols.size == 0:
            out[s:s + block] = 0.0
            continue
        lo, hi = int(cols[0]), int(cols[-1]) + 1
        out[s:s + block] = rows[:, lo:hi] @ flat[lo:hi]
    if pad_value != 0.0 and valid < a.shape[1]:
        out += (a[:, valid:].sum(axis=1) * pad_value).astype(np.float32)[:, None]
    return out.reshape((n_out,) + x.shape[1:])


def _pad_square_resize(image: np.ndarray, size: int, pre: dict[str, Any]) -> np.ndarray:
    h, w = image.shape[:2]
    side = max(h, w)
    pad_value = float(pre.get("pad_value", 0.0))
    x = _rescale(image, float(pre["rescale_factor"]))  # (h, w, 3)
    a = axis_weights(side, size)
    # Reduce the longer side first: the second pass then works on the smaller array.
    if h >= w:
        rows = _apply_axis0(x, a, h, pad_value)  # (size, w, 3)
        out = _apply_axis0(rows.transpose(1, 0, 2), a, w, pad_value).transpose(1, 0, 2)
    else:
        cols = _apply_axis0(x.transpose(1, 0, 2), a, w, pad_value)  # (size, h, 3)
        out = _apply_axis0(cols.transpose(1, 0, 2), a, h, pad_value)
    lo, hi = float(x.min()), float(x.max())
    if h != w:  # the padded image's range includes the pad value
        lo, hi = min(lo, pad_value), max(hi, pad_value)
    np.clip(out, lo, hi, out=out)
    return out.transpose(2, 0, 1)
