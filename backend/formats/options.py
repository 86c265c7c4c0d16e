"""Export options and results: what to export and how, and what an export or import did.

``Progress`` callbacks, :class:`FormatError` and :func:`report` are shared by every format
module; see :mod:`backend.formats.base` for the module contract.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.errors import FieldmarkError, InvalidArgument

if TYPE_CHECKING:
    from backend.formats.dataset import ImageItem

Progress = Callable[[int, int, str], None] | None
"""``progress(done, total, message)``; may raise (a job's Cancelled) to stop the work."""

SPLIT_NAMES = ("train", "val", "test")
SEGMENTATIONS = ("polygon", "rle")


class FormatError(FieldmarkError):
    """An input file is malformed or an output cannot be written; the message names the file."""

    code = "format_error"


def report(progress: Progress, done: int, total: int, message: str = "") -> None:
    if progress is not None:
        progress(done, total, message)


# -- options and results --------------------------------------------------------------------

@dataclass(frozen=True)
class ExportOptions:
    """What to export and how.

    ``split``: ``(train, val)`` or ``(train, val, test)`` fractions summing to 1; images are
    assigned by :func:`assign_splits` (seeded by ``seed``, stratified by class). ``resize``: the
    longest side of every written image becomes this many pixels (coordinates rescaled to
    match) and the output is a ZIP. ``segmentation``: ``"polygon"`` or ``"rle"`` (COCO).
    """

    include_pending: bool = False
    include_unlabeled: bool = True
    split: tuple[float, ...] | None = None
    seed: int = 0
    resize: int | None = None
    copy_images: bool = True
    segmentation: str = "polygon"

    def __post_init__(self) -> None:
        for name in ("include_pending", "include_unlabeled", "copy_images"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidArgument(f"{name} must be true or false, got "
                                      f"{getattr(self, name)!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise InvalidArgument(f"seed must be an integer, got {self.seed!r}.")
        if self.resize is not None and (isinstance(self.resize, bool)
                                        or not isinstance(self.resize, int)
                                        or not 16 <= self.resize <= 16384):
            raise InvalidArgument(f"resize must be a longest side of 16 to 16384 pixels, got "
                                  f"{self.resize!r}.")
        if self.segmentation not in SEGMENTATIONS:
            raise InvalidArgument(f"segmentation must be one of {', '.join(SEGMENTATIONS)}, "
                                  f"got {self.segmentation!r}.")
        if self.split is not None:
            object.__setattr__(self, "split", check_split(self.split))

    @property
    def statuses(self) -> tuple[str, ...]:
        """Shape statuses that are exported (rejected never are)."""
        return ("accepted", "pending") if self.include_pending else ("accepted",)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ExportOptions:
        """Options from JSON (the bridge); unknown keys are refused by name."""
        if not isinstance(values, dict):
            raise InvalidArgument(f"options must be an object, got {values!r}.")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidArgument(f"options has unknown fields {unknown}; allowed are "
                                  f"{sorted(known)}.")
        split = values.get("split")
        return cls(**{**values, "split": tuple(split) if isinstance(split, list) else split})


def check_split(split: Any) -> tuple[float, ...]:
    """``(train, val[, test])`` fractions, each in [0, 1], train > 0, summing to 1."""
    if isinstance(split, str):
        try:
            split = tuple(float(p) for p in split.split(","))
        except ValueError:
            raise InvalidArgument(f"split must be fractions like 0.8,0.1,0.1, got {split!r}."
                                  ) from None
    if (not isinstance(split, (tuple, list)) or not 2 <= len(split) <= 3
            or not all(isinstance(f, (int, float)) and not isinstance(f, bool)
                       and math.isfinite(f) and 0 <= f <= 1 for f in split)):
        raise InvalidArgument(f"split must be 2 or 3 fractions (train, val[, test]) between "
                              f"0 and 1, got {split!r}.")
    if abs(sum(split) - 1.0) > 1e-6 or split[0] <= 0:
        raise InvalidArgument(f"split fractions must add up to 1 with train above 0, got "
                              f"{list(split)} (sum {sum(split):g}).")
    return tuple(float(f) for f in split)


@dataclass
class ExportSummary:
    """What an export wrote. ``out`` is the final folder or ZIP; ``files`` the annotation and
    metadata files (relative to ``out``; image copies are counted in ``images``, not listed);
    ``skipped``: ``{"image", "shape_id", "reason"}`` for each shape (or image, shape_id None)
    the format could not hold; ``notes``: ``{"image", "shape_id", "note"}`` for shapes written in
    another form than asked."""

    format: str
    out: Path
    images: int = 0
    shapes: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)

    def skip(self, image: ImageItem | str | None, shape: dict[str, Any] | None,
             reason: str) -> None:
        name = image if image is None or isinstance(image, str) else image.relpath
        self.skipped.append({"image": name, "shape_id": shape["id"] if shape else None,
                             "reason": reason})

    def note(self, image: ImageItem, shape: dict[str, Any], note: str) -> None:
        self.notes.append({"image": image.relpath, "shape_id": shape["id"], "note": note})

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["out"] = str(self.out)
        return out


@dataclass
class ImportReport:
    """What an import added. ``classes_added``: names of the classes it created; ``skipped``:
    ``{"item", "reason"}`` for every image or annotation that was not imported."""

    format: str
    images_matched: int = 0
    shapes_added: int = 0
    classes_added: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
