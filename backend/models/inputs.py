"""Checks on what callers hand the models: one place, so every family refuses the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from backend.errors import InvalidArgument


def check_image(image: Any, *, allow_gray: bool = False) -> np.ndarray:
    """Validate an (h, w, 3) uint8 RGB array (with ``allow_gray``, (h, w) is expanded to RGB).

    Returns it C-contiguous, as onnxruntime's preprocessing wants.
    """
    if allow_gray and isinstance(image, np.ndarray) and image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise InvalidArgument(f"image must be an (h, w, 3) RGB array, got shape {shape}.",
                              detail={"field": "image", "shape": shape})
    if image.dtype != np.uint8:
        raise InvalidArgument(f"image must be uint8, got {image.dtype}.",
                              detail={"field": "image", "dtype": str(image.dtype)})
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidArgument(f"image is empty (shape {image.shape}).", detail={"field": "image"})
    return np.ascontiguousarray(image)


def full_size(image: np.ndarray, size: Any = None) -> tuple[int, int]:
    """(h, w) of the original image an encoder input stands for: ``size`` when the image was
    decoded reduced (a huge scan; see ``backend.models.inputs.load_image``), else the array's own.
    Coordinates in and out of the models are in these pixels."""
    if size is None:
        return int(image.shape[0]), int(image.shape[1])
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InvalidArgument(f"size must be (h, w), got {size!r}.", detail={"field": "size"}) from None
    if h < image.shape[0] or w < image.shape[1]:
        raise InvalidArgument(f"size {(h, w)} is smaller than the image {image.shape[:2]}.",
                              detail={"field": "size"})
    return h, w


# The models see at most 1,024 px (SAM) or 960 px (OWLv2) on a side: decoding a 30,000 x 30,000
# scan whole for them would take 2.7 GB per image (and prefetch holds two). Above this the image
# is reduced while decoding (JPEG draft, PNG/BMP bands, TIFF strips) and the models are told its
# full size, so every coordinate in and out stays in the image's own pixels.
MODEL_MAX_SIDE = 4096


class ModelImage(NamedTuple):
    pixels: np.ndarray        # uint8 (h, w, 3) RGB, long side at most MODEL_MAX_SIDE
    size: tuple[int, int]     # (h, w) of the image as displayed: what coordinates refer to


def load_image(path: Path) -> ModelImage:
    """The image as the models see it (EXIF applied, default stretch), see MODEL_MAX_SIDE."""
    from backend.imaging import load_display_scaled, probe

    pixels, scale = load_display_scaled(path, max_side=MODEL_MAX_SIDE)
    if scale == 1.0:
        return ModelImage(pixels, (int(pixels.shape[0]), int(pixels.shape[1])))
    info = probe(path)
    return ModelImage(pixels, (int(info.height), int(info.width)))
