"""Independent readers for the part-B format tests (VOC, labelme, masks, CVAT, Label Studio).

Each decoder here follows the *reader's* documented behaviour, written from the format's
description rather than from our encoder, so a test compares two implementations.
"""

from __future__ import annotations

import base64
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from skimage.draw import polygon as sk_polygon

from backend.formats import ExportOptions, export_project
from backend.store import Project

warnings.filterwarnings("ignore", message="OpenCV .* is not installed")

# Pascal VOC colormap entries as published with the devkit (background, aeroplane, bicycle,
# bird, ..., and the void colour at 255).
VOC_COLORS = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0),
              4: (0, 0, 128), 15: (192, 128, 128), 255: (224, 224, 192)}


def export(project: Project, fmt: str, out: Path, **options: Any):
    return export_project(project, fmt, out, ExportOptions(**options))


def files_of(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` by relative path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def centre_raster(points: list[list[float]], height: int, width: int) -> np.ndarray:
    """Pixels whose centre (c + 0.5, r + 0.5) lies inside the ring, by scikit-image."""
    pts = np.asarray(points, dtype=float)
    out = np.zeros((height, width), bool)
    rr, cc = sk_polygon(pts[:, 1] - 0.5, pts[:, 0] - 0.5, shape=(height, width))
    out[rr, cc] = True
    return out


def png_array(data: bytes | Path) -> tuple[np.ndarray, str]:
    raw = data.read_bytes() if isinstance(data, Path) else data
    with Image.open(io.BytesIO(raw)) as im:
        return np.asarray(im), im.mode


def labelme_mask(shape: dict[str, Any], height: int, width: int) -> np.ndarray:
    """What ``labelme.utils.shapes_to_label`` does with a ``mask`` shape."""
    crop, _ = png_array(base64.b64decode(shape["mask"]))
    out = np.zeros((height, width), bool)
    (x1, y1), (x2, y2) = np.asarray(shape["points"]).astype(int)
    out[y1:y2 + 1, x1:x2 + 1] = crop.astype(bool)
    return out


def cvat_mask(el: Any, height: int, width: int) -> np.ndarray:
    """A ``<mask>`` element as CVAT reads it: runs over the box, row by row, background first."""
    runs = [int(v) for v in el.attrib["rle"].split(",")]
    left, top = int(el.attrib["left"]), int(el.attrib["top"])
    w, h = int(el.attrib["width"]), int(el.attrib["height"])
    assert sum(runs) == w * h
    flat = np.zeros(w * h, bool)
    at, value = 0, False
    for r in runs:
        flat[at:at + r] = value
        at += r
        value = not value
    out = np.zeros((height, width), bool)
    out[top:top + h, left:left + w] = flat.reshape(h, w)
    return out


class _Bits:
    def __init__(self, data: list[int]) -> None:
        self.bits = "".join(f"{b:08b}" for b in data)
        self.at = 0

    def read(self, n: int) -> int:
        value = int(self.bits[self.at:self.at + n], 2)
        self.at += n
        return value


def ls_brush_decode(rle: list[int]) -> np.ndarray:
    """Label Studio's brush RLE, decoded as its front end does (thi-ng rle-pack ``decode``):
    32-bit count, 5-bit word size - 1, four 4-bit run sizes - 1, then per record a flag bit,
    a 2-bit size class, ``length - 1``, and one repeated word (flag 1) or ``length`` words."""
    bits = _Bits(rle)
    num = bits.read(32)
    word = bits.read(5) + 1
    sizes = [bits.read(4) + 1 for _ in range(4)]
    out = np.zeros(num, np.uint8)
    i = 0
    while i < num:
        repeat = bits.read(1)
        j = i + 1 + bits.read(sizes[bits.read(2)])
        if repeat:
            out[i:j] = bits.read(word)
            i = j
        else:
            while i < j:
                out[i] = bits.read(word)
                i += 1
    return out
