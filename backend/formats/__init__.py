"""Dataset formats: one module per format, each with ``export`` and (most) ``import_``.

Entry points (the GUI's jobs and the CLI both call these)::

    export_project(project, fmt, out, options=None, progress=None, overwrite=False)
        -> ExportSummary
    import_project(project, fmt, src, progress=None) -> ImportReport
    describe_formats() -> [{"name", "label", "available", "can_import"}]

``FORMATS`` maps a format name to ``"module"`` or ``"module:attribute"`` (an object with
``export`` / ``import_``, for two formats that share a module). Modules are imported when first
used, so a format whose module is not there says "not available" instead of breaking the rest.
A module contract is in :mod:`backend.formats.base`.

Output: ``out`` is a folder, or a ZIP file when ``options.resize`` is set or ``out`` ends in
``.zip`` (".zip" is appended when resizing into a path without it). Everything is first written
to a hidden staging folder next to ``out`` and moved into place at the end, so a failed or
cancelled export leaves no half-written output. An existing non-empty ``out`` is refused unless
``overwrite``. A folder export with image copies may not go inside the project folder (the
next scan would take the copies for new images).

Images: copied as they are (16-bit and multi-channel files too), except EXIF-rotated ones,
which are written upright without the tag (coordinates are for the displayed image, and
readers disagree on the tag), and ``resize`` exports, which write the on-screen 8-bit RGB
rendering (see :func:`backend.formats.base.write_image`). Image folders keep the project's
sub-folders, so equal file names in different folders do not collide.

Layouts (each module's docstring has the details and what the format cannot hold):

- ``coco``: ``annotations.json`` (or ``annotations/<split>.json``) and ``images/<relpath>``.
- ``yolo`` / ``yolo-seg``: ``data.yaml``, ``images/<split>/<relpath>``,
  ``labels/<split>/<relpath stem>.txt`` (detect boxes / segment polygons).

Modules: one writer per format (``coco``, ``yolo``, ``voc``, ``labelme``, ``masks``, ``cvat``,
``labelstudio``) with its reader beside it (``coco_read``, ``yolo_read``, ``voc_read``; labelme
reads in its own module), the shared pieces re-exported by ``base`` (``options``, ``dataset``,
``outlines``, ``output``, ``importing``), ``shape_rle`` (boxes and polygons as COCO RLE, in
batches) and ``catalog`` (what each format is for, for the dialogs). Conventions:
docs/adr/0007-export-formats-conventions.md.

The store gained two methods for this package: ``Project.all_shapes(statuses, image_ids)``
(one query for every shape) and ``Project.import_shapes(items, description, class_names)``
(an import as one transaction and one undo step).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import re
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend import leftovers
from backend.errors import InvalidArgument, NotFound
from backend.formats.base import (
    Dataset,
    ExportOptions,
    ExportSummary,
    FormatError,
    ImportReport,
    Progress,
    load_dataset,
    report,
)

if TYPE_CHECKING:
    from backend.store import Project

__all__ = ["FORMATS", "Dataset", "ExportOptions", "ExportSummary", "FormatError",
           "ImportReport", "describe_formats", "export_project", "import_project",
           "load_dataset", "load_format"]

FORMATS: dict[str, str] = {
    "coco": "backend.formats.coco",
    "yolo": "backend.formats.yolo",
    "yolo-seg": "backend.formats.yolo:SEGMENT",
    "voc": "backend.formats.voc",
    "labelme": "backend.formats.labelme",
    "masks": "backend.formats.masks",
    "cvat": "backend.formats.cvat",
    "labelstudio": "backend.formats.labelstudio",
}

LABELS: dict[str, str] = {
    "coco": "COCO (JSON, boxes + polygons or RLE)",
    "yolo": "YOLO detect (boxes, data.yaml)",
    "yolo-seg": "YOLO segment (polygons, data.yaml)",
    "voc": "Pascal VOC (XML, segmentation PNGs)",
    "labelme": "labelme (JSON per image)",
    "masks": "Semantic masks (pixel-classifier layout)",
    "cvat": "CVAT for images (XML)",
    "labelstudio": "Label Studio (JSON)",
}

# Extensions whose bytes are already compressed: stored, not deflated, in a ZIP.
_STORED = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".zip"}


def load_format(fmt: str) -> Any:
    """The module (or object) implementing ``fmt``; FormatError if it is not available."""
    if fmt not in FORMATS:
        raise InvalidArgument(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.",
                              detail={"field": "format", "value": fmt})
    module_name, _, attr = FORMATS[fmt].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise FormatError(f"The {fmt} format is not available in this version of Fieldmark.",
                          code="format_unavailable", detail={"format": fmt}) from exc
    return getattr(module, attr) if attr else module


def describe_formats() -> list[dict[str, Any]]:
    """Every format: ``name``, ``label``, whether it can be used here (``available``) and
    imports too (``can_import``), and from :mod:`backend.formats.catalog` a one-line
    ``description``, what it ``holds``, the export ``options`` it honours and, for importable
    formats, ``import_source`` (``"file"`` or ``"folder"``) with an ``import_hint``."""
    from backend.formats.catalog import CATALOG, FormatInfo

    out = []
    for name in FORMATS:
        try:
            impl = load_format(name)
        except FormatError:
            impl = None
        info = CATALOG.get(name) or FormatInfo(LABELS.get(name, name), "", "")
        can_import = impl is not None and hasattr(impl, "import_")
        out.append({"name": name, "label": LABELS.get(name, name), "available": impl is not None,
                    "can_import": can_import, "title": info.label,
                    "description": info.description, "holds": info.holds,
                    "options": list(info.options),
                    "import_source": info.import_source if can_import else None,
                    "import_hint": info.import_hint if can_import else ""})
    return out


def export_project(project: Project, fmt: str, out: Path | str,
                   options: ExportOptions | None = None, progress: Progress = None,
                   overwrite: bool = False) -> ExportSummary:
    """Export ``project`` as ``fmt`` to the folder or ZIP ``out`` (see the module docstring)."""
    impl = load_format(fmt)
    options = options or ExportOptions()
    target = Path(out).expanduser()
    as_zip = options.resize is not None or target.suffix.lower() == ".zip"
    if as_zip and target.suffix.lower() != ".zip":
        target = target.with_name(target.name + ".zip")
    target = target.resolve()
    _recover_interrupted(target)
    _check_target(project, target, as_zip, options, overwrite)
    report(progress, 0, 1, "Reading the project")
    staging = target.parent / f".{target.name}.{_tag()}.partial"
    try:
        with _gc_paused():
            dataset = load_dataset(project, options, progress)
            staging.mkdir(parents=True)
            summary = impl.export(dataset, staging, options, progress)
        summary.skipped[:0] = dataset.skipped
        if as_zip:
            _zip_into(staging, target, progress)
        else:
            _move_into(staging, target)
    except OSError as exc:
        raise FormatError(f"Could not write the export to '{target}' ({exc.strerror or exc}). "
                          "Check the free space and that you may write there.",
                          detail={"file": str(target)}) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary.out = target
    return summary


def import_project(project: Project, fmt: str, src: Path | str,
                   progress: Progress = None) -> ImportReport:
    """Import the annotations at ``src`` (a file or folder, as the format expects) into
    ``project``: all or nothing, one undo step."""
    impl = load_format(fmt)
    if not hasattr(impl, "import_"):
        raise FormatError(f"Fieldmark can export {fmt} but not import it.",
                          code="format_unavailable", detail={"format": fmt})
    path = Path(src).expanduser()
    if not path.exists():
        raise NotFound(f"There is nothing at '{path}' to import. Check the path.",
                       detail={"file": str(path)})
    with _gc_paused():
        return impl.import_(project, path, progress)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a dataset is in memory.

    An export holds hundreds of thousands of small dicts and lists; each allocation burst
    makes the collector walk all of them again, which cost a third of a 100,000-shape COCO
    export. Nothing here makes reference cycles that must be freed before the end.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check_target(project: Project, target: Path, as_zip: bool, options: ExportOptions,
                  overwrite: bool) -> None:
    folder = Path(project.folder).resolve()
    if target == folder or target in folder.parents:
        raise FormatError(f"Cannot export into '{target}': it holds the project itself. "
                          "Choose a new folder.", detail={"file": str(target)})
    if (not as_zip and options.copy_images and folder in target.parents
            and not any(p.startswith(".") for p in target.relative_to(folder).parts)):
        raise FormatError(f"Cannot copy the images to '{target}', inside the project folder: "
                          "Fieldmark would take the copies for new images. Choose a folder "
                          "outside the project, or export to a .zip.",
                          detail={"file": str(target)})
    if not target.exists() and not target.is_symlink():
        return
    if as_zip and target.is_dir():
        raise FormatError(f"'{target}' is a folder; give a file name for the ZIP.",
                          detail={"file": str(target)})
    if not as_zip and not target.is_dir():
        raise FormatError(f"'{target}' is a file; give a folder to export into.",
                          detail={"file": str(target)})
    empty = target.is_dir() and not any(target.iterdir())
    if not empty and not overwrite:
        raise FormatError(f"'{target}' already exists. Choose another name, or allow "
                          "overwriting it (--overwrite).", code="exists",
                          detail={"file": str(target)})


def _tag() -> str:
    """``<pid>-<random>``: which process a temporary name belongs to (``backend.leftovers``)."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _recover_interrupted(target: Path) -> None:
    """Clean up after an export to ``target`` whose process was killed: its staging folder or
    ZIP goes; a previous export it had moved aside (killed between the two renames of
    :func:`_move_into`) comes back, so a kill never loses the export that was there."""
    pattern = re.escape(f".{target.name}.") + r"(?P<pid>\d+)-[0-9a-f]{8}\.(partial|partial\.zip|old)"
    for path in sorted(leftovers.orphans(target.parent, pattern)):
        if path.name.endswith(".old") and not target.exists():
            os.replace(path, target)
        else:
            leftovers.remove(path)


def _move_into(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` with renames, so readers see old or new, never half."""
    if target.exists():
        old = target.parent / f".{target.name}.{_tag()}.old"
        os.replace(target, old)
        try:
            os.replace(staging, target)
        except OSError:
            os.replace(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)


def _zip_into(staging: Path, target: Path, progress: Progress) -> None:
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    partial = staging.with_name(staging.name + ".zip")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED,
                             compresslevel=6) as zf:
            for n, path in enumerate(files):
                report(progress, n, len(files), "Writing the ZIP")
                stored = path.suffix.lower() in _STORED
                zf.write(path, path.relative_to(staging).as_posix(),
                         compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
        with open(partial, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()
