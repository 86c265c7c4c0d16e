"""Hypothesis strategies for the YOLO and Pascal VOC import fuzz tests (the text formats):
token-level mutations of label lines and ``data.yaml``, element-level mutations of VOC XML,
DTDs and entity payloads, declared encodings, and broken segmentation PNGs. The JSON formats
and the byte-level mutations shared by all are in ``fuzz_strategies.py``.
"""

from __future__ import annotations

import copy
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from hypothesis import strategies as st

from tests.reliability.fuzz_strategies import mutated_bytes, png_bytes, texts

# -- YOLO -----------------------------------------------------------------------------------

YOLO_TOKENS = ["0", "1", "2", "-1", "0.5", "1.0", "1.01", "1.02", "-0.01", "nan", "inf", "-inf",
               "1e309", "1e-400", "99999999999999999999", "0x1", "½", "٣", "1_0", "", "a",
               "0.25,", "+0.3", "0.0"]
YOLO_NAME_FORMS = [
    "names:\n  0: moth\n  1: new ü\n",
    "names: [moth, 'new ü']\n",
    "names:\n- moth\n- \"new \\u00fc\"\n",
    "nc: 2\nnames: {0: moth, 1: \"new ü\"}\n",
]


def yolo_document() -> dict[str, Any]:
    """Label files as token lists (detect, segment, a box as 4 corners, a score) and a names
    block; classes.txt is an alternative source of names."""
    return {
        "data.yaml": YOLO_NAME_FORMS[0],
        "labels": {
            "labels/train/a.txt": [["0", "0.5", "0.5", "0.25", "0.5"],
                                   ["1", "0.1", "0.1", "0.4", "0.1", "0.3", "0.5"],
                                   ["0", "0.5", "0.5", "0.2", "0.2", "0.9"]],
            "labels/train/sub/b.txt": [["1", "0.1", "0.1", "0.5", "0.1", "0.5", "0.5", "0.1",
                                        "0.5"]],
            "labels/val/sub/a.txt": [["0", "0.25", "0.25", "0.5", "0.5"]],
            "labels/val/nothing.txt": [["0", "0.5", "0.5", "0.1", "0.1"]],
        },
    }


@st.composite
def yolo_files(draw: st.DrawFn) -> dict[str, bytes]:
    doc = yolo_document()
    doc["data.yaml"] = draw(st.sampled_from(YOLO_NAME_FORMS))
    labels: dict[str, list[list[str]]] = doc["labels"]
    token = st.sampled_from(YOLO_TOKENS) | st.floats().map(repr) | texts
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(sorted(labels)))
        lines = labels[name]
        op = draw(st.sampled_from(["token", "token", "drop", "add", "line", "dupline",
                                   "delfile", "newfile"]))
        if op in ("token", "drop", "add") and lines:
            line = draw(st.sampled_from(lines))
            at = draw(st.integers(0, len(line)))
            if op == "token" and line:
                line[min(at, len(line) - 1)] = draw(token)
            elif op == "drop" and line:
                del line[min(at, len(line) - 1)]
            else:
                line.insert(at, draw(token))
        elif op == "line":
            lines.append(draw(st.lists(token, max_size=12)))
        elif op == "dupline" and lines:
            lines.append(list(draw(st.sampled_from(lines))))
        elif op == "delfile":
            del labels[name]
            if not labels:
                break
        elif op == "newfile":
            labels[draw(st.sampled_from(["labels/train/sub/zz.txt", "labels/x/a.txt",
                                         "labels/a.png.txt", "labels/train/A.txt"]))] = \
                [list(draw(st.sampled_from(next(iter(labels.values())) or [["0"]])))]
    files = {name: "\n".join(" ".join(t for t in line) for line in lines).encode("utf-8",
                                                                                 "surrogatepass")
             for name, lines in labels.items()}
    names = doc["data.yaml"]
    how = draw(st.sampled_from(["keep", "keep", "name", "drop", "classes.txt", "garble"]))
    if how == "name":
        bad = draw(texts).replace("\n", " ")
        names = draw(st.sampled_from([f"names:\n  0: moth\n  1: {bad}\n",
                                      f"names: ['{bad}', b]\n", f'names: ["{bad}", b]\n',
                                      f"names:\n- {bad}\n- b\n"]))
    elif how == "garble":
        names = draw(st.sampled_from([
            "names:\n  0: a\n  2: b\n", "names: 3\n", "names: [a, b\n", "names: {a: b}\n",
            'names: ["\\x4"]\n', 'names: ["\\U0011ffff"]\n', 'names: ["\\ud800"]\n',
            "names:\n  0:\n  1: b\n", "names:\n  -\n  - b\n", "names: [, ,]\n", "names:\n",
            "names: {0: a, 0: b}\n", "names: ['a'''b', 'c']\n"]))
    if how == "drop":
        pass
    elif how == "classes.txt":
        files["classes.txt"] = draw(st.sampled_from([b"moth\nnew \xc3\xbc\n", b"\n\n",
                                                     b"moth\n\x01bad\n", b"\xff\xfe"]))
    else:
        files["data.yaml"] = names.encode("utf-8", "surrogatepass")
    if files:
        target = draw(st.sampled_from(sorted(files)))
        files[target] = draw(mutated_bytes(files[target]))
    return files


# -- Pascal VOC ------------------------------------------------------------------------------

XmlNode = list[Any]      # [tag, text, [children]]


def _voc_tree(filename: str, size: tuple[int, int], objects: list[tuple[str, list[int]]]
              ) -> XmlNode:
    w, h = size
    objs = [["object", "", [["name", name, []], ["pose", "Unspecified", []],
                            ["difficult", "0", []],
                            ["bndbox", "", [[t, str(v), []] for t, v in
                                            zip(("xmin", "ymin", "xmax", "ymax"), box,
                                                strict=True)]]]]
            for name, box in objects]
    return ["annotation", "", [["folder", "JPEGImages", []], ["filename", filename, []],
                               ["size", "", [["width", str(w), []], ["height", str(h), []],
                                             ["depth", "3", []]]],
                               ["segmented", "0", []], *objs]]


def _xml(node: XmlNode) -> str:
    tag, text, children = node
    return f"<{tag}>{escape(text)}{''.join(_xml(c) for c in children)}</{tag}>"


def _xml_paths(node: XmlNode, prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    out = [prefix]
    for i, child in enumerate(node[2]):
        out += _xml_paths(child, (*prefix, i))
    return out


def _xml_get(node: XmlNode, path: tuple[int, ...]) -> XmlNode:
    for i in path:
        node = node[2][i]
    return node


VOC_TAGS = ["annotation", "object", "name", "bndbox", "xmin", "ymin", "xmax", "ymax", "size",
            "width", "height", "filename", "path"]
VOC_TEXTS = ["", "0", "1", "-1", "1.5", "nan", "inf", "1e309", "1e20", "99999", "3", "abc",
             "moth", "a.png", "sub/b.jpg", "../a.png", "/abs/a.png", "  7  "]

SECRET = "FIELDMARK-SECRET-7f3a"
ENTITY_PREFIXES = [
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;'
    '&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'
    '&lol2;&lol2;&lol2;&lol2;">]>\n',
    '<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY xxe SYSTEM "file://{secret}">]>\n',
    '<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>\n',
    '<?xml version="1.0"?>\n<!DOCTYPE annotation SYSTEM "http://127.0.0.1:9/voc.dtd">\n',
    '<?xml version="1.0" encoding="UTF-8"?>\n',
    '<?xml version="1.0" encoding="utf-7"?>\n+ADw-!DOCTYPE a+AD4-\n',
    '<?xml version="1.0" encoding="shift_jis"?>\n',
    '<?xml version="1.0" encoding="idna"?>\n',
    '<?xml version="1.0" encoding="TTF-8"?>\n',
    '<?xml-stylesheet href="x.xsl"?>\n<!-- a comment -->\n',
]


def voc_documents() -> dict[str, XmlNode]:
    return {"Annotations/a.xml": _voc_tree("a.png", (32, 24), [("moth", [2, 3, 12, 10]),
                                                               ("new ü", [1, 1, 32, 24])]),
            "Annotations/b.xml": _voc_tree("b.jpg", (20, 30), [("leaf", [5, 5, 15, 25]),
                                                               ("moth", [1, 1, 4, 4])]),
            "Annotations/sub__a.xml": _voc_tree("sub/a.png", (16, 12), [("moth", [1, 1, 8, 6])])}


@st.composite
def voc_files(draw: st.DrawFn, secret_file: str) -> dict[str, bytes]:
    docs = voc_documents()
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(sorted(docs)))
        tree = docs[name]
        path = draw(st.sampled_from(_xml_paths(tree)))
        node = _xml_get(tree, path)
        op = draw(st.sampled_from(["text", "text", "delete", "duplicate", "insert", "retag"]))
        if op == "text":
            node[1] = draw(st.sampled_from(VOC_TEXTS) | texts)
        elif op == "delete" and path:
            del _xml_get(tree, path[:-1])[2][path[-1]]
        elif op == "duplicate" and path:
            _xml_get(tree, path[:-1])[2].append(copy.deepcopy(node))
        elif op == "insert":
            node[2].append([draw(st.sampled_from(VOC_TAGS)), draw(st.sampled_from(VOC_TEXTS)),
                            []])
        elif op == "retag":
            node[0] = draw(st.sampled_from(VOC_TAGS))
    files: dict[str, bytes] = {}
    for name, tree in docs.items():
        prefix = ""
        if draw(st.integers(0, 11)) == 0:
            prefix = draw(st.sampled_from(ENTITY_PREFIXES)).replace("{secret}", secret_file)
        body = _xml(tree)
        if prefix.startswith("<?xml version=\"1.0\"?>\n<!DOCTYPE") and "xxe" in prefix:
            body = body.replace("<filename>", "<filename>&xxe;", 1)
        elif "lolz" in prefix:
            body = body.replace("<name>moth", "<name>&lol3;", 1)
        text = prefix + body
        encoding = draw(st.sampled_from(["utf-8"] * 4 + ["utf-16", "utf-8-sig"]))
        files[name] = text.encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace")
    if draw(st.booleans()):
        files["labelmap.txt"] = draw(st.sampled_from([
            b"# label:color_rgb:parts:actions\nbackground:0,0,0::\nleaf:1,2,3::\nmoth:4,5,6::\n",
            b"moth\x01:1,1,1::\n::::\n", b"\xff\xfe\x00", b""]))
    if draw(st.booleans()):
        objects = np.zeros((24, 32), np.uint8)
        objects[3:10, 2:12] = 1
        objects[0:2, 0:2] = 2
        objects[20:24, 30:32] = 200
        files["SegmentationObject/a.png"] = draw(st.sampled_from([
            png_bytes(objects), png_bytes(objects, "P"), png_bytes(objects[:10]),
            png_bytes(objects, "RGB"), png_bytes(objects.astype(np.uint16) * 300),
            b"\x89PNG\r\n\x1a\n" + b"\x00" * 20]))
    target = draw(st.sampled_from(sorted(files)))
    files[target] = draw(mutated_bytes(files[target]))
    return files


def valid_yolo_files() -> dict[str, bytes]:
    doc = yolo_document()
    return {"data.yaml": doc["data.yaml"].encode(),
            **{name: "\n".join(" ".join(line) for line in lines).encode()
               for name, lines in doc["labels"].items()}}


def valid_voc_files() -> dict[str, bytes]:
    return {name: _xml(tree).encode() for name, tree in voc_documents().items()}
