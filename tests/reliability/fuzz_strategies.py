"""Hypothesis strategies for the import fuzz tests: a valid document, then broken on purpose.
This module: the shared JSON and byte-level mutations, COCO and labelme; YOLO and Pascal VOC
are in ``fuzz_text_formats.py``.

Every strategy starts from a document that imports cleanly into the fuzz project (three small
real images, see ``test_import_fuzz.py``) and applies a few structural mutations — wrong types,
missing and extra keys, NaN / inf / huge / negative numbers, duplicated entries, odd names and
paths — and sometimes a byte-level one: cut short, BOMs, UTF-16, invalid UTF-8, deep nesting,
XML entities, or random bytes instead of the file. Starting from a valid document matters: pure
random input is refused by the first check, so the deep code paths would never be reached.
"""

from __future__ import annotations

import base64
import copy
import io
import json
from typing import Any

import numpy as np
from hypothesis import strategies as st
from PIL import Image

from backend.geometry import rle

# The fuzz project's images: relpath -> displayed (width, height).
IMAGES = {"a.png": (32, 24), "sub/b.jpg": (20, 30), "sub/a.png": (16, 12)}

NAMES = ["", " ", "moth", " moth ", "leaf", "new ü", "a.png", "sub/b.jpg", "sub\\b.jpg",
         "../a.png", "../../sub/a.png", "/etc/passwd", "C:\\data\\a.png", "A.PNG", "b", "b.jpg",
         "a.png\x00.txt", "<script>alert(1)</script>", "&amp;&lt;", "x\x1b[31m", "\ud800",
         "\u202eevil", "tab\tname", "new\nline", "é" * 201, "ok " * 80, "zzz.png", "null"]
SPECIAL_NUMBERS = [0, 1, -1, 0.5, -0.5, 1.5, 2, 3, 255, 256, 2**31, 2**53 + 1, 2**63, 10**30,
                   -(10**30), 10**400, 1e308, -1e308, 5e-324, 1e-7, float("nan"), float("inf"),
                   float("-inf"), True, False]

numbers = st.sampled_from(SPECIAL_NUMBERS) | st.integers(-(2**70), 2**70) | st.floats()
texts = st.sampled_from(NAMES) | st.text(max_size=12)
leaves = st.none() | st.booleans() | numbers | texts
json_values = st.recursive(
    leaves, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(texts, kids, max_size=3),
    max_leaves=8)

# -- JSON trees ---------------------------------------------------------------------------------


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def _leaves(doc: Any) -> list[Any]:
    return [v for v in (_get(doc, p) for p in _paths(doc)) if not isinstance(v, (dict, list))]


JSON_OPS = ["replace", "replace", "number", "delete", "delete", "insert", "duplicate", "wrap",
            "stringify", "sibling", "empty", "nest"]


@st.composite
def mutated_json(draw: st.DrawFn, doc: Any, keys: list[str], values: list[Any],
                 max_mutations: int = 4) -> Any:
    """``doc`` with 0..``max_mutations`` structural mutations. ``keys``: key names the format
    knows (inserted as extra or duplicate keys); ``values``: values that mean something in it
    (ids, shape types, file names), used as replacements so references break in plausible ways."""
    doc = copy.deepcopy(doc)
    # Copies: a value from ``values`` put into the document must not be mutated in place later
    # (that would change ``values`` itself, and Hypothesis needs every draw replayable).
    fresh = (json_values | st.sampled_from(values)).map(copy.deepcopy)
    for _ in range(draw(st.integers(0, max_mutations))):
        path = draw(st.sampled_from(_paths(doc)))
        op = draw(st.sampled_from(JSON_OPS))
        node = _get(doc, path)
        if op == "replace":
            new: Any = draw(fresh)
        elif op == "number":
            new = draw(numbers)
        elif op == "sibling":        # another leaf of the same document: ids that collide
            new = draw(st.sampled_from(_leaves(doc) or [None]))
        elif op == "wrap":
            new = draw(st.sampled_from([[node], {"value": node}, [[node]]]))
        elif op == "stringify":
            new = json.dumps(node, allow_nan=True) if not isinstance(node, str) else node[:1]
        elif op == "empty":
            new = copy.deepcopy(draw(st.sampled_from([[], {}, "", 0, None])))
        elif op == "nest":           # deeper than any real file, still serializable
            new = node
            for _ in range(draw(st.integers(2, 60))):
                new = [new]
        elif op == "delete" and path:
            parent = _get(doc, path[:-1])
            del parent[path[-1]]
            continue
        elif op == "insert" and isinstance(node, dict):
            node[draw(st.sampled_from(keys) | texts)] = draw(fresh)
            continue
        elif op in ("insert", "duplicate") and isinstance(node, list):
            node.append(copy.deepcopy(draw(st.sampled_from(node))) if node and op == "duplicate"
                        else draw(fresh))
            continue
        else:
            continue
        if path:
            _get(doc, path[:-1])[path[-1]] = new
        else:
            doc = new
    return doc


@st.composite
def json_bytes(draw: st.DrawFn, doc: Any) -> bytes:
    """``doc`` as JSON text in a random (sometimes wrong) encoding."""
    ascii_only = draw(st.booleans())
    text = json.dumps(doc, ensure_ascii=ascii_only, allow_nan=True,
                      indent=draw(st.sampled_from([None, 1])))
    # A lone surrogate cannot be UTF-8: written through, it makes an invalid UTF-8 file.
    return text.encode("utf-8", "surrogatepass")


# About half the files stay intact at the byte level, so the structural mutations get parsed.
BYTE_OPS = ["keep"] * 9 + ["truncate", "insert", "flip", "bom", "utf16", "latin1", "random",
                           "deep", "empty"]


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` unchanged (most often) or broken at the byte level."""
    op = draw(st.sampled_from(BYTE_OPS))
    if op == "truncate":
        return data[:draw(st.integers(0, max(len(data) - 1, 0)))]
    if op == "insert":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if op == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    if op == "bom":
        return b"\xef\xbb\xbf" + data
    if op == "utf16":
        return data.decode("utf-8", "replace").encode(draw(st.sampled_from(["utf-16", "utf-32"])))
    if op == "latin1":
        return data.decode("utf-8", "replace").encode("latin-1", "replace") + b"\xe9\xff"
    if op == "random":
        return draw(st.binary(max_size=200))
    if op == "deep":
        depth = draw(st.sampled_from([1000, 100_000]))
        return data[:1] + b"[" * depth + data[1:]
    if op == "empty":
        return b""
    return data


# -- COCO -----------------------------------------------------------------------------------


def coco_document() -> dict[str, Any]:
    """A COCO file for the fuzz project, touching every import path: bbox-only box, polygon, a
    box written as a polygon, several polygons, compressed and uncompressed RLE, a score, an
    image the project lacks, and a category without annotations."""
    mask = np.zeros((30, 20), bool)
    mask[3:9, 4:12] = True
    compressed = rle.encode(mask)
    flat = mask.ravel(order="F")                       # COCO runs go down the columns
    bounds = [0, *(np.flatnonzero(np.diff(flat.astype(np.int8))) + 1).tolist(), flat.size]
    counts = ([0] if flat[0] else []) + np.diff(bounds).tolist()
    return {
        "info": {"description": "fuzz"},
        "images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 24},
                   {"id": 2, "file_name": "sub/b.jpg", "width": 20, "height": 30},
                   {"id": 3, "file_name": "images/train/sub/a.png", "width": 16, "height": 12},
                   {"id": 4, "file_name": "zzz.png", "width": 10, "height": 10}],
        "categories": [{"id": 1, "name": "moth"}, {"id": 2, "name": "new ü"},
                       {"id": 7, "name": "unused"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 8], "area": 80,
             "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 6, 5],
             "segmentation": [[0, 0, 6, 0, 6, 5, 0, 5]], "area": 30, "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [3, 3, 10, 10],
             "segmentation": [[3, 3, 13, 4, 8, 13]], "area": 50, "iscrowd": 0, "score": 0.75},
            {"id": 4, "image_id": 2, "category_id": 2, "bbox": [1, 1, 15, 25],
             "segmentation": [[1, 1, 5, 1, 5, 5], [10, 20, 15, 20, 15, 26, 10, 26]],
             "area": 40, "iscrowd": 0},
            {"id": 5, "image_id": 2, "category_id": 1, "bbox": [4, 3, 8, 6],
             "segmentation": compressed, "area": 48, "iscrowd": 1},
            {"id": 6, "image_id": 2, "category_id": 2, "bbox": [4, 3, 8, 6],
             "segmentation": {"size": [30, 20], "counts": counts}, "area": 48, "iscrowd": 1},
            {"id": 7, "image_id": 3, "category_id": 1, "bbox": [2, 2, 5, 5],
             "segmentation": [], "area": 25, "iscrowd": 0},
            {"id": 8, "image_id": 4, "category_id": 1, "bbox": [2, 2, 5, 5], "area": 25,
             "iscrowd": 0}]}


COCO_KEYS = ["id", "image_id", "category_id", "bbox", "segmentation", "area", "iscrowd",
             "score", "file_name", "width", "height", "name", "size", "counts", "images",
             "annotations", "categories"]
COCO_VALUES = [1, 2, 3, 4, 7, 99, "1", [30, 20], [24, 32], {"size": [30, 20], "counts": "0"},
               {"size": [30, 20], "counts": [600]}, {"counts": "PPYo0"}, [[1, 1, 2, 2]],
               [[1, 1, 2, 2, 3, 3, 4]], [-5, -5, 100, 100], [1e308, 1e308, 1e308, 1e308]]


@st.composite
def coco_files(draw: st.DrawFn) -> dict[str, bytes]:
    doc = draw(mutated_json(coco_document(), COCO_KEYS, COCO_VALUES))
    return {"annotations.json": draw(mutated_bytes(draw(json_bytes(doc))))}


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    """``array`` as a PNG file, converted to ``mode`` first when given."""
    image = Image.fromarray(array)
    buf = io.BytesIO()
    (image.convert(mode) if mode else image).save(buf, format="PNG")
    return buf.getvalue()


# -- labelme -----------------------------------------------------------------------------------


def b64_png(array: np.ndarray) -> str:
    return base64.b64encode(png_bytes(array)).decode("ascii")


MASK_CROP = np.array([[0, 1, 1], [1, 1, 0]], np.uint8)


def labelme_document(image_path: str, size: tuple[int, int]) -> dict[str, Any]:
    w, h = size

    def shape(label: str, points: list[list[float]], kind: str, group: int | None = None,
              mask: str | None = None) -> dict[str, Any]:
        return {"label": label, "points": points, "group_id": group, "description": "",
                "shape_type": kind, "flags": {}, "mask": mask}

    return {"version": "5.5.0", "flags": {}, "imagePath": image_path, "imageData": None,
            "imageWidth": w, "imageHeight": h,
            "shapes": [shape("moth", [[1, 1], [10, 8]], "rectangle"),
                       shape("new ü", [[2, 2], [9, 2], [5, 9]], "polygon"),
                       shape("moth", [[3, 4]], "point"),
                       shape("leaf", [[1, 1], [6, 1], [6, 6]], "polygon", 1),
                       shape("leaf", [[8, 8], [12, 8], [12, 11]], "polygon", 1),
                       shape("leaf", [[2, 3], [4, 4]], "mask", mask=b64_png(MASK_CROP)),
                       shape("", [[0, 0], [3, 0], [0, 3]], "polygon"),
                       shape("moth", [[5, 5], [8, 8]], "circle")]}


LABELME_KEYS = ["label", "points", "group_id", "shape_type", "mask", "imagePath", "imageWidth",
                "imageHeight", "shapes", "flags", "imageData"]
LABELME_VALUES = ["rectangle", "polygon", "point", "mask", "circle", "line", "linestrip",
                  [[1, 1]], [[1, 1], [2, 2]], [[0, 0], [1e9, 0], [0, 1e9]],
                  [[-50, -50], [-10, -40], [-30, -10]], [[1, 1], [1, 1], [1, 1]],
                  b64_png(np.ones((2, 2), np.uint8)), b64_png(np.ones((2, 2, 3), np.uint8)),
                  base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30).decode(), "@@not b64",
                  base64.b64encode(b"GIF89a" + b"\x00" * 10).decode(), 1, 0, -1, 2**40]


@st.composite
def labelme_files(draw: st.DrawFn) -> dict[str, bytes]:
    docs = {"a.json": labelme_document("a.png", IMAGES["a.png"]),
            "sub/b.json": labelme_document("b.jpg", IMAGES["sub/b.jpg"]),
            "other/c.json": labelme_document(
                draw(st.sampled_from(["../sub/a.png", "..\\sub\\a.png", "/abs/sub/a.png",
                                      "C:\\x\\sub\\a.png", "a.png"])), IMAGES["sub/a.png"])}
    files = {}
    for name, doc in docs.items():
        mutated = draw(mutated_json(doc, LABELME_KEYS, LABELME_VALUES, max_mutations=2))
        files[name] = draw(json_bytes(mutated))
    target = draw(st.sampled_from(sorted(files)))
    files[target] = draw(mutated_bytes(files[target]))
    return files
