"""Which model packs exist, which detector and segmenter are active, and the loaded models.

Packs come from three places: the user's packs folder (``models install``), the packs bundled
with the app (``resource("packs")``), and folders registered for one session (the
``autolabel`` command's ``--detector DIR``). A bare pack id means its newest version; ``id@version``
names one exactly.

The active choice per task is kept in a small JSON file in the user data folder. With no choice
ever made, the first pack of the task is active, so installing one segmenter is enough to start
clicking; choosing "none" is remembered as a choice. Loading is lazy (first use, on a job
thread, never the GUI thread) and verifies the pack's checksums once per session.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend import atomic
from backend.errors import FieldmarkError, InvalidArgument, PackError
from backend.models.pack import (
    TASKS,
    Pack,
    install_pack,
    list_packs,
    load_pack,
    release,
    verify_pack,
)

log = logging.getLogger(__name__)


class NoModel(FieldmarkError):
    """No pack is active (or installed) for a task."""

    code = "no_model"


def _version_key(version: str) -> list[Any]:
    """Natural order for versions: 1.10 > 1.9, numbers before words at the same place."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[._+-]", version)]


class ModelManager:
    def __init__(self, packs_dir: Path, bundled_dir: Path | None = None,
                 state_path: Path | None = None, *, threads: int | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self.packs_dir = Path(packs_dir)
        self.bundled_dir = Path(bundled_dir) if bundled_dir is not None else None
        self.state_path = state_path
        self.threads = threads
        self.on_change = on_change
        self._lock = threading.RLock()
        self._load_lock = threading.Lock()
        self._registered: dict[str, Pack] = {}     # source tag -> pack (this session only)
        self._loaded: dict[str, Any] = {}          # source tag -> Detector | Segmenter
        self._state: dict[str, Any] = self._read_state()

    # -- the catalogue --------------------------------------------------------------------

    def _read_state(self) -> dict[str, Any]:
        if self.state_path is None:
            return {}
        try:
            data = json.loads(Path(self.state_path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self.state_path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def _scan(self) -> tuple[list[tuple[Pack, str]], list[dict[str, str]]]:
        """(pack, origin) for every usable pack, and ``{"path", "message"}`` for broken ones."""
        found: list[tuple[Pack, str]] = [(p, "registered") for p in self._registered.values()]
        broken: list[dict[str, str]] = []
        for folder, origin in ((self.packs_dir, "installed"), (self.bundled_dir, "bundled")):
            if folder is None:
                continue
            for item in list_packs(folder):
                if isinstance(item, PackError):
                    broken.append({"path": str((item.detail or {}).get("pack", folder)),
                                   "message": item.message})
                else:
                    found.append((item, origin))
        return found, broken

    def packs(self) -> list[Pack]:
        return [p for p, _ in self._scan()[0]]

    def find(self, ref: str, task: str | None = None) -> Pack:
        """The pack named ``ref`` (``id`` = newest version, or ``id@version``)."""
        if not isinstance(ref, str) or not ref:
            raise InvalidArgument(f"A pack id must be text, got {ref!r}.", detail={"field": "id"})
        pack_id, _, version = ref.partition("@")
        matches = [p for p in self.packs() if p.id == pack_id and (not version or p.version == version)
                   and (task is None or p.task == task)]
        if not matches:
            what = f"{task} pack" if task else "pack"
            raise NoModel(f"There is no installed {what} '{ref}'. Install it in the models panel "
                          "(or with 'python main.py models install PATH').",
                          detail={"id": ref, "task": task})
        return max(matches, key=lambda p: _version_key(p.version))

    def register(self, path: Path) -> Pack:
        """Use a pack folder or .zip for this session without installing it (verified now; a
        zip stays unpacked in a temp folder until :meth:`close` or the end of the process)."""
        pack = load_pack(Path(path))
        with self._lock:
            old = self._registered.get(pack.source_tag)
            self._registered[pack.source_tag] = pack
        if old is not None and old.root != pack.root:
            release(old)
        return pack

    def install(self, path: Path) -> Pack:
        """Verify a pack (folder or .zip) and copy it into the packs folder.

        Installing never changes which pack is active: where the active one was the automatic
        choice (the first of its task), it becomes an explicit one, so a new pack that sorts
        first does not take over unasked (and a broken one cannot replace a working one).
        """
        before = {t: self.active(t) for t in TASKS}
        pack = install_pack(Path(path), self.packs_dir)
        with self._lock:
            old = before.get(pack.task)
            if self._state.get(pack.task, "auto") == "auto" and old is not None \
                    and old.id != pack.id:
                self._state[pack.task] = old.id
                self._save_state()
        self._changed()
        return pack

    def close(self) -> None:
        """Unload every model and remove the temp folders of registered .zip packs."""
        self.unload()
        with self._lock:
            registered, self._registered = list(self._registered.values()), {}
        for pack in registered:
            release(pack)

    # -- the active choice ----------------------------------------------------------------

    def active(self, task: str) -> Pack | None:
        """The active pack of ``task``; None when none is chosen or installed."""
        _check_task(task)
        with self._lock:
            chosen = self._state.get(task, "auto")
        if chosen is None:
            return None
        if chosen != "auto":
            try:
                return self.find(chosen, task)
            except NoModel:
                log.info("active %s %s is no longer installed", task, chosen)
        candidates = [p for p in self.packs() if p.task == task]
        return candidates[0] if candidates else None

    def activate(self, task: str, ref: str | None) -> Pack | None:
        """Make ``ref`` the active pack of ``task`` (None: no model for it); remembered."""
        _check_task(task)
        pack = None if ref is None else self.find(ref, task)
        with self._lock:
            old = self.active(task)
            self._state[task] = None if pack is None else pack.id
            self._save_state()
            if old is not None and (pack is None or old.source_tag != pack.source_tag):
                self._drop(old.source_tag)  # free the memory of the one we leave
        self._changed()
        return pack

    def _save_state(self) -> None:
        if self.state_path is None:
            return
        try:
            atomic.write_json(Path(self.state_path), self._state)
        except OSError as exc:
            log.warning("could not save %s: %s", self.state_path, exc)

    # -- loaded models --------------------------------------------------------------------

    def model(self, pack: Pack) -> Any:
        """The loaded Detector / Segmenter for ``pack`` (verifying and loading it once).

        Loading holds its own lock, so the panel (``info``) never waits for a checksum pass.
        """
        with self._lock:
            loaded = self._loaded.get(pack.source_tag)
        if loaded is not None:
            return loaded
        with self._load_lock:
            with self._lock:
                loaded = self._loaded.get(pack.source_tag)
            if loaded is not None:
                return loaded
            verified = verify_pack(pack.root)  # checksums: refuse a pack altered since listing
            if verified.source_tag != pack.source_tag:
                raise PackError(f"The model pack in '{pack.root}' changed while Fieldmark was "
                                "running. Choose it again in the models panel.",
                                detail={"pack": str(pack.root)})
            if pack.task == "detector":
                from backend.models.detector import load_detector

                model: Any = load_detector(verified, threads=self.threads)
            else:
                from backend.models.segmenter import load_segmenter

                model = load_segmenter(verified, threads=self.threads)
            with self._lock:
                self._loaded[pack.source_tag] = model
        self._changed()
        return model

    def active_or_raise(self, task: str) -> Pack:
        pack = self.active(task)
        if pack is None:
            if task == "detector":
                raise NoModel("No detector is active. Install a detector pack (OWL-ViT or "
                              "OWLv2) in the models panel, or choose one there.",
                              code="no_detector")
            raise NoModel("No segmenter is active. Install a segmenter pack (SAM or SAM 2) in "
                          "the models panel, or use smart select, which needs no model.",
                          code="no_segmenter")
        return pack

    def detector(self) -> Any:
        """The active detector, loaded (on the calling thread: never call from the GUI one)."""
        return self.model(self.active_or_raise("detector"))

    def segmenter(self) -> Any:
        """The active segmenter, loaded (on the calling thread: never call from the GUI one)."""
        return self.model(self.active_or_raise("segmenter"))

    def by_tag(self, tag: str, task: str) -> Any:
        """The loaded model for an exact ``id@version`` (a resumed run uses its own pack)."""
        return self.model(self.find(tag, task))

    def unload(self, task: str | None = None) -> None:
        """Drop loaded models (all, or those of ``task``); they load again on next use."""
        if task is not None:
            _check_task(task)
        with self._lock:
            for tag, model in list(self._loaded.items()):
                if task is None or model.pack.task == task:
                    self._drop(tag)
        self._changed()

    def _drop(self, tag: str) -> None:
        model = self._loaded.pop(tag, None)
        if model is not None:
            model.unload()

    def loaded_active(self, task: str) -> Any | None:
        """The active model of ``task`` if it is loaded already (never loads: callers on the
        GUI thread must not wait for a checksum pass)."""
        pack = self.active(task)
        if pack is None:
            return None
        with self._lock:
            return self._loaded.get(pack.source_tag)

    def loaded(self) -> list[Any]:
        with self._lock:
            return list(self._loaded.values())

    def memory_bytes(self) -> int:
        """Weights of the loaded models (their files' size; onnxruntime holds about that)."""
        total = 0
        for model in self.loaded():
            for rel in model.pack.manifest["files"]:
                try:
                    total += (model.pack.root / rel).stat().st_size
                except OSError:
                    pass
        return total

    def device(self) -> dict[str, Any]:
        """``{"provider", "reason", "threads"}``: where passes run and why there."""
        from backend.models.runtime import PREFERENCE, default_threads

        try:
            import onnxruntime as ort

            installed = list(ort.get_available_providers())
        except ImportError:  # a broken install: say so rather than fail the panel
            return {"provider": None, "reason": "onnxruntime is not installed; models cannot "
                    "run (smart select still works).", "threads": 0}
        best = next((p for p in PREFERENCE if p in installed), "CPUExecutionProvider")
        used = {str(m.provider) for m in self.loaded() if m.provider not in ("", "not loaded")}
        threads = self.threads or default_threads()
        if used and best not in used:
            provider = sorted(used)[0]
            reason = (f"{best} is installed but could not start with this model, so it runs on "
                      f"{provider}.")
        elif best == "CPUExecutionProvider":
            provider = best
            reason = (f"This build of onnxruntime has no GPU provider, so models run on the CPU "
                      f"with {threads} thread{'s' if threads != 1 else ''}.")
        else:
            provider = best
            reason = f"{best} is available and preferred over the CPU."
        return {"provider": provider, "reason": reason, "threads": threads}

    def info(self) -> dict[str, Any]:
        """The ``models.list`` answer (see docs/bridge.md)."""
        found, broken = self._scan()
        active = {t: self.active(t) for t in TASKS}
        loaded = {m.pack.source_tag for m in self.loaded()}
        packs = []
        for pack, origin in found:
            packs.append({**pack.summary(), "source": pack.source_tag, "origin": origin,
                          "active": any(a is not None and a.source_tag == pack.source_tag
                                        for a in active.values()),
                          "loaded": pack.source_tag in loaded})
        return {"packs": packs, "broken": broken,
                "active": {t: (a.id if a is not None else None) for t, a in active.items()},
                "device": self.device(), "memory_bytes": self.memory_bytes(),
                "smart_select": True, "packs_dir": str(self.packs_dir)}

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # noqa: BLE001 — a listener must not break model loading
                log.exception("models.changed listener failed")


def _check_task(task: Any) -> str:
    if task not in TASKS:
        raise InvalidArgument(f"task must be one of {', '.join(TASKS)}, got {task!r:.40}.",
                              detail={"field": "task"})
    return str(task)
