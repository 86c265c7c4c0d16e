"""(Re)build the demo project's images and their licence file.

Run from the repository root:  ``python demo/make_demo.py``

* Six public-domain / CC0 photos come from the installed scikit-image wheel (``skimage/data``);
  colour PNGs and JPEGs are re-encoded as JPEG (quality 90) to keep the repository small, the
  grayscale ``camera.png`` stays a PNG (so the demo shows a gray image too).
* ``chelsea.jpg`` is stored rotated a quarter turn with EXIF orientation 6, so it is displayed
  upright only when orientation is applied: the demo exercises the coordinate contract.
* ``cells_16bit.tif`` is synthetic (numpy, fixed seed): 3 channels x 384 x 512, uint16, with
  nuclei, cytoplasm and small spots at very different intensities, so the 16-bit stretch and
  the channel picker have something to show.

The output is deterministic for a given Pillow/zlib version.
"""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.atomic import write_bytes, write_text  # noqa: E402

OUT = ROOT / "demo" / "images"
JPEG_QUALITY = 90

# output name -> (skimage file, skimage function, credit, licence as stated in skimage's docstring)
PHOTOS: dict[str, tuple[str, str, str, str]] = {
    "astronaut.jpg": (
        "astronaut.png",
        "skimage.data.astronaut",
        "NASA; photograph of astronaut Eileen Collins, from the NASA Great Images database (https://flic.kr/p/r9qvLn)",
        "No known copyright restrictions, released into the public domain.",
    ),
    "camera.png": (
        "camera.png",
        "skimage.data.camera",
        "Lav Varshney",
        "No copyright restrictions. CC0 by the photographer (Lav Varshney).",
    ),
    "chelsea.jpg": (
        "chelsea.png",
        "skimage.data.chelsea",
        "Stefan van der Walt",
        "No copyright restrictions.  CC0 by the photographer (Stefan van der Walt).",
    ),
    "coffee.jpg": (
        "coffee.png",
        "skimage.data.coffee",
        "Rachel Michetti",
        "No copyright restrictions.  CC0 by the photographer (Rachel Michetti).",
    ),
    "hubble_deep_field.jpg": (
        "hubble_deep_field.jpg",
        "skimage.data.hubble_deep_field",
        "NASA, Hubble eXtreme Deep Field (http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/)",
        "The image was captured by NASA and may be freely used in the public domain "
        "(http://www.nasa.gov/audience/formedia/features/MP_Photo_Guidelines.html).",
    ),
    "rocket.jpg": (
        "rocket.jpg",
        "skimage.data.rocket",
        "SpaceX (https://www.flickr.com/photos/spacexphotos/16511594820/in/photostream/)",
        "The image was captured by SpaceX and released in the public domain "
        "(http://arstechnica.com/tech-policy/2015/03/elon-musk-puts-spacex-photos-into-the-public-domain/).",
    ),
}
ROTATED = {"chelsea.jpg"}  # stored turned, displayed upright through EXIF orientation 6


def skimage_data_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise SystemExit("scikit-image is needed to rebuild the demo photos: pip install scikit-image")
    return Path(spec.origin).parent / "data"


def photo_bytes(src: Path, name: str) -> bytes:
    with Image.open(src) as im:
        buf = io.BytesIO()
        if name.endswith(".png"):
            im.save(buf, format="PNG", optimize=True)
            return buf.getvalue()
        rgb = im.convert("RGB")
        if name in ROTATED:
            # Stored = upright turned 90 degrees counter-clockwise; orientation 6 turns it back.
            rgb = rgb.transpose(Image.Transpose.ROTATE_90)
            exif = Image.Exif()
            exif[0x0112] = 6
            rgb.save(buf, format="JPEG", quality=JPEG_QUALITY, exif=exif.tobytes())
        else:
            rgb.save(buf, format="JPEG", quality=JPEG_QUALITY)
        return buf.getvalue()


def _blobs(shape: tuple[int, int], centers: np.ndarray, radii: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Sum of Gaussian blobs; radii and peaks per blob."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    out = np.zeros(shape, np.float32)
    for (cy, cx), r, p in zip(centers, radii, peaks, strict=True):
        y0, y1 = max(0, int(cy - 4 * r)), min(shape[0], int(cy + 4 * r) + 1)
        x0, x1 = max(0, int(cx - 4 * r)), min(shape[1], int(cx + 4 * r) + 1)
        d2 = (yy[y0:y1, x0:x1] - cy) ** 2 + (xx[y0:y1, x0:x1] - cx) ** 2
        out[y0:y1, x0:x1] += p * np.exp(-d2 / (2 * r * r))
    return out


def cells_16bit(seed: int = 2024, height: int = 384, width: int = 512) -> np.ndarray:
    """(3, H, W) uint16: nuclei (bright), cytoplasm (dim, larger), spots (faint, small)."""
    rng = np.random.default_rng(seed)
    n = 28
    centers = rng.uniform([20, 20], [height - 20, width - 20], (n, 2))
    nuclei = _blobs((height, width), centers, rng.uniform(7, 12, n), rng.uniform(9000, 20000, n))
    offsets = centers + rng.normal(0, 3, (n, 2))
    cyto = _blobs((height, width), offsets, rng.uniform(16, 24, n), rng.uniform(1200, 2500, n))
    m = 140
    spot_centers = centers[rng.integers(0, n, m)] + rng.normal(0, 14, (m, 2))
    spots = _blobs((height, width), spot_centers, rng.uniform(1.2, 2.0, m), rng.uniform(300, 700, m))
    background = np.array([180.0, 400.0, 110.0], np.float32)[:, None, None]
    stack = np.stack([nuclei, cyto, spots]) + background
    # Camera-like noise, quantized to steps of 8 counts so the file compresses well.
    noisy = stack + rng.normal(0, 1, stack.shape).astype(np.float32) * np.sqrt(stack) * 0.5
    return (np.clip(np.rint(noisy / 8) * 8, 0, 65535)).astype(np.uint16)


def cells_tiff_bytes() -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(
        buf,
        cells_16bit(),
        photometric="minisblack",
        compression="zlib",
        compressionargs={"level": 9},
        metadata={"axes": "CYX", "Channel": {"Name": ["nuclei", "cytoplasm", "spots"]}},
    )
    return buf.getvalue()


def licence_text() -> str:
    lines = [
        "# Demo images: sources and licences",
        "",
        "Built by `demo/make_demo.py` from the sample data shipped in the scikit-image wheel",
        "(`skimage/data/`, scikit-image 0.26). The licence statements below are quoted from the",
        "docstrings of the named `skimage.data` functions (`skimage/data/_fetchers.py`, reStructuredText",
        "link markup turned into plain URLs in parentheses); the data",
        "folder's README.txt carries no per-image licence. Only images stated to be public domain or",
        "CC0 were chosen.",
        "",
        "| file | source | credit | licence (quoted) | changes |",
        "|---|---|---|---|---|",
    ]
    for name, (src, func, credit, licence) in PHOTOS.items():
        if name.endswith(".png"):
            change = "re-saved as PNG (optimized)"
        elif name in ROTATED:
            change = "re-encoded as JPEG q90; stored rotated 90 degrees with EXIF orientation 6 (displays upright)"
        else:
            change = "re-encoded as JPEG q90"
        lines.append(f'| `{name}` | `{src}` (`{func}`) | {credit} | "{licence}" | {change} |')
    lines += [
        "| `cells_16bit.tif` | synthetic, `demo/make_demo.py` | Fieldmark contributors | "
        "CC0 1.0 (public domain dedication) | 3 x 384 x 512 uint16 (C, Y, X), Deflate-compressed |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    data_dir = skimage_data_dir()
    OUT.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, (src, *_rest) in PHOTOS.items():
        blob = photo_bytes(data_dir / src, name)
        write_bytes(OUT / name, blob)
        total += len(blob)
        print(f"{name:24s} {len(blob) / 1024:7.1f} KiB")
    blob = cells_tiff_bytes()
    write_bytes(OUT / "cells_16bit.tif", blob)
    total += len(blob)
    print(f"{'cells_16bit.tif':24s} {len(blob) / 1024:7.1f} KiB")
    write_text(ROOT / "demo" / "LICENSE.md", licence_text())
    print(f"{'total':24s} {total / 1024:7.1f} KiB")


if __name__ == "__main__":
    main()
