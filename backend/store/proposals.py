"""Model proposals in the store: class prompts, writing proposals, review, conversions.

A proposal is a shape with ``status = "pending"`` and ``source = "<pack id>@<version>"``. Two
kinds of writes, on purpose:

- **Model output is not a person's edit**: :meth:`replace_proposals` writes a model's pending
  shapes without an undo step (undoing a batch of 1,000 images one image at a time would bury
  the person's own edits).
- **What a person decides is undoable**: prompts and thresholds of a class, accepting or
  rejecting proposals (one step for many), turning boxes into polygons.

Rejected proposals stay in the table: they are the memory that keeps the same pack from
proposing the same thing again, and exports skip them.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from backend.errors import InvalidArgument
from backend.geometry.boxes import box_iou, nms
from backend.store import undo
from backend.store import validate as v
from backend.store.classes import ClassesMixin
from backend.store.runs import finish_item
from backend.store.shapes import ShapesMixin, _record, _spec_values

MAX_PROMPTS = 50
MAX_PHRASE = 200
SUPPRESS_IOU = 0.7
# Prompt edits of one class closer together than this become one undo step: a dragged threshold
# slider sends dozens of values, and Undo should go back to where the drag started.
PROMPTS_MERGE_S = 2.0
_PROMPT_COLUMNS = frozenset({"prompts", "threshold"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WORDS = {"accepted": "Accept", "rejected": "Reject", "pending": "Mark pending"}


def check_prompts(prompts: Any) -> list[str]:
    """Phrases: stripped, non-empty, no control characters, duplicates dropped (order kept)."""
    if not isinstance(prompts, (list, tuple)):
        raise InvalidArgument(f"prompts must be a list of phrases, got {prompts!r:.80}.",
                              detail={"field": "prompts"})
    if len(prompts) > MAX_PROMPTS:
        raise InvalidArgument(f"prompts may hold at most {MAX_PROMPTS} phrases, got "
                              f"{len(prompts)}.", detail={"field": "prompts"})
    out: list[str] = []
    for i, phrase in enumerate(prompts):
        if not isinstance(phrase, str) or not phrase.strip():
            raise InvalidArgument(f"prompts[{i}] must be a non-empty phrase, got {phrase!r:.80}.",
                                  detail={"field": f"prompts[{i}]"})
        phrase = " ".join(phrase.split())
        if len(phrase) > MAX_PHRASE or _CONTROL.search(phrase):
            raise InvalidArgument(f"prompts[{i}] must be at most {MAX_PHRASE} characters of "
                                  f"plain text, got {phrase!r:.80}.",
                                  detail={"field": f"prompts[{i}]"})
        if phrase not in out:
            out.append(phrase)
    return out


def check_threshold(value: Any, field: str = "threshold") -> float:
    number = v.check_number(value, field)
    if not 0.0 <= number <= 1.0:
        raise InvalidArgument(f"{field} must be between 0 and 1, got {value!r}.",
                              detail={"field": field})
    return float(number)


def shape_bbox(kind: str, geometry: Any) -> list[float] | None:
    """[x0, y0, x1, y1] around a stored shape's geometry; None for points."""
    if kind == "box":
        return [float(c) for c in geometry]
    if kind == "polygon":
        pts = np.asarray(geometry, dtype=np.float64)
        return [*pts.min(axis=0).tolist(), *pts.max(axis=0).tolist()]
    if kind == "mask":
        return [float(c) for c in geometry["bbox"]]
    return None


def _boxes(boxes: list[list[float] | None]) -> np.ndarray:
    """(N, 4) float array; a shape without a box (a point) is a NaN row that overlaps nothing."""
    out = np.full((len(boxes), 4), np.nan)
    for i, b in enumerate(boxes):
        if b is not None:
            out[i] = b
    return out


def _hits(a: np.ndarray, b: np.ndarray, iou: float) -> np.ndarray:
    """For each box of ``a``: does it overlap some box of ``b`` with IoU >= ``iou``?"""
    if not len(a) or not len(b):
        return np.zeros(len(a), dtype=bool)
    with np.errstate(invalid="ignore"):
        return (np.nan_to_num(box_iou(a, b)) >= iou).any(axis=1)


def _unsuppressed(boxes: np.ndarray, classes: list[Any], scores: list[float | None],
                  accepted: np.ndarray, blocked: dict[Any, np.ndarray], iou: float) -> np.ndarray:
    """Which new proposals survive (see ``replace_proposals``), in one pass per class; among
    the new ones of a class, greedy non-maximum suppression by score (input order on ties)."""
    keep = ~_hits(boxes, accepted, iou)
    for cls in set(classes):
        idx = np.flatnonzero([c == cls for c in classes])
        if cls in blocked:
            keep[idx] &= ~_hits(boxes[idx], blocked[cls], iou)
        idx = idx[keep[idx] & np.isfinite(boxes[idx]).all(axis=1)]
        if len(idx) > 1:
            s = np.asarray([-np.inf if scores[i] is None else scores[i] for i in idx])
            # nms drops IoU > threshold; a hair below makes it IoU >= iou like the rest.
            survivors = idx[nms(boxes[idx], s, iou - 1e-9)]
            keep[np.setdiff1d(idx, survivors)] = False
    return keep


def _history_shape_ids(conn: Any, image_id: int) -> set[int]:
    """Shapes the undo history refers to for this image (or for no image in particular).

    A pending proposal a person accepted and then undid is such a shape: deleting it would make
    the redo fail, so a re-run keeps it instead of replacing it.
    """
    ids: set[int] = set()
    for (text,) in conn.execute("SELECT changes FROM undo_log WHERE image_id = ? "
                                "OR image_id IS NULL", (image_id,)):
        try:
            changes = json.loads(text)
        except ValueError:
            continue
        for ch in changes if isinstance(changes, list) else ():
            if isinstance(ch, list) and len(ch) == 4 and ch[0] == "shapes" \
                    and isinstance(ch[1], int):
                ids.add(ch[1])
    return ids


class ProposalsMixin(ShapesMixin, ClassesMixin):
    # -- prompts ------------------------------------------------------------------------------

    def set_class_prompts(self, class_id: int, prompts: Any, threshold: Any) -> dict[str, Any]:
        """Set a class's detector phrases and threshold (0..1); one undo step when it changes.

        Changes of the same class that follow each other within :data:`PROMPTS_MERGE_S`
        seconds, with no other edit between, share one undo step (a dragged slider): undo goes
        back to the value before the first, redo to the last.
        The class name is not added to the phrases: a class without phrases is not searched for.
        """
        v.check_id(class_id, "class_id")
        phrases = check_prompts(prompts)
        thr = check_threshold(threshold)
        # Not _edit(): that always appends a step, and this one may fold into the last.
        with self._write() as conn:
            rec = undo.Recorder(conn)
            name = self._require(conn, "classes", class_id, "class")["name"]
            description = f"Set prompts of class '{name}'"
            rec.update("classes", class_id, {"prompts": json.dumps(phrases, ensure_ascii=False),
                                             "threshold": thr})
            if rec.changes and not undo.merge_into_last(conn, description, rec.changes,
                                                        columns=_PROMPT_COLUMNS,
                                                        window_s=PROMPTS_MERGE_S):
                undo.push(conn, description, None, rec.changes)
            return self._class(conn, class_id)

    # -- model output (not undoable) ----------------------------------------------------------

    def replace_proposals(self, image_id: int, source: str, shapes: list[dict[str, Any]], *,
                          replace: bool = True, suppress_iou: float = SUPPRESS_IOU,
                          auto_accept: float | None = None, run_id: int | None = None
                          ) -> list[dict[str, Any]]:
        """Write one model's proposals for one image, in one transaction, without an undo step.

        ``shapes``: ``{"kind", "geometry", "class_id"?, "score"?, "prompt"?}``; they are stored
        ``pending`` (``accepted`` when ``auto_accept`` is a number and the score reaches it) with
        ``source``. With ``replace`` the image's pending proposals from ``source`` are removed
        first, except those the undo history still refers to. A new proposal is dropped when
        its bounding box has IoU >= ``suppress_iou`` with an accepted shape of the image, with a
        *rejected* shape from the same source and class (the person said no), or with a kept
        pending one of the same class. With ``run_id`` the run item of this image goes from
        ``todo`` to ``done`` in the same transaction; if it is not ``todo`` any more
        :class:`~backend.store.runs.AlreadyProcessed` is raised and nothing is written.
        Returns the inserted shapes.
        """
        v.check_id(image_id, "image_id")
        source = v.check_source(source, "source")
        if source == "manual":
            raise InvalidArgument("source of a proposal must be '<pack id>@<version>', not "
                                  "'manual'.", detail={"field": "source"})
        if auto_accept is not None:
            auto_accept = check_threshold(auto_accept, "auto_accept")
        if not isinstance(shapes, (list, tuple)):
            raise InvalidArgument(f"shapes must be a list, got {type(shapes).__name__}.")
        values = []
        for i, spec in enumerate(shapes):
            if isinstance(spec, dict) and ({"status", "source"} & set(spec)):
                raise InvalidArgument(f"shapes[{i}] must not set status or source; proposals "
                                      "take them from the call.")
            values.append(_spec_values(spec, f"shapes[{i}]"))
        geometries = [json.loads(x["geometry"]) for x in values]
        boxes = _boxes([shape_bbox(x["kind"], g) for x, g in zip(values, geometries, strict=True)])
        with self._write() as conn:
            self._require(conn, "images", image_id, "image")
            for class_id in sorted({x["class_id"] for x in values} - {None}):
                self._require(conn, "classes", class_id, "class")
            if run_id is not None:
                finish_item(conn, run_id, image_id, len(values))
            rows = conn.execute("SELECT id, kind, geometry, class_id, source, status "
                                "FROM shapes WHERE image_id = ?", (image_id,)).fetchall()
            keep_ids = _history_shape_ids(conn, image_id) if replace else set()
            accepted: list[list[float] | None] = []
            blocked: dict[Any, list[list[float] | None]] = {}  # class -> no proposal there
            doomed: list[int] = []
            for row in rows:
                if row["status"] == "pending" and row["source"] == source and replace \
                        and row["id"] not in keep_ids:
                    doomed.append(row["id"])
                    continue
                box = shape_bbox(row["kind"], json.loads(row["geometry"]))
                if row["status"] == "accepted":
                    accepted.append(box)
                elif row["status"] == "pending" or row["source"] == source:
                    blocked.setdefault(row["class_id"], []).append(box)
            conn.executemany("DELETE FROM shapes WHERE id = ?", [(i,) for i in doomed])
            keep = _unsuppressed(boxes, [x["class_id"] for x in values],
                                 [x["score"] for x in values], _boxes(accepted),
                                 {c: _boxes(b) for c, b in blocked.items()}, suppress_iou)
            now = time.time()
            out: list[dict[str, Any]] = []
            for x, geometry, kept in zip(values, geometries, keep, strict=True):
                if not kept:
                    continue
                status = "accepted" if (auto_accept is not None and x["score"] is not None
                                        and x["score"] >= auto_accept) else "pending"
                cur = conn.execute(
                    "INSERT INTO shapes (image_id, class_id, kind, geometry, score, source, "
                    "prompt, status, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (image_id, x["class_id"], x["kind"], x["geometry"], x["score"], source,
                     x["prompt"], status, now, now))
                out.append({"id": int(cur.lastrowid or 0), "image_id": image_id,
                            "class_id": x["class_id"], "kind": x["kind"], "geometry": geometry,
                            "score": x["score"], "source": source, "prompt": x["prompt"],
                            "status": status, "created": now, "updated": now})
            if run_id is not None:
                conn.execute("UPDATE run_items SET shapes = ? WHERE run_id = ? AND image_id = ?",
                             (len(out), run_id, image_id))
            return out

    # -- what a person decides (undoable) -----------------------------------------------------

    def set_status_many(self, ids: Iterable[int], status: str) -> list[int]:
        """Accept, reject (or reset to pending) many shapes in one undo step.

        Returns the ids whose status changed; unknown ids raise NotFound and change nothing.
        """
        wanted = list(dict.fromkeys(v.check_id(i, "ids") for i in ids))
        status = v.check_choice(status, v.SHAPE_STATUSES, "status")
        with self._edit() as rec:
            rows = [self._require(rec.conn, "shapes", i, "shape") for i in wanted]
            changed = [r for r in rows if r["status"] != status]
            now = time.time()
            for row in changed:
                rec.update("shapes", row["id"], {"status": status, "updated": now})
            images = sorted({r["image_id"] for r in changed})
            if status != "pending":
                for image_id in images:
                    self._start_image(rec, image_id)
            if len(changed) == 1:
                rec.description = f"{_WORDS[status]} {changed[0]['kind']}"
            else:
                rec.description = f"{_WORDS[status]} {len(changed)} shapes"
            rec.image_id = images[0] if len(images) == 1 else None
            return [r["id"] for r in changed]

    def convert_shapes(self, image_id: int, changes: list[dict[str, Any]], description: str,
                       *, run_id: int | None = None) -> list[dict[str, Any]]:
        """Replace the geometry (and kind, source, score, prompt) of shapes of one image, keeping
        their id, class and status: one undo step (e.g. boxes turned into polygons).

        Each change: ``{"id", "kind", "geometry", "source", "score"?, "prompt"?}``. With
        ``run_id`` the run item is finished in the same transaction (see replace_proposals).
        """
        v.check_id(image_id, "image_id")
        prepared = []
        for i, ch in enumerate(changes):
            if not isinstance(ch, dict) or "id" not in ch:
                raise InvalidArgument(f"changes[{i}] must be an object with an id.")
            spec = _spec_values({k: ch[k] for k in ("kind", "geometry", "source", "score",
                                                    "prompt") if k in ch}, f"changes[{i}]")
            prepared.append((v.check_id(ch["id"], f"changes[{i}].id"), spec))
        with self._edit() as rec:
            self._require(rec.conn, "images", image_id, "image")
            if run_id is not None:
                finish_item(rec.conn, run_id, image_id, len(prepared))
            now = time.time()
            for shape_id, spec in prepared:
                row = self._require(rec.conn, "shapes", shape_id, "shape")
                if row["image_id"] != image_id:
                    raise InvalidArgument(f"shape {shape_id} is not on image {image_id}.")
                rec.update("shapes", shape_id, {k: spec[k] for k in ("kind", "geometry",
                                                                       "source", "score",
                                                                       "prompt")}
                           | {"updated": now})
            rec.description = description
            rec.image_id = image_id
            return [self._shape(rec.conn, i) for i, _ in prepared]

    # -- review -------------------------------------------------------------------------------

    def pending_queue(self, limit: int = 200) -> list[dict[str, Any]]:
        """Pending proposals across the project, lowest score first (unscored last), each with
        ``image_name``."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise InvalidArgument(f"limit must be an integer from 1 to 10000, got {limit!r}.",
                                  detail={"field": "limit"})
        with self._read() as conn:
            rows = conn.execute(
                "SELECT s.*, i.relpath AS relpath FROM shapes AS s JOIN images AS i "
                "ON i.id = s.image_id WHERE s.status = 'pending' "
                "ORDER BY s.score IS NULL, s.score, s.id LIMIT ?", (limit,)).fetchall()
        return [{**_record(r), "image_name": r["relpath"].rsplit("/", 1)[-1]} for r in rows]

    def proposals(self, image_id: int, source: str | None = None) -> list[dict[str, Any]]:
        """Pending shapes of one image (from ``source`` only, when given), oldest first."""
        return [s for s in self.shapes(image_id, ("pending",))
                if source is None or s["source"] == source]
