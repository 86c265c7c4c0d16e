"""Checks for every value the store accepts; each failure is InvalidArgument naming field and value.

Geometry conventions (ARCHITECTURE.md): image pixels as displayed, origin top-left, floats.

- ``box``: ``[x0, y0, x1, y1]``; corners given in any order are normalized so x0 <= x1, y0 <= y1.
- ``polygon``: ``[[x, y], ...]`` with at least 3 points.
- ``point``: ``[x, y]``.
- ``mask``: ``{"rle": {...}, "bbox": [x0, y0, x1, y1], ...}``; the RLE is opaque to the store.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from backend.errors import InvalidArgument

IMAGE_STATUSES = ("new", "in_progress", "done", "skipped")
SHAPE_STATUSES = ("accepted", "pending", "rejected")
KINDS = ("box", "polygon", "point", "mask")
MAX_CLASS_NAME = 200
MAX_PROMPT = 10_000
MAX_ERROR = 2_000
# A mask RLE of a 10k x 10k image with a ragged outline fits easily; anything bigger is a bug
# upstream and would make every shape list slow.
MAX_GEOMETRY_CHARS = 16 * 1024 * 1024

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
# "<pack id>@<pack version>"; the id follows backend.models.pack's rule.
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}@[^\s@]{1,100}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def check_id(value: Any, field: str = "id") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{field} must be an integer id, got {_short(value)}.")
    return value


def check_choice(value: Any, choices: tuple[str, ...], field: str) -> str:
    if value not in choices:
        raise InvalidArgument(
            f"{field} must be one of {', '.join(choices)}; got {_short(value)}.")
    return str(value)


def check_number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(f"{field} must be a finite number, got {_short(value)}.")
    return value


def check_optional_positive_int(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidArgument(f"{field} must be a positive integer or null, got {_short(value)}.")
    return value


def _point(value: Any, field: str) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise InvalidArgument(f"{field} must be a point [x, y], got {_short(value)}.")
    return [check_number(value[0], f"{field}[0]"), check_number(value[1], f"{field}[1]")]


def _box(value: Any, field: str) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise InvalidArgument(f"{field} must be a box [x0, y0, x1, y1], got {_short(value)}.")
    x0, y0, x1, y1 = (check_number(v, f"{field}[{i}]") for i, v in enumerate(value))
    return [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]


def check_geometry(kind: str, geometry: Any, field: str = "geometry") -> Any:
    """Validated, normalized geometry for ``kind`` (already checked against KINDS)."""
    if kind == "box":
        return _box(geometry, field)
    if kind == "point":
        return _point(geometry, field)
    if kind == "polygon":
        if not isinstance(geometry, (list, tuple)) or len(geometry) < 3:
            raise InvalidArgument(
                f"{field} of a polygon must be a list of at least 3 [x, y] points, "
                f"got {_short(geometry)}.")
        return [_point(p, f"{field}[{i}]") for i, p in enumerate(geometry)]
    if kind == "mask":
        if not isinstance(geometry, dict) or not isinstance(geometry.get("rle"), dict):
            raise InvalidArgument(
                f"{field} of a mask must be {{'rle': {{...}}, 'bbox': [x0, y0, x1, y1]}}, "
                f"got {_short(geometry)}.")
        out = dict(geometry)
        out["bbox"] = _box(geometry.get("bbox"), f"{field}.bbox")
        return out
    raise InvalidArgument(f"kind must be one of {', '.join(KINDS)}; got {_short(kind)}.")


def geometry_json(geometry: Any, field: str = "geometry") -> str:
    """Compact JSON for storage; refuses NaN/inf anywhere (masks are otherwise opaque)."""
    try:
        text = json.dumps(geometry, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"{field} must be plain JSON with finite numbers ({exc}).") from exc
    if len(text) > MAX_GEOMETRY_CHARS:
        raise InvalidArgument(f"{field} is too large ({len(text)} characters of JSON).")
    return text


def check_class_name(name: Any) -> str:
    if not isinstance(name, str):
        raise InvalidArgument(f"name must be text, got {_short(name)}.")
    name = name.strip()
    if not name:
        raise InvalidArgument("name must not be empty.")
    if len(name) > MAX_CLASS_NAME:
        raise InvalidArgument(
            f"name must be at most {MAX_CLASS_NAME} characters, got {len(name)}: {_short(name)}.")
    if _CONTROL.search(name):
        raise InvalidArgument(f"name must not contain control characters, got {_short(name)}.")
    return _encodable(name, "name")


def check_color(color: Any) -> str:
    if not isinstance(color, str) or not _COLOR.match(color):
        raise InvalidArgument(f"color must look like '#rrggbb', got {_short(color)}.")
    return color.lower()


def check_score(score: Any, field: str = "score") -> float | None:
    return None if score is None else float(check_number(score, field))


def check_source(source: Any, field: str = "source") -> str:
    if source == "manual":
        return source
    if not isinstance(source, str) or not _SOURCE.match(source):
        raise InvalidArgument(
            f"{field} must be 'manual' or '<pack id>@<version>', got {_short(source)}.")
    return source


def check_optional_text(value: Any, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidArgument(
            f"{field} must be text of at most {limit} characters or null, got {_short(value)}.")
    return _encodable(value, field)


def _encodable(text: str, field: str) -> str:
    """Text SQLite can store: a lone surrogate (from a file name that is not UTF-8, or JSON's
    "\\ud800") would fail deep in the store as UnicodeEncodeError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"{field} must be valid Unicode text, got {_short(text)}.") from None
    return text


def check_setting_key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > 200:
        raise InvalidArgument(f"key must be non-empty text of at most 200 characters, "
                              f"got {_short(key)}.")
    return key


def setting_json(key: str, value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"value of setting {key!r} must be plain JSON ({exc}).") from exc
