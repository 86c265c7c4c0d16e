"""YOLO import: ``data.yaml`` (or ``classes.txt`` / ``obj.names``) and the label files.

Both line kinds are read: ``class cx cy w h`` (detect) and ``class x1 y1 x2 y2 ...``
(segment); a trailing confidence (as in Ultralytics predictions) becomes the shape's score, and a
segment line that is exactly an axis-aligned rectangle becomes a box (that is how a box is
written in segment labels). Coordinates are normalized by the displayed image size. Label files
are matched to project images by path without the suffix. ``data.yaml`` is read with a small
parser for the subset Ultralytics writes (``names`` as a list or a mapping, quoted or plain
scalars), so no YAML library is needed. All or nothing: a malformed line stops the import,
naming the file and the line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from backend.formats.base import (
    SPLIT_NAMES,
    FormatError,
    ImageMatcher,
    ImportReport,
    Progress,
    commit_import,
    image_size,
    report,
)
from backend.formats.importing import add_item, valid_class_name

if TYPE_CHECKING:
    from backend.store import Project


_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f",
            "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85",
            "_": "\xa0", "L": "\u2028", "P": "\u2029"}
_HEX = {"x": 2, "u": 4, "U": 8}


def _yaml_scalar(raw: str) -> str:
    """A plain, 'single' or "double" quoted YAML scalar as text (the subset data.yaml uses)."""
    raw = raw.strip()
    if raw.startswith('"'):
        out, i = [], 1
        while i < len(raw) and raw[i] != '"':
            if raw[i] == "\\" and i + 1 < len(raw):
                esc = raw[i + 1]
                if esc in _HEX:
                    out.append(chr(int(raw[i + 2:i + 2 + _HEX[esc]], 16)))
                    i += 2 + _HEX[esc]
                    continue
                out.append(_ESCAPES.get(esc, esc))
                i += 2
                continue
            out.append(raw[i])
            i += 1
        return "".join(out)
    if raw.startswith("'"):
        end = raw.rfind("'")
        return raw[1:end if end > 0 else None].replace("''", "'")
    return re.sub(r"\s+#.*$", "", raw).strip()


def _split_flow(body: str) -> list[str]:
    """Items of a flow sequence/mapping body, splitting on commas outside quotes."""
    items, cur, quote = [], "", ""
    for ch in body:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            cur += ch
        elif ch == ",":
            items.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        items.append(cur)
    return [i.strip() for i in items if i.strip()]


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition(":")
    if not sep:
        raise ValueError(f"expected 'index: name', got {item!r}")
    return key.strip(), value


def parse_names(text: str) -> list[str] | None:
    """Class names from data.yaml text (``names:`` as a list or an index mapping, block or
    flow style); None when there is no ``names`` key. ValueError on a form it cannot read."""
    lines = text.splitlines()
    for n, line in enumerate(lines):
        m = re.match(r"^names\s*:(.*)$", line)
        if not m:
            continue
        rest = re.sub(r"\s+#[^\"']*$", "", m.group(1)).strip()
        if rest.startswith("["):
            return [_yaml_scalar(i) for i in _split_flow(rest.strip("[] "))]
        if rest.startswith("{"):
            pairs = [_key_value(i) for i in _split_flow(rest.strip("{} "))]
            return _ordered({k: _yaml_scalar(v) for k, v in pairs})
        if rest:
            raise ValueError(f"cannot read 'names: {rest}'")
        block: list[str] = []
        for sub in lines[n + 1:]:
            if not sub.strip() or sub.lstrip().startswith("#"):
                continue
            if not sub[:1].isspace() and not sub.startswith("-"):
                break
            block.append(sub.strip())
        if all(b.startswith("-") for b in block):
            return [_yaml_scalar(b[1:]) for b in block]
        return _ordered({k: _yaml_scalar(v) for k, v in map(_key_value, block)})
    return None


def _ordered(mapping: dict[str, str]) -> list[str]:
    try:
        index = {int(k): v for k, v in mapping.items()}
    except ValueError as exc:
        raise ValueError(f"class indices must be integers, got {list(mapping)}") from exc
    if sorted(index) != list(range(len(index))):
        raise ValueError(f"class indices must be 0..{len(index) - 1}, got {sorted(index)}")
    return [index[i] for i in range(len(index))]


def _read_names(src: Path) -> list[str] | None:
    for path in [src / "data.yaml", *sorted(src.glob("*.yaml")), *sorted(src.glob("*.yml")),
                 src / "classes.txt", src / "obj.names"]:
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8-sig")
            names = parse_names(text) if path.suffix in (".yaml", ".yml") else \
                [line.strip() for line in text.splitlines() if line.strip()]
            # Checked here, so a bad name is reported with its file, not by the store.
            return None if names is None else [valid_class_name(n) for n in names]
        except (ValueError, OSError) as exc:   # UnicodeDecodeError is a ValueError
            raise FormatError(f"Could not read the class names in '{path}' ({exc}).",
                              detail={"file": str(path)}) from exc
    return None


def parse_label_file(text: str, path: Path, n_classes: int | None
                     ) -> list[tuple[int, str, list[float], float | None, int]]:
    """``(class, "box" | "polygon", normalized numbers, score, line number)`` per line;
    FormatError on a bad line (naming the file and line)."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue

        def bad(problem: str, number: int = number) -> FormatError:
            return FormatError(f"The YOLO label file '{path}' line {number} {problem}.",
                               detail={"file": str(path), "line": number})

        try:
            cls = int(parts[0])
            values = [float(v) for v in parts[1:]]
        except ValueError:
            raise bad(f"is not 'class x y ...' numbers: {line.strip()[:80]!r}") from None
        if n_classes is not None and not 0 <= cls < n_classes:
            raise bad(f"has class {cls}, but there are {n_classes} class names")
        if not 0 <= cls < 2**31:     # without names it becomes "class <n>": keep that a name
            raise bad(f"has class {str(cls)[:20]}, which is not a class number")
        if not all(np.isfinite(values)) or any(v < -0.01 or v > 1.01 for v in values):
            raise bad("has a coordinate outside 0..1 (YOLO coordinates are fractions of the "
                      "image size)")
        score = None
        if len(values) in (4, 5):
            kind = "box"
            if len(values) == 5:
                score = values.pop()
        elif len(values) >= 6:
            kind = "polygon"
            if len(values) % 2:
                score = values.pop()
        else:
            raise bad(f"has {len(values)} numbers after the class; a box has 4, a polygon "
                      "at least 6")
        out.append((cls, kind, values, score, number))
    return out


def _is_rectangle(ring: list[list[float]]) -> bool:
    """Four corners in box order (x0,y0) (x1,y0) (x1,y1) (x0,y1), as segment export writes."""
    if len(ring) != 4:
        return False
    (ax, ay), (bx, by), (cx, cy), (dx, dy) = ring
    return ay == by and cy == dy and ax == dx and bx == cx and bx > ax and cy > ay


def _label_files(src: Path) -> list[Path]:
    base = src / "labels" if (src / "labels").is_dir() else src
    return sorted(p for p in base.rglob("*.txt") if p.name not in ("classes.txt",)
                  and not any(part.startswith(".") for part in p.relative_to(src).parts))


def _without_split(path: Path, src: Path) -> str:
    """The label's path under ``labels/<split>/`` without suffix: "labels/train/a.txt" is the
    top-level image "a", which the name with its folders cannot pick when "sub/a" exists too."""
    base = src / "labels" if (src / "labels").is_dir() else src
    parts = path.relative_to(base).with_suffix("").parts
    return "/".join(parts[1:] if len(parts) > 1 and parts[0] in SPLIT_NAMES else parts)


def import_yolo(project: Project, src: Path, progress: Progress = None) -> ImportReport:
    """Import a YOLO folder (``data.yaml`` + ``labels/``, or a folder of label files)."""
    if not src.is_dir():
        raise FormatError(f"'{src}' is not a folder; give the YOLO folder with data.yaml and "
                          "labels/.", detail={"file": str(src)})
    names = _read_names(src)
    files = _label_files(src)
    if not files:
        raise FormatError(f"No YOLO label files (.txt) in '{src}'.", detail={"file": str(src)})
    matcher = ImageMatcher(project.images())
    items: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    matched: set[int] = set()
    for n, path in enumerate(files):
        report(progress, n, len(files), f"Reading {path.name}")
        rel = path.relative_to(src).with_suffix("").as_posix()
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (UnicodeDecodeError, OSError) as exc:
            raise FormatError(f"Could not read the YOLO label file '{path}' ({exc}).",
                              detail={"file": str(path)}) from exc
        lines = parse_label_file(text, path, len(names) if names is not None else None)
        rec, reason = matcher.match(rel, stem=True)
        if rec is None:
            rec, _ = matcher.match(_without_split(path, src), stem=True)
        size = image_size(project, rec) if rec is not None else None
        if rec is not None and size is None:
            reason = "the project image cannot be read, so its size is unknown"
        if rec is None or size is None:
            skipped.append({"item": path.relative_to(src).as_posix(), "reason": reason})
            continue
        matched.add(rec["id"])
        w, h = size
        for cls, kind, v, score, line in lines:
            name = names[cls] if names is not None else f"class {cls}"
            extra = {"score": score} if score is not None else {}
            if kind == "box":
                geo: Any = [(v[0] - v[2] / 2) * w, (v[1] - v[3] / 2) * h,
                            (v[0] + v[2] / 2) * w, (v[1] + v[3] / 2) * h]
            else:
                geo = [[v[i] * w, v[i + 1] * h] for i in range(0, len(v), 2)]
                if _is_rectangle(geo):  # how a box is written in segment labels
                    kind = "box"
                    geo = [geo[0][0], geo[0][1], geo[2][0], geo[2][1]]
            add_item(items, skipped, f"{path.relative_to(src).as_posix()} line {line}",
                     rec["id"], size, name, kind, geo, **extra)
    report(progress, len(files), len(files), "Saving")
    return commit_import(project, "yolo", items, skipped, len(matched),
                         class_names=names or ())
