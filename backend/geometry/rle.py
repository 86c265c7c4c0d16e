"""COCO run-length encoding, byte-identical to pycocotools (without depending on it).

Conventions (the COCO ones):

* A mask is ``H x W`` (rows x columns); runs are counted in **column-major** (Fortran) order,
  i.e. down the first column, then down the second, ...
* ``counts`` alternates runs of 0 and 1 and always starts with a run of zeros (possibly 0 long).
* The compressed form is pycocotools' string: each count (from the fourth on, as the difference
  to the count two places before) is written in 5-bit groups, low group first, ``0x20`` marking
  "more follows" and bit ``0x10`` of the last group carrying the sign, each group offset by 48.

``encode`` returns ``{"size": [h, w], "counts": str}`` (pycocotools returns ``bytes``; the text
is the same). ``decode`` accepts compressed counts (``str`` or ``bytes``) and uncompressed ones
(a list of ints, as COCO uses for ``iscrowd`` annotations).

Everything is vectorized: a 1024 x 1024 mask encodes or decodes in about a millisecond.

Without a full-image mask (exports write thousands of small shapes on large images; a mask per
shape would cost more than the rest of the export): :func:`encode_crop` (a crop placed in the
image), :func:`encode_rects` (filled rectangles, closed form), :func:`from_changes` (many masks
given by where their values flip) and :func:`area_and_bbox_many`. Each gives exactly what
:func:`encode` / :func:`area` / :func:`to_bbox` give for the full masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from backend.errors import InvalidArgument

# 5 bits per character: 13 groups cover any int64.
_GROUPS = 13


def _runs(mask: np.ndarray) -> np.ndarray:
    """Run lengths (int64) of a 2-D mask in column-major order, starting with zeros."""
    if mask.ndim != 2:
        raise InvalidArgument(f"mask must be 2-D (height x width), got shape {mask.shape}.",
                              detail={"shape": list(mask.shape)})
    flat = np.asarray(mask).astype(bool, copy=False).ravel(order="F")
    n = flat.size
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [n]))
    runs = np.diff(bounds).astype(np.int64)
    if flat[0]:
        runs = np.concatenate(([0], runs))
    return runs


def _compress(counts: np.ndarray) -> str:
    """pycocotools' ``rleToString`` of one mask's counts."""
    return _compress_many(counts, np.array([counts.size]))[0]


def _compress_many(counts: np.ndarray, lengths: np.ndarray) -> list[str]:
    """pycocotools' ``rleToString`` of many masks at once: ``counts`` holds every mask's counts
    one after the other, ``lengths[k]`` how many belong to mask ``k``. Vectorized over all of
    them, so ten thousand small masks cost a few numpy calls, not ten thousand."""
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    x = counts.copy()
    # From each mask's fourth count on, the difference to the count two places before.
    late = np.flatnonzero(np.arange(counts.size) - np.repeat(starts, lengths) >= 3)
    x[late] = counts[late] - counts[late - 2]
    # Work group by group on the counts still being written: most need one or two characters.
    n = x.size
    n_chars = np.zeros(n, dtype=np.int64)
    groups: list[tuple[np.ndarray, np.ndarray]] = []      # (indices, characters) per group
    idx = np.arange(n)
    rest = x
    while idx.size:
        g = rest & 0x1F
        rest = rest >> 5
        more = np.where(g & 0x10, rest != -1, rest != 0)
        groups.append((idx, (g + 48 + np.where(more, 0x20, 0)).astype(np.uint8)))
        n_chars[idx] += 1
        idx, rest = idx[more], rest[more]
    ends = np.cumsum(n_chars)
    offsets = ends - n_chars
    out = np.empty(int(ends[-1]) if n else 0, dtype=np.uint8)
    for k, (where, chars) in enumerate(groups):
        out[offsets[where] + k] = chars
    text = out.tobytes().decode("ascii")
    bounds = np.concatenate(([0], ends))
    first, last = bounds[starts], bounds[starts + lengths]
    return [text[a:b] for a, b in zip(first.tolist(), last.tolist(), strict=True)]


def _values(c: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The signed numbers of 6-bit characters ``c`` (minus 48), each ending at ``ends``: five
    bits per character, least significant first, sign in the last one."""
    starts = np.concatenate(([0], ends[:-1] + 1))
    count_of = np.repeat(np.arange(ends.size), ends - starts + 1)
    k = np.arange(c.size) - starts[count_of]                # group index within its count
    if k.max() >= _GROUPS:
        raise InvalidArgument("RLE counts string holds a number too large for a mask.")
    x = np.add.reduceat((c & 0x1F) << (5 * k), starts)
    neg = (c[ends] & 0x10) != 0                             # sign bit in the last group
    n_groups = ends - starts + 1
    x[neg] |= -(np.int64(1) << (5 * n_groups[neg]))
    return x


def _decompress(s: str | bytes) -> np.ndarray:
    """pycocotools' ``rleFrString`` of one string (the hot path of :func:`decode`; see
    :func:`_decompress_many` for many at once)."""
    raw = s.encode("ascii") if isinstance(s, str) else bytes(s)
    if not raw:
        return np.zeros(0, dtype=np.int64)
    c = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    if (c < 0).any() or (c > 63).any():
        raise InvalidArgument("RLE counts contain characters outside the COCO alphabet.",
                              detail={"counts": raw[:64].decode("ascii", "replace")})
    last = (c & 0x20) == 0                                 # the group that ends each count
    if not last[-1]:
        raise InvalidArgument("RLE counts string is truncated (its last count is incomplete).",
                              detail={"counts": raw[:64].decode("ascii", "replace")})
    ends = np.flatnonzero(last)
    x = _values(c, ends)
    # counts[i] = x[i] + counts[i - 2] for i > 2: two running sums, odd and even positions.
    out = x.copy()
    if out.size > 3:
        out[3::2] = x[1] + np.cumsum(x[3::2])
    if out.size > 4:
        out[4::2] = x[2] + np.cumsum(x[4::2])
    return out


def _decompress_many(strings: Sequence[str | bytes]) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' ``rleFrString`` of many strings at once: ``(every string's counts one
    after the other, how many counts each string has)``."""
    raws = [s.encode("ascii") if isinstance(s, str) else bytes(s) for s in strings]
    n_chars = np.array([len(r) for r in raws], dtype=np.int64)
    c = np.frombuffer(b"".join(raws), dtype=np.uint8).astype(np.int64) - 48
    bad = next((r for r in raws if r and (min(r) < 48 or max(r) > 48 + 63)), None)
    if bad is not None:
        raise InvalidArgument("RLE counts contain characters outside the COCO alphabet.",
                              detail={"counts": bad[:64].decode("ascii", "replace")})
    last = (c & 0x20) == 0                                 # the group that ends each count
    char_end = np.cumsum(n_chars)
    truncated = np.zeros(n_chars.size, dtype=bool)
    if c.size:
        truncated = (n_chars > 0) & ~last[np.maximum(char_end - 1, 0)]
    if truncated.any():
        raw = raws[int(np.flatnonzero(truncated)[0])]
        raise InvalidArgument("RLE counts string is truncated (its last count is incomplete).",
                              detail={"counts": raw[:64].decode("ascii", "replace")})
    ends = np.flatnonzero(last)
    lengths = np.diff(np.searchsorted(ends, char_end), prepend=0)
    if not ends.size:
        return np.zeros(0, dtype=np.int64), lengths
    x = _values(c, ends)
    # counts[i] = x[i] + counts[i - 2] for i > 2: within each string, running sums over the
    # odd positions (from 1) and over the even ones (from 2).
    owner = np.repeat(np.arange(lengths.size), lengths)
    pos = np.arange(x.size) - (np.cumsum(lengths) - lengths)[owner]
    out = x.copy()
    for chain in (np.flatnonzero(pos % 2 == 1), np.flatnonzero((pos % 2 == 0) & (pos > 0))):
        if not chain.size:
            continue
        vals = x[chain]
        total = np.cumsum(vals)
        head = np.r_[True, owner[chain][1:] != owner[chain][:-1]]
        before = (total - vals)[head]
        out[chain] = total - np.repeat(before, np.diff(np.r_[np.flatnonzero(head), chain.size]))
    return out, lengths


def encode(mask: np.ndarray) -> dict[str, Any]:
    """Encode a bool / 0-1 ``H x W`` mask as ``{"size": [h, w], "counts": str}``."""
    arr = np.asarray(mask)
    counts = _runs(arr)
    return {"size": [int(arr.shape[0]), int(arr.shape[1])], "counts": _compress(counts)}


def from_changes(changes: np.ndarray, lengths: Any, sizes: Any) -> list[dict[str, Any]]:
    """RLEs of many masks, each given by where its value flips; byte-identical to
    :func:`encode` of the full masks, which are never built.

    Mask ``k`` is ``sizes[k] = (h, w)``; its changes are the next ``lengths[k]`` entries of
    ``changes``: ascending column-major flat indices ``i`` (``0 <= i <= h * w``) where pixel
    ``i`` differs from pixel ``i - 1`` (pixel ``-1`` counts as 0; ``h * w`` marks a run of ones
    that ends with the mask). An index given twice cancels out, so a run leaving the bottom of
    one column (index ``c * h + h``) and a run entering the top of the next (the same index)
    join, as they do in the flat sequence. A mask with no changes is empty.
    """
    g = np.asarray(changes, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    size_arr = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    if lengths.size != size_arr.shape[0] or int(lengths.sum()) != g.size:
        raise InvalidArgument(f"from_changes: {lengths.size} masks with {int(lengths.sum())} "
                              f"changes, but {size_arr.shape[0]} sizes and {g.size} changes.")
    mask_of = np.repeat(np.arange(lengths.size), lengths)
    n_pix = size_arr[:, 0] * size_arr[:, 1]
    same = (mask_of[1:] == mask_of[:-1]) & (g[1:] == g[:-1])
    if (same[1:] & same[:-1]).any():
        raise InvalidArgument("from_changes: an index is given more than twice.")
    if same.any():
        drop = np.flatnonzero(same)
        keep = np.ones(g.size, dtype=bool)
        keep[drop] = False
        keep[drop + 1] = False
        g, mask_of = g[keep], mask_of[keep]
        lengths = np.bincount(mask_of, minlength=lengths.size).astype(np.int64)
    step = (mask_of[1:] == mask_of[:-1]) & (g[1:] <= g[:-1])
    if step.any() or (g < 0).any() or (g > n_pix[mask_of]).any():
        raise InvalidArgument("from_changes: changes must ascend within each mask and lie "
                              "in 0 .. h * w.")
    # Per mask the boundaries [0, changes..., h*w]; counts are their differences.
    m = lengths.size
    seg = lengths + 2
    seg_start = np.cumsum(seg) - seg
    bounds = np.empty(int(seg.sum()), dtype=np.int64)
    bounds[seg_start] = 0
    bounds[seg_start + seg - 1] = n_pix
    inner = np.ones(bounds.size, dtype=bool)
    inner[seg_start] = False
    inner[seg_start + seg - 1] = False
    bounds[inner] = g
    diffs = np.diff(bounds)
    within = np.ones(diffs.size, dtype=bool)
    within[seg_start[1:] - 1] = False          # differences across two masks
    counts = diffs[within]
    n_counts = lengths + 1
    # pycocotools ends on the last run: no trailing zero-length run (unless it is the only one).
    last = np.cumsum(n_counts) - 1
    trailing = (counts[last] == 0) & (n_counts > 1)
    if trailing.any():
        keep = np.ones(counts.size, dtype=bool)
        keep[last[trailing]] = False
        counts = counts[keep]
        n_counts = n_counts - trailing
    texts = _compress_many(counts, n_counts) if m else []
    return [{"size": [int(h), int(w)], "counts": t}
            for (h, w), t in zip(size_arr.tolist(), texts, strict=True)]


def encode_rects(rects: np.ndarray, sizes: Any) -> list[dict[str, Any]]:
    """:func:`encode` of filled rectangles, in closed form: ``rects[k] = (col0, row0, col1,
    row1)``, the half-open pixel ranges ``[col0, col1) x [row0, row1)`` set on an otherwise
    empty ``sizes[k] = (h, w)`` mask (an empty range gives an empty mask).

    A rectangle's counts repeat (``ones, zeros, ones, ...`` once per column), so after the
    first three every difference but the last is 0, one ``"0"`` character each: the string is
    built from four encoded numbers, whatever the rectangle's size.
    """
    r = np.asarray(rects, dtype=np.int64).reshape(-1, 4)
    hw = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    h, w = hw[:, 0], hw[:, 1]
    c0, r0 = np.clip(r[:, 0], 0, w), np.clip(r[:, 1], 0, h)
    c1, r1 = np.clip(r[:, 2], c0, w), np.clip(r[:, 3], r0, h)
    n_pix = h * w
    empty = (c1 == c0) | (r1 == r0)
    full = ~empty & (r1 - r0 == h)                   # whole columns: one run of ones
    one = ~empty & ~full & (c1 - c0 == 1)
    many = ~empty & ~full & ~one                     # the repeating pattern (module docstring)
    gap = h - (r1 - r0)
    tail = n_pix - np.where(full, c1 * h, (c1 - 1) * h + r1)
    # Per rectangle up to four numbers to encode, then "0" * zeros between the third and fourth.
    v = np.stack([np.where(empty, n_pix, c0 * h + r0),
                  np.where(full, (c1 - c0) * h, r1 - r0),
                  np.where(many, gap, tail),
                  tail - gap], axis=1)
    used = np.stack([np.ones_like(empty), ~empty, many | (~empty & (tail > 0)),
                     many & (tail > 0)], axis=1)
    zeros = np.where(many, 2 * (c1 - c0) - 3, 0).tolist()
    chars = iter(_compress_many(v[used], np.ones(int(used.sum()), dtype=np.int64)))
    out = []
    for k, row in enumerate(used.tolist()):
        p = [next(chars) if u else "" for u in row]
        out.append({"size": [int(h[k]), int(w[k])],
                    "counts": p[0] + p[1] + p[2] + "0" * zeros[k] + p[3]})
    return out


def encode_crop(crop: np.ndarray, x0: int, y0: int, height: int, width: int) -> dict[str, Any]:
    """:func:`encode` of a ``height x width`` mask that is 0 outside ``crop``, whose top-left
    pixel is at column ``x0``, row ``y0`` — without building the full mask (cost follows the
    crop, not the image)."""
    arr = np.asarray(crop)
    if arr.ndim != 2:
        raise InvalidArgument(f"crop must be 2-D (height x width), got shape {arr.shape}.",
                              detail={"shape": list(arr.shape)})
    ch, cw = arr.shape
    if not (0 <= x0 and x0 + cw <= width and 0 <= y0 and y0 + ch <= height):
        raise InvalidArgument(f"a {cw} x {ch} crop at ({x0}, {y0}) does not fit in a "
                              f"{width} x {height} mask.")
    padded = np.zeros((ch + 2, cw), dtype=bool, order="F")   # 0 above and below every column
    padded[1:-1] = arr.astype(bool, copy=False)
    flat = padded.ravel(order="F")
    k = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    col, row = np.divmod(k, ch + 2)
    changes = (x0 + col) * height + y0 + row - 1
    return from_changes(changes, [changes.size], [(height, width)])[0]


def _size_of(rle: Any) -> tuple[int, int]:
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise InvalidArgument("An RLE must be an object with 'size' and 'counts'.",
                              detail={"rle": str(rle)[:200]})
    size = rle["size"]
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, (int, np.integer)) and v >= 0 for v in size)):
        raise InvalidArgument(f"RLE 'size' must be [height, width] of non-negative integers, "
                              f"got {size!r}.", detail={"size": str(size)})
    return int(size[0]), int(size[1])


def counts_of(rle: dict[str, Any]) -> tuple[int, int, np.ndarray]:
    """``(h, w, counts)`` of a compressed or uncompressed RLE, checked against its size."""
    h, w = _size_of(rle)
    raw = rle["counts"]
    if isinstance(raw, (str, bytes)):
        counts = _decompress(raw)
    elif isinstance(raw, (list, tuple, np.ndarray)):
        counts = np.asarray(raw, dtype=np.int64).ravel()
    else:
        raise InvalidArgument(f"RLE 'counts' must be a string or a list of integers, got "
                              f"{type(raw).__name__}.")
    if (counts < 0).any() or int(counts.sum()) != h * w:
        raise InvalidArgument(f"RLE counts add up to {int(counts.sum())} pixels but its size "
                              f"[{h}, {w}] has {h * w}.", detail={"size": [h, w]})
    return h, w, counts


def decode(rle: dict[str, Any]) -> np.ndarray:
    """Decode to a bool ``H x W`` mask (C-contiguous)."""
    h, w, counts = counts_of(rle)
    values = np.arange(counts.size) % 2 == 1
    flat = np.repeat(values, counts)
    return np.ascontiguousarray(flat.reshape((h, w), order="F"))


def area(rle: dict[str, Any]) -> int:
    """Number of foreground pixels."""
    _, _, counts = counts_of(rle)
    return int(counts[1::2].sum())


def to_bbox(rle: dict[str, Any]) -> list[float]:
    """COCO ``[x, y, w, h]`` of the foreground, as ``pycocotools.mask.toBbox`` (zeros if empty).

    Integer pixel extents: a single pixel at column 3, row 5 gives ``[3, 5, 1, 1]``.
    """
    h, _, counts = counts_of(rle)
    return _bbox(h, counts)


def area_and_bbox(rle: dict[str, Any]) -> tuple[int, list[float]]:
    """``(area(rle), to_bbox(rle))``, decoding the counts once."""
    h, _, counts = counts_of(rle)
    return int(counts[1::2].sum()), _bbox(h, counts)


def area_and_bbox_many(rles: Sequence[dict[str, Any]]) -> list[tuple[int, list[float]]]:
    """:func:`area_and_bbox` of many RLEs, their counts decoded in one go (checked as
    :func:`counts_of` checks them)."""
    if not all(isinstance(r, dict) and isinstance(r.get("counts"), (str, bytes))
               for r in rles):
        return [area_and_bbox(r) for r in rles]        # uncompressed counts: rare, as they are
    for r in rles:
        _size_of(r)
    hw = np.array([r["size"] for r in rles], dtype=np.int64).reshape(-1, 2)
    counts, lengths = _decompress_many([r["counts"] for r in rles])
    owner = np.repeat(np.arange(lengths.size), lengths)
    starts = np.cumsum(lengths) - lengths
    totals = np.bincount(owner, weights=counts, minlength=lengths.size)
    wrong = np.flatnonzero((totals != hw[:, 0] * hw[:, 1])
                           | (np.bincount(owner, weights=counts < 0, minlength=lengths.size) > 0))
    if wrong.size:
        counts_of(rles[int(wrong[0])])                  # raises, naming what is wrong
    running = np.concatenate(([0], np.cumsum(counts)))
    ends = running[1:] - np.repeat(running[starts], lengths)   # cumsum within each mask
    pos = np.arange(counts.size) - starts[owner]
    ones = np.flatnonzero((pos % 2 == 1) & (counts > 0))
    areas = np.bincount(owner[ones], weights=counts[ones], minlength=lengths.size)
    out = [(int(a), [0.0, 0.0, 0.0, 0.0]) for a in areas.tolist()]
    if not ones.size:
        return out
    mask_of = owner[ones]
    h = hw[mask_of, 0]
    x_first, y_first = np.divmod(ends[ones - 1], h)      # first pixel of each run of ones
    x_last, y_last = np.divmod(ends[ones] - 1, h)        # its last pixel
    group = np.flatnonzero(np.r_[True, mask_of[1:] != mask_of[:-1]])
    xs = np.minimum.reduceat(x_first, group)
    xe = np.maximum.reduceat(x_last, group)
    ys = np.minimum.reduceat(np.minimum(y_first, y_last), group)
    ye = np.maximum.reduceat(np.maximum(y_first, y_last), group)
    wraps = np.maximum.reduceat(x_last > x_first, group)  # such a run spans every row
    ys = np.where(wraps, 0, ys)
    ye = np.where(wraps, hw[mask_of[group], 0] - 1, ye)
    for k, m in enumerate(mask_of[group].tolist()):
        out[m] = (out[m][0], [float(xs[k]), float(ys[k]), float(xe[k] - xs[k] + 1),
                              float(ye[k] - ys[k] + 1)])
    return out


def _bbox(h: int, counts: np.ndarray) -> list[float]:
    m = (counts.size // 2) * 2
    if m == 0 or h == 0:
        return [0.0, 0.0, 0.0, 0.0]
    counts = counts[:m]
    ends = np.cumsum(counts)
    first = ends[0::2]           # index of the first pixel of each run of ones
    last = ends[1::2] - 1        # index of its last pixel
    ones = counts[1::2] > 0
    if not ones.any():
        return [0.0, 0.0, 0.0, 0.0]
    first, last = first[ones], last[ones]
    x_first, y_first = first // h, first % h
    x_last, y_last = last // h, last % h
    xs, xe = int(x_first.min()), int(x_last.max())
    ys = int(min(y_first.min(), y_last.min()))
    ye = int(max(y_first.max(), y_last.max()))
    if (x_last > x_first).any():  # a run that wraps into the next column spans every row
        ys, ye = 0, h - 1
    return [float(xs), float(ys), float(xe - xs + 1), float(ye - ys + 1)]
