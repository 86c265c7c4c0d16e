"""Segment by clicking: clicks and boxes -> a previewed mask as polygons -> an accepted shape.

A preview is not stored. The last preview of each image is remembered (its low-res logits, score
and prompt), so more clicks can refine it (``refine``: the logits go back in as the mask input,
as segment-anything's predictor does) and accepting it records its score and clicks.

Polygons are ``[polygon, ...]`` with ``polygon = [outer ring, hole, ...]`` in image pixels. An
accepted single ring becomes a ``polygon`` shape; several parts or holes become a ``mask`` shape
(COCO RLE), since the store's polygon is one ring.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from backend.ai.encodings import EncodingService
from backend.ai.models import ModelManager
from backend.ai.worker import INTERACTIVE, InferenceWorker
from backend.errors import InvalidArgument
from backend.geometry import rle
from backend.geometry.masks import polygon_area, polygon_bbox, polygons_to_mask

SMART_SOURCE = "smart-select@1"   # provenance of shapes made by the classical select
_REMEMBERED = 32                  # images whose last preview is kept for refinement
MAX_POINTS = 100


def check_points(value: Any) -> list[tuple[float, float, int]]:
    """``[[x, y, 1 or 0], ...]`` (label 1 = object, 0 = background; a missing label is 1)."""
    if not isinstance(value, (list, tuple)) or len(value) > MAX_POINTS:
        raise InvalidArgument(f"'points' must be a list of at most {MAX_POINTS} [x, y, 1 or 0] "
                              f"clicks, got {value!r:.80}.", detail={"field": "points"})
    out = []
    for i, p in enumerate(value):
        ok = isinstance(p, (list, tuple)) and len(p) in (2, 3) and all(
            isinstance(c, (int, float)) and not isinstance(c, bool) and np.isfinite(c) for c in p)
        if not ok or (len(p) == 3 and p[2] not in (0, 1)):
            raise InvalidArgument(f"points[{i}] must be [x, y, 1 or 0], got {p!r:.80}.",
                                  detail={"field": f"points[{i}]"})
        out.append((float(p[0]), float(p[1]), int(p[2]) if len(p) == 3 else 1))
    return out


def check_box(value: Any, field: str = "box") -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != 4 or not all(
            isinstance(c, (int, float)) and not isinstance(c, bool) and np.isfinite(c)
            for c in value):
        raise InvalidArgument(f"'{field}' must be [x0, y0, x1, y1], got {value!r:.80}.",
                              detail={"field": field})
    x0, y0, x1, y1 = (float(c) for c in value)
    return [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]


def check_polygons(value: Any) -> list[list[list[list[float]]]]:
    """Polygons as ``segment.click`` returns them; a single ring ``[[x, y], ...]`` is accepted."""
    if isinstance(value, (list, tuple)) and value and _is_point(value[0]):
        value = [[value]]
    if not isinstance(value, (list, tuple)) or not value:
        raise InvalidArgument("'polygons' must be a non-empty list of polygons (rings of "
                              "[x, y] points).", detail={"field": "polygons"})
    out = []
    for i, poly in enumerate(value):
        if not isinstance(poly, (list, tuple)) or not poly:
            raise InvalidArgument(f"polygons[{i}] must be a list of rings.",
                                  detail={"field": f"polygons[{i}]"})
        rings = []
        for j, ring in enumerate(poly):
            if not isinstance(ring, (list, tuple)) or len(ring) < 3 or \
                    not all(_is_point(p) for p in ring):
                raise InvalidArgument(f"polygons[{i}][{j}] must be at least 3 [x, y] points.",
                                      detail={"field": f"polygons[{i}][{j}]"})
            rings.append([[float(p[0]), float(p[1])] for p in ring])
        out.append(rings)
    return out


def _is_point(p: Any) -> bool:
    return isinstance(p, (list, tuple)) and len(p) == 2 and all(
        isinstance(c, (int, float)) and not isinstance(c, bool) and np.isfinite(c) for c in p)


def polygons_geometry(polygons: list[list[list[list[float]]]], height: int, width: int
                      ) -> tuple[str, Any]:
    """(kind, geometry) for the store: one ring -> polygon, anything else -> mask (RLE)."""
    if len(polygons) == 1 and len(polygons[0]) == 1:
        return "polygon", polygons[0][0]
    mask = polygons_to_mask(polygons, height, width)
    x0, y0, x1, y1 = polygon_bbox([p[0] for p in polygons])
    bbox = [max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)]
    return "mask", {"rle": rle.encode(mask), "bbox": bbox}


def preview(polygons: list[Any], score: float | None) -> dict[str, Any]:
    """``{"polygons", "score", "bbox", "area"}`` of a preview (area = enclosed pixels)."""
    if not polygons:
        return {"polygons": [], "score": score, "bbox": None, "area": 0}
    area = sum(polygon_area(p[0]) - sum(polygon_area(h) for h in p[1:]) for p in polygons)
    return {"polygons": polygons, "score": score,
            "bbox": polygon_bbox([p[0] for p in polygons]), "area": round(float(area), 2)}


class SegmentationService:
    def __init__(self, models: ModelManager, encodings: EncodingService,
                 worker: InferenceWorker) -> None:
        self.models = models
        self.encodings = encodings
        self.worker = worker
        self._lock = threading.Lock()
        self._last: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()

    def _key(self, project: Any, image_id: int) -> tuple[str, int]:
        return str(project.folder), image_id

    def prepare(self, project: Any, image_id: int) -> dict[str, Any]:
        """Encode now (interactive), then the next few images in the background."""
        segmenter = self.models.segmenter()
        self.encodings.encoding(segmenter, project.image_path(image_id), INTERACTIVE)
        self.encodings.prefetch(project, image_id)
        return {"image_id": image_id, "ready": True}

    def click(self, project: Any, image_id: int, points: Sequence[tuple[float, float, int]],
              box: Sequence[float] | None = None, refine: bool = False) -> dict[str, Any]:
        """A preview mask for the clicks / box as polygons (see the module doc)."""
        if not points and box is None:
            raise InvalidArgument("Click on the object or draw a box first.",
                                  detail={"field": "points"})
        segmenter = self.models.segmenter()
        enc = self.encodings.encoding(segmenter, project.image_path(image_id), INTERACTIVE)
        tag = segmenter.pack.source_tag
        with self._lock:
            last = self._last.get(self._key(project, image_id))
        mask_input = last["logits"] if refine and last and last["source"] == tag else None
        result, polygons = self.worker.run(INTERACTIVE, segmenter.predict_polygons, enc,
                                           list(points), box, mask_input)
        with self._lock:
            key = self._key(project, image_id)
            self._last[key] = {"logits": result.low_res_logits, "source": tag,
                               "score": float(result.score), "polygons": polygons,
                               "prompt": {"points": [list(p) for p in points], "box": box}}
            self._last.move_to_end(key)
            while len(self._last) > _REMEMBERED:
                self._last.popitem(last=False)
        return {"image_id": image_id, **preview(polygons, float(result.score)), "source": tag}

    def accept(self, project: Any, image_id: int, polygons: Any, class_id: int | None = None,
               prompt: str | None = None, tool: str = "segmenter") -> dict[str, Any]:
        """Store a previewed mask as an accepted shape (one undo step).

        ``tool="smart"`` records the classical smart select as the source. The score and the
        clicks come from this image's last preview when the polygons are that preview's.
        """
        polys = check_polygons(polygons)
        image = project.image(image_id)
        height, width = image["height"], image["width"]
        if height is None or width is None:
            from backend.imaging import probe

            info = probe(project.image_path(image_id))
            height, width = info.height, info.width
        with self._lock:
            last = self._last.get(self._key(project, image_id))
        same = last is not None and _same_polygons(last["polygons"], polys)
        if tool == "smart":
            source, score = SMART_SOURCE, None
        elif same and last is not None:
            source, score = last["source"], last["score"]
        else:
            pack = self.models.active("segmenter")
            source, score = (pack.source_tag if pack else SMART_SOURCE), None
        if prompt is None and same and last is not None and tool != "smart":
            prompt = json.dumps(last["prompt"], separators=(",", ":"))
        kind, geometry = polygons_geometry(polys, int(height), int(width))
        return project.add_shape(image_id, kind, geometry, class_id, score=score, source=source,
                                 prompt=prompt, status="accepted")

    def boxes(self, project: Any, image_id: int, priority: int = INTERACTIVE,
              run_id: int | None = None, *, segmenter: Any = None,
              image: np.ndarray | None = None) -> int:
        """Turn the image's box shapes (not rejected) into polygons or masks: one undo step.

        Each shape keeps its id, class and status; it gets the segmenter as source, the box as
        prompt and the detector's score if it had one (else the segmenter's). A box whose mask
        comes out empty stays a box. Returns the number of shapes turned.
        """
        boxes = [s for s in project.shapes(image_id) if s["kind"] == "box"]
        if not boxes:
            if run_id is not None:
                project.finish_run_item(run_id, image_id, 0)
            return 0
        segmenter = segmenter or self.models.segmenter()
        enc = self.encodings.encoding(segmenter, project.image_path(image_id), priority,
                                      image=image)
        h, w = enc.original_size
        changes = []
        for shape in boxes:
            result, polygons = self.worker.run(priority, segmenter.predict_polygons, enc, (),
                                               shape["geometry"])
            if not polygons:
                continue
            kind, geometry = polygons_geometry(polygons, h, w)
            changes.append({"id": shape["id"], "kind": kind, "geometry": geometry,
                            "source": segmenter.pack.source_tag,
                            "score": shape["score"] if shape["score"] is not None
                            else float(result.score),
                            "prompt": json.dumps({"box": shape["geometry"]},
                                                 separators=(",", ":"))})
        n = len(changes)
        if not changes:
            if run_id is not None:
                project.finish_run_item(run_id, image_id, 0)
            return 0
        project.convert_shapes(image_id, changes,
                               f"Segment {n} box{'es' if n != 1 else ''}", run_id=run_id)
        return n

    def forget(self) -> None:
        with self._lock:
            self._last.clear()


def _same_polygons(a: Any, b: Any) -> bool:
    try:
        return len(a) == len(b) and all(
            len(pa) == len(pb) and all(np.allclose(ra, rb, atol=1e-6) for ra, rb in zip(pa, pb, strict=True))
            for pa, pb in zip(a, b, strict=True))
    except (TypeError, ValueError):
        return False
