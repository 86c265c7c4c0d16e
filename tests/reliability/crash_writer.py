"""The editing worker of the crash tests: opens a project through the app's API and edits it
without end (until it is killed), logging each edit before (``intent``) and after (``ack``).

Edits go through ``Api.call`` (what the bridge calls for the page) with JSON-round-tripped
arguments, except the model's output (``replace_proposals``), the large batches a model run or an
import makes (``add_shapes``, ``import_shapes``) and class prompts, which go to the store directly
as the AI services and importers do. Every ack carries the digest of the project's visible state
after the edit (:func:`tests.reliability.crash_state.snapshot`), so the checker can tell exactly
which edits reached the disk.

Run in a process forked by ``crash_zygote.py`` (``job = "writer"``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from tests.reliability.crash_state import SideLog, digest, reader, snapshot

SOURCE = "crash-pack@1"
# (operation, weight): small interactive edits mostly, and big transactions often enough that a
# random kill regularly lands inside one.
OPS = (("add", 22), ("move", 9), ("reclass", 5), ("delete", 8), ("undo", 8), ("redo", 5),
       ("class_add", 4), ("class_rename", 2), ("class_recolor", 2), ("class_delete", 1),
       ("class_merge", 1), ("image_status", 3), ("prompts", 2), ("propose", 6),
       ("accept_all", 4), ("reject", 3), ("add_many", 4), ("import", 3), ("auto_accept", 2))
MAX_SHAPES = 4000  # above this the big additions give way to undo (keeps each trial quick)


class ApiFailed(Exception):
    pass


def call(api: Any, method: str, args: dict[str, Any]) -> Any:
    answer = api.call(method, json.loads(json.dumps(args)))  # as the bridge hands it over
    if "error" in answer:
        raise ApiFailed(f"{method} {args}: {answer['error']}")
    return answer["ok"]


def _box(rng: random.Random) -> list[float]:
    x, y = rng.uniform(0, 140), rng.uniform(0, 100)
    return [round(x, 3), round(y, 3), round(x + rng.uniform(2, 60), 3),
            round(y + rng.uniform(2, 40), 3)]


def _polygon(rng: random.Random) -> list[list[float]]:
    cx, cy = rng.uniform(20, 140), rng.uniform(20, 100)
    return [[round(cx + rng.uniform(-15, 15), 2), round(cy + rng.uniform(-15, 15), 2)]
            for _ in range(rng.randint(3, 12))]


def _geometry(rng: random.Random, kind: str) -> Any:
    if kind == "box":
        return _box(rng)
    if kind == "polygon":
        return _polygon(rng)
    return [round(rng.uniform(0, 160), 2), round(rng.uniform(0, 120), 2)]


class Writer:
    def __init__(self, api: Any, log: SideLog, seed: int) -> None:
        self.api = api
        self.project = api.project
        self.log = log
        self.rng = random.Random(seed)
        self.seed = seed
        self.n = 0
        self.db = reader(self.project.db_path)
        self.snap = snapshot(self.db)
        self.images = [im[0] for im in self.snap["images"]]
        self.auto_accept = call(api, "ai.settings", {})["auto_accept"]

    def ack(self, op: str) -> None:
        self.snap = snapshot(self.db)
        self.log.write({"ev": "ack", "n": self.n, "op": op, "digest": digest(self.snap),
                        "shapes": len(self.snap["shapes"]), "auto_accept": self.auto_accept})

    def loop(self) -> None:
        self.ack("open")
        names, weights = zip(*OPS, strict=True)
        while True:
            self.n += 1
            op = self.rng.choices(names, weights)[0]
            if len(self.snap["shapes"]) > MAX_SHAPES and op in ("add_many", "import", "propose"):
                op = "undo"
            intent = self.plan(op)
            if intent is None:
                continue  # nothing to do that way now (no shape to move, no class to merge)
            self.log.write({"ev": "intent", "n": self.n, "op": op, **intent["log"]})
            intent["do"]()
            self.ack(op)

    # -- what each operation does -----------------------------------------------------------

    def _shape(self, statuses: tuple[str, ...] = ("accepted", "pending")) -> list[Any] | None:
        found = [s for s in self.snap["shapes"] if s[8] in statuses]
        return self.rng.choice(found) if found else None

    def _class_id(self) -> int | None:
        classes = self.snap["classes"]
        return self.rng.choice(classes)[0] if classes and self.rng.random() < 0.8 else None

    def plan(self, op: str) -> dict[str, Any] | None:  # noqa: C901 — one table of operations
        rng, api, project = self.rng, self.api, self.project
        log: dict[str, Any] = {}

        def plain(method: str, args: dict[str, Any]) -> dict[str, Any]:
            log.update(method=method, args=args)
            return {"log": log, "do": lambda: call(api, method, args)}

        if op == "add":
            kind = rng.choice(("box", "box", "polygon", "point"))
            return plain("shapes.add", {"image_id": rng.choice(self.images), "kind": kind,
                                        "geometry": _geometry(rng, kind),
                                        "class_id": self._class_id()})
        if op in ("move", "reclass", "delete"):
            shape = self._shape()
            if shape is None:
                return None
            if op == "move":
                return plain("shapes.update", {"id": shape[0],
                                               "geometry": _geometry(rng, shape[3])})
            if op == "reclass":
                return plain("shapes.update", {"id": shape[0], "class_id": self._class_id()})
            return plain("shapes.delete", {"id": shape[0]})
        if op in ("undo", "redo"):
            return plain(f"edit.{op}", {})
        if op == "class_add":
            return plain("classes.add", {"name": f"class {self.seed}-{self.n}"})
        if op in ("class_rename", "class_recolor", "class_delete", "prompts"):
            if not self.snap["classes"]:
                return None
            cid = rng.choice(self.snap["classes"])[0]
            if op == "class_rename":
                return plain("classes.rename", {"id": cid, "name": f"renamed {self.seed}-{self.n}"})
            if op == "class_recolor":
                return plain("classes.recolor", {"id": cid, "color": f"#{rng.randrange(1 << 24):06x}"})
            if op == "class_delete":
                return plain("classes.delete", {"id": cid})
            phrases = [f"thing {rng.randrange(100)}" for _ in range(rng.randint(0, 3))]
            phrases = list(dict.fromkeys(phrases))
            threshold = round(rng.uniform(0, 1), 3)
            # Prompt edits may fold into the previous undo step, so the checker cannot undo
            # one to find the state before it: it puts the old values back itself.
            old = next(c for c in self.snap["classes"] if c[0] == cid)
            log.update(class_id=cid, old=old[4:])
            return {"log": log, "do": lambda: project.set_class_prompts(cid, phrases, threshold)}
        if op == "class_merge":
            if len(self.snap["classes"]) < 2:
                return None
            a, b = rng.sample([c[0] for c in self.snap["classes"]], 2)
            return plain("classes.merge", {"source": a, "target": b})
        if op == "image_status":
            return plain("image.set_status", {"id": rng.choice(self.images),
                                              "status": rng.choice(("new", "in_progress", "done",
                                                                    "skipped"))})
        if op == "propose":
            image_id = rng.choice(self.images)
            specs = [{"kind": "box", "geometry": _box(rng), "class_id": self._class_id(),
                      "score": round(rng.random(), 4), "prompt": "thing"}
                     for _ in range(rng.randint(5, 400))]
            # Model output is not undoable: the checker rebuilds the state before it from the
            # rows this write may replace and the ids it may add.
            replaced = [x for x in self.snap["shapes"]
                        if x[1] == image_id and x[6] == SOURCE and x[8] == "pending"]
            log.update(image_id=image_id, source=SOURCE, count=len(specs), replaced=replaced,
                       max_id=max((x[0] for x in self.snap["shapes"]), default=0))
            return {"log": log, "do": lambda: project.replace_proposals(
                image_id, SOURCE, specs, auto_accept=self.auto_accept)}
        if op in ("accept_all", "reject"):
            pending = [s for s in self.snap["shapes"] if s[8] == "pending"]
            if not pending:
                return None
            if op == "accept_all":
                return plain("review.accept_all", {"image_id": rng.choice(pending)[1]})
            ids = [s[0] for s in rng.sample(pending, min(len(pending), rng.randint(1, 50)))]
            return plain("review.set", {"ids": ids, "status": "rejected"})
        if op == "add_many":
            image_id = rng.choice(self.images)
            specs = [{"kind": "polygon", "geometry": _polygon(rng), "class_id": self._class_id()}
                     for _ in range(rng.randint(50, 700))]
            log.update(image_id=image_id, count=len(specs))
            return {"log": log, "do": lambda: project.add_shapes(image_id, specs)}
        if op == "import":
            items = [{"image_id": rng.choice(self.images), "class_name": f"imported {rng.randrange(4)}",
                      "kind": "box", "geometry": _box(rng)}
                     for _ in range(rng.randint(100, 1500))]
            log.update(count=len(items))
            return {"log": log, "do": lambda: project.import_shapes(items, "Import COCO")}
        if op == "auto_accept":
            value = rng.choice((None, round(rng.uniform(0.5, 1), 3)))

            def set_auto_accept() -> None:
                self.auto_accept = call(api, "ai.settings", {"auto_accept": value})["auto_accept"]
            log.update(value=value)
            return {"log": log, "do": set_auto_accept}
        raise ValueError(op)


def work(folder: Path, log_path: Path, seed: int, data_dir: Path) -> None:
    """Open ``folder`` as the app does (scan, background probe) and edit until killed."""
    from backend.api.service import Api
    from backend.api.settings import Settings

    api = Api(Settings(data_dir / "settings.json"), demo_dir=data_dir / "demo")
    api.open_project(folder)
    Writer(api, SideLog(log_path), seed).loop()
