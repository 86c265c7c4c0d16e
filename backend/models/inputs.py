"""Checks on what callers hand the models: one place, so every family refuses the same way."""

from __future__ import annotations

from typing import Any

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
