"""Detect from text: class prompts -> detector -> pending proposals in the store.

Lifecycle of a Proposal (ADR 0006): the detector's boxes become ``pending`` shapes with
``score``, ``source = <pack id>@<version>`` and ``prompt`` = the phrase that scored best. A new
detection on an image replaces that image's pending proposals from the same pack (the store keeps
those a person acted on, see ``replace_proposals``). A person accepts or rejects (undoable);
rejected ones stay as memory: the same pack never proposes a box at the same place for the same
class again (IoU >= 0.7), and no proposal lands on an already accepted shape. With
``auto_accept`` set for the project, proposals scoring at least that are stored accepted.

Classes are searched with their own phrases only (a class without phrases is not searched;
its name is not silently used) and their own threshold. Labels handed to the detector are the
class ids as text, so two classes with the same phrase stay apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from backend.ai.encodings import EncodingService
from backend.ai.models import ModelManager
from backend.ai.worker import INTERACTIVE, InferenceWorker
from backend.errors import FieldmarkError, InvalidArgument, NotFound
from backend.store.proposals import shape_bbox

AUTO_ACCEPT_KEY = "ai.auto_accept"
SIMILAR_THRESHOLD = 0.5  # "find more like this" when the class has no threshold of its own


class NotEncoded(FieldmarkError):
    code = "not_encoded"


def class_prompts(project: Any) -> tuple[dict[str, list[str]], dict[str, float]]:
    """``({str(class id): phrases}, {str(class id): threshold})`` of classes with phrases."""
    prompts: dict[str, list[str]] = {}
    thresholds: dict[str, float] = {}
    for c in project.classes():
        if c["prompts"]:
            prompts[str(c["id"])] = list(c["prompts"])
            thresholds[str(c["id"])] = float(c["threshold"])
    return prompts, thresholds


def require_prompts(prompts: dict[str, list[str]]) -> None:
    if not prompts:
        raise InvalidArgument("No class has a prompt yet. Type what to look for (for example "
                              "'a moth') in a class's prompt field first.", code="no_prompts")


def auto_accept(project: Any) -> float | None:
    value = project.get_setting(AUTO_ACCEPT_KEY)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and 0 <= value <= 1:
        return float(value)
    return None


def detection_shapes(detections: Sequence[Any], known_classes: set[int]) -> list[dict[str, Any]]:
    """Detector output as proposal specs for ``replace_proposals`` (boxes, class by label)."""
    out = []
    for d in detections:
        class_id = int(d.label) if d.label.isdigit() and int(d.label) in known_classes else None
        out.append({"kind": "box", "geometry": list(d.box), "class_id": class_id,
                    "score": float(d.score), "prompt": d.phrase})
    return out


class ProposalService:
    def __init__(self, models: ModelManager, encodings: EncodingService,
                 worker: InferenceWorker) -> None:
        self.models = models
        self.encodings = encodings
        self.worker = worker

    def detect_image(self, project: Any, image_id: int, priority: int = INTERACTIVE
                     ) -> list[dict[str, Any]]:
        """Encode (if needed) and detect on one image; replace its live proposals from the
        active detector. Returns that detector's pending proposals on the image."""
        prompts, thresholds = class_prompts(project)
        require_prompts(prompts)
        detector = self.models.detector()
        enc = self.encodings.encoding(detector, project.image_path(image_id), priority)
        detections = self.worker.run(priority, detector.detect, enc, prompts, thresholds)
        return self._write(project, image_id, detector, detections, prompts)

    def rescore(self, project: Any, image_id: int) -> list[dict[str, Any]]:
        """Detect again from the cached embedding (a changed phrase or threshold).

        Runs on the caller's thread: the class head is a small matrix product. The encoder never
        runs here; a phrase not seen before goes through the (small) text encoder inline rather
        than queueing behind a batch pass on the worker, which would freeze the caller.
        """
        prompts, thresholds = class_prompts(project)
        detector = self.models.loaded_active("detector")
        if detector is None:
            self.models.active_or_raise("detector")
            raise NotEncoded("The detector is not loaded yet; use 'Try on this image' first.",
                             detail={"image_id": image_id})
        enc = self.encodings.peek(detector, project.image_path(image_id))
        if enc is None:
            raise NotEncoded("This image has not been encoded by the detector yet; use "
                             "'Try on this image' first.", detail={"image_id": image_id})
        detections = detector.detect(enc, prompts, thresholds) if prompts else []
        return self._write(project, image_id, detector, detections, prompts)

    def _write(self, project: Any, image_id: int, detector: Any, detections: Sequence[Any],
               prompts: dict[str, list[str]], *, run_id: int | None = None
               ) -> list[dict[str, Any]]:
        known = {int(k) for k in prompts}
        tag = detector.pack.source_tag
        project.replace_proposals(image_id, tag, detection_shapes(detections, known),
                                  auto_accept=auto_accept(project), run_id=run_id)
        return project.proposals(image_id, tag)

    def warm_phrases(self, phrases: Sequence[str]) -> None:
        """Encode new phrases ahead (after a prompt edit), so the next re-score is pure numpy."""
        detector = self.models.loaded_active("detector")
        if detector is not None and phrases:
            self.worker.submit(INTERACTIVE, detector.encode_text, list(phrases))

    def similar(self, project: Any, shape_id: int, priority: int = INTERACTIVE
                ) -> tuple[int, list[dict[str, Any]]]:
        """Find more like this on the same image; adds proposals (keeps the others).

        The example's class and threshold carry over; the example itself is never proposed.
        """
        shape = project.shape(shape_id)
        box = shape_bbox(shape["kind"], shape["geometry"])
        if box is None or box[2] <= box[0] or box[3] <= box[1]:
            raise InvalidArgument("Find more like this needs a box, polygon or mask as the "
                                  "example, not a point.", detail={"field": "shape_id"})
        image_id = shape["image_id"]
        threshold = SIMILAR_THRESHOLD
        if shape["class_id"] is not None:
            try:
                threshold = float(next(c["threshold"] for c in project.classes()
                                       if c["id"] == shape["class_id"]))
            except StopIteration as exc:
                raise NotFound(f"The class of shape {shape_id} no longer exists.") from exc
        detector = self.models.detector()
        enc = self.encodings.encoding(detector, project.image_path(image_id), priority)
        label = str(shape["class_id"]) if shape["class_id"] is not None else ""
        detections = self.worker.run(priority, detector.find_similar, enc, box, threshold,
                                     label=label)
        specs = [{"kind": "box", "geometry": list(d.box), "class_id": shape["class_id"],
                  "score": float(d.score), "prompt": f"like #{shape_id}"} for d in detections]
        # The example blocks its own place: it is a kept pending or an accepted shape.
        added = project.replace_proposals(image_id, detector.pack.source_tag, specs,
                                          replace=False, auto_accept=auto_accept(project))
        return image_id, added
