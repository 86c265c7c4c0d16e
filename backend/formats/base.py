"""What every format module shares: options, the dataset snapshot, summaries, output, import.

A format module (``coco``, ``yolo``, ``voc``, ...) is a flat set of pure converter pairs over
plain data (``dataset_to_coco(dataset, options) -> dict``, ``coco_to_annotations(data, ...)``)
plus two thin wrappers that :mod:`backend.formats` calls::

    export(dataset: Dataset, root: Path, options: ExportOptions,
           progress: Progress) -> ExportSummary
    import_(project: Project, src: Path, progress: Progress) -> ImportReport

Export: :func:`load_dataset` reads the project once into a :class:`Dataset` (the images and the
shapes to export, already filtered by status, split and — with ``resize`` — rescaled to the
output size), then ``export`` writes files under ``root``, a fresh staging folder. The caller
(:func:`backend.formats.export_project`) turns ``root`` into the final folder or ZIP atomically,
so a module writes plain files (:func:`write_json`, :func:`write_text`) and copies images with
:func:`write_image`. A module never writes outside ``root`` and never sees the final path.

Coordinates in a Dataset are the store's (ARCHITECTURE.md): pixels of the image as displayed
(EXIF applied), origin top-left, box ``[x0, y0, x1, y1]``, polygon ``[[x, y], ...]`` (one ring),
point ``[x, y]``, mask ``{"rle": {"size": [h, w], "counts": str}, "bbox": [...]}`` whose RLE
covers the whole image (``size == [height, width]``). Formats convert at their own boundary.

A shape a format cannot hold goes into ``summary.skipped`` with a reason, never silently away;
a shape written in a different form than asked (a polygon with holes written as RLE) goes into
``summary.notes``.

Import is all or nothing: parse and validate every file first (raise :class:`FormatError`
naming the file and the problem), match images with :class:`ImageMatcher`, collect
:func:`import_item` records, then :func:`commit_import` writes them in one transaction, one
undo step, creating classes by name as needed.

This module gathers the shared pieces, which live by concern in :mod:`~backend.formats.options`
(options, summaries, reports, :class:`FormatError`), :mod:`~backend.formats.dataset` (the
snapshot, splits, resize), :mod:`~backend.formats.outlines` (mask outlines for polygon
formats), :mod:`~backend.formats.output` (writing files and images) and
:mod:`~backend.formats.importing` (matching images, committing an import).
"""

from __future__ import annotations

from backend.formats.dataset import (
    ClassItem,
    Dataset,
    ImageItem,
    assign_splits,
    image_size,
    load_dataset,
    rescale_shape,
    resized_size,
)
from backend.formats.importing import ImageMatcher, commit_import, import_item, read_json
from backend.formats.options import (
    SEGMENTATIONS,
    SPLIT_NAMES,
    ExportOptions,
    ExportSummary,
    FormatError,
    ImportReport,
    Progress,
    check_split,
    report,
)
from backend.formats.outlines import mask_outlines, mask_parts
from backend.formats.output import write_image, write_json, write_text

__all__ = [
    "SEGMENTATIONS", "SPLIT_NAMES", "ClassItem", "Dataset", "ExportOptions", "ExportSummary",
    "FormatError", "ImageItem", "ImageMatcher", "ImportReport", "Progress", "assign_splits",
    "check_split", "commit_import", "image_size", "import_item", "load_dataset",
    "mask_outlines", "mask_parts", "read_json", "report", "rescale_shape", "resized_size",
    "write_image", "write_json", "write_text",
]
