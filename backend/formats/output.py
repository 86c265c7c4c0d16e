"""Writing inside an export's staging folder: text, JSON and images.

A format module writes plain files under ``root`` (a fresh staging folder); the caller
(:func:`backend.formats.export_project`) turns it into the final folder or ZIP atomically, so
nothing here needs to be atomic itself, and nothing here writes outside ``root``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from backend.formats.options import FormatError

if TYPE_CHECKING:
    from backend.formats.dataset import ImageItem


def write_text(root: Path, relpath: str, text: str) -> str:
    """Write ``root/relpath`` (UTF-8) inside the staging folder; returns ``relpath``."""
    path = root.joinpath(*PurePosixPath(relpath).parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")
    return relpath


def write_json(root: Path, relpath: str, obj: Any, indent: int | None = None) -> str:
    """UTF-8 JSON (compact unless ``indent``); NaN/inf are refused, as JSON has none."""
    try:
        text = json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False,
                          check_circular=False,   # our data is a tree; skipping is faster
                          separators=None if indent else (",", ":"))
    except ValueError as exc:
        raise FormatError(f"Could not write {relpath}: a value is not a finite number ({exc}).",
                          detail={"file": relpath}) from exc
    return write_text(root, relpath, text)


def write_image(item: ImageItem, dest: Path) -> None:
    """Write ``item``'s image to ``dest`` so that any reader sees it as displayed.

    - Same size, no EXIF rotation: the file is copied byte for byte (16-bit and multi-channel
      data stay as they are: that is the data, and cv2/PIL based trainers reduce it themselves).
    - EXIF-rotated: the pixels are rotated and re-encoded without the tag (JPEG at quality 95),
      because readers disagree on the tag (OpenCV applies it, PIL and many loaders do not) and
      the coordinates are for the displayed image.
    - Resized: the on-screen 8-bit RGB rendering, resampled, as JPEG (quality 95) for JPEG
      sources and PNG otherwise — the "ready to train" path.
    """
    from PIL import Image

    from backend.imaging import load_display, probe, read_array

    dest.parent.mkdir(parents=True, exist_ok=True)
    src = item.path
    try:
        if item.resized:
            arr = load_display(src)
            im = Image.fromarray(arr).resize((item.width, item.height),
                                            Image.Resampling.LANCZOS, reducing_gap=3.0)
            _save(im, dest)
            return
        if probe(src).orientation == 1:
            shutil.copyfile(src, dest)
            return
        arr = read_array(src)
        if src.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(dest, arr)
            return
        try:
            im = Image.fromarray(arr)
        except (TypeError, ValueError):
            im = Image.fromarray(load_display(src))
        _save(im, dest)
    except OSError as exc:
        raise FormatError(f"Could not write '{dest}' ({exc.strerror or exc}). Check the free "
                          "space and that you may write to the export folder.",
                          detail={"file": str(dest)}) from exc


def _save(im: Any, dest: Path) -> None:
    if dest.suffix.lower() in (".jpg", ".jpeg"):
        im.convert("RGB").save(dest, format="JPEG", quality=95)
    else:
        im.save(dest)
