"""Image encodings (Embeddings) for the active models: cached, computed on the one worker,
and prepared ahead for the next images.

Keys are content-addressed (``EmbeddingCache.key``: sha256 of the file, ``<pack id>@<version>``
and the task), so a renamed image keeps its embedding and an edited one does not reuse a stale
one. Lookups go: a small in-memory table of ready-to-use encodings -> the EmbeddingCache (memory,
then disk under ``<user data>/cache/embeddings``) -> decode the file on the calling thread and
run the encoder on the worker. Decoding is not a model pass, so it overlaps whatever the worker
is doing.

Batch runs read the cache but do not write it: thousands of batch embeddings would evict the
few the person is working with, and cost gigabytes of disk for images nobody may open.

Memory: the ready-to-use table shares the cache's arrays (the encoding kept is rebuilt from the
cache's stored copy) and holds only encodings the cache still holds in memory, plus the latest
one per task (the image being worked on), so embeddings stay within the cache's memory cap
plus that one. An entry read back from the cache is checked against the pack's declared
encoder outputs (names, dtypes, fixed sizes, finite values); one that does not fit (written by
an earlier export of the same pack id and version, or damaged) is dropped and encoded again.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from backend.ai.models import ModelManager
from backend.ai.worker import BATCH, PREFETCH, InferenceWorker
from backend.errors import FieldmarkError
from backend.models.cache import EmbeddingCache
from backend.models.inputs import ModelImage, load_image
from backend.models.runtime import declared_io
from backend.models.segmenter import SegEncoding

log = logging.getLogger(__name__)

PREFETCH_COUNT = 2      # images after the current one encoded in the background
_READY_ITEMS = 16       # ready-to-use encodings kept per task (the arrays live in the cache too)
_ENCODER_GRAPH = {"segmenter": "encoder", "detector": "image_encoder"}  # what the cache holds

Emit = Callable[[str, Any], None]


def fitting_outputs(pack: Any, arrays: dict[str, np.ndarray]) -> list[str] | None:
    """The encoder output names ``arrays`` holds as ``pack``'s manifest declares them (dtype,
    rank, fixed sizes, finite values) plus a positive (h, w) ``original_size``; None if any
    does not fit."""
    graph = pack.manifest["io"]["graphs"].get(_ENCODER_GRAPH.get(pack.task, ""), {})
    declared = graph.get("outputs") if isinstance(graph, dict) else None
    size = arrays.get("original_size")
    if not declared or not isinstance(size, np.ndarray) or size.shape != (2,) \
            or size.dtype.kind not in "iu" or not bool((size > 0).all()):
        return None
    for name, spec in declared.items():
        arr = arrays.get(name)
        dtype, shape = declared_io(spec)
        if not isinstance(arr, np.ndarray) or (dtype is not None and arr.dtype != np.dtype(dtype)):
            return None
        if shape is not None and (arr.ndim != len(shape) or any(
                isinstance(want, int) and got != want for got, want in zip(arr.shape, shape, strict=True))):
            return None
        if arr.dtype.kind == "f" and not bool(np.isfinite(arr).all()):
            return None
    return list(declared)




class EncodingService:
    def __init__(self, models: ModelManager, worker: InferenceWorker,
                 cache: EmbeddingCache | Callable[[], EmbeddingCache] | None,
                 emit: Emit | None = None, prefetch_count: int = PREFETCH_COUNT) -> None:
        self.models = models
        self.worker = worker
        self._cache = cache  # or a factory: the cache folder is made on first use only
        self.emit = emit or (lambda name, payload: None)
        self.prefetch_count = prefetch_count
        self._lock = threading.Lock()
        self._ready: dict[str, OrderedDict[str, Any]] = {"detector": OrderedDict(),
                                                         "segmenter": OrderedDict()}
        self._prefetch_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
        self._prefetching: list[Future[Any]] = []
        self._generation = 0

    @property
    def cache(self) -> EmbeddingCache | None:
        with self._lock:
            if callable(self._cache) and not isinstance(self._cache, EmbeddingCache):
                self._cache = self._cache()
            return self._cache

    def cache_stats(self) -> dict[str, int]:
        """Memory and disk use of the embedding cache (zeros before its first use)."""
        with self._lock:
            cache = self._cache if isinstance(self._cache, EmbeddingCache) else None
        stats = cache.stats() if cache is not None else {}
        return {"memory_bytes": int(stats.get("memory_bytes", 0)),
                "disk_bytes": int(stats.get("disk_bytes", 0))}

    # -- keys and lookups -----------------------------------------------------------------

    @staticmethod
    def key(path: Path, model: Any) -> str:
        return EmbeddingCache.key(path, model.pack.source_tag, model.pack.task)

    def _remember(self, task: str, key: str, enc: Any) -> None:
        cache = self.cache
        with self._lock:
            table = self._ready[task]
            table[key] = enc
            table.move_to_end(key)
            while len(table) > _READY_ITEMS:
                table.popitem(last=False)
            if cache is not None:  # what the cache let go of must not live on here
                for k in list(table)[:-1]:
                    if not cache.in_memory(k):
                        del table[k]

    def peek(self, model: Any, path: Path) -> Any | None:
        """The encoding of ``path`` for ``model`` if one is cached (never runs the encoder)."""
        task = model.pack.task
        key = self.key(path, model)
        cache = self.cache
        with self._lock:
            enc = self._ready[task].get(key)
            if enc is not None:
                self._ready[task].move_to_end(key)
        if enc is not None:
            if cache is not None:
                cache.touch(key)  # keep the cache's recency in step with real use
            return enc
        arrays = cache.get(key) if cache is not None else None
        if arrays is None or cache is None:
            return None
        enc = self._from_arrays(model, key, arrays)
        if enc is None:
            log.info("embedding cache: entry %s does not fit %s; encoding the image again",
                     key[:12], model.pack.source_tag)
            cache.discard(key)
            return None
        self._remember(task, key, enc)
        return enc

    @staticmethod
    def _from_arrays(model: Any, key: str, arrays: dict[str, np.ndarray]) -> Any | None:
        """The encoding held in ``arrays``, or None where they do not fit the pack."""
        names = fitting_outputs(model.pack, arrays)
        if names is None:
            return None
        size_arr = arrays["original_size"]
        if model.pack.task == "segmenter":
            size = (int(size_arr[0]), int(size_arr[1]))
            return SegEncoding(key, size, {k: arrays[k] for k in names})
        # The detector derives boxes and per-patch terms from its raw outputs; its own cache path
        # needs the decoded image, which a cache hit should not have to pay for.
        return model.encoding_from_arrays(arrays, key)

    def encoding(self, model: Any, path: Path, priority: int, *,
                 image: ModelImage | None = None) -> Any:
        """The encoding of ``path`` for ``model``: cached, or decoded here (unless ``image`` is
        its :func:`load_image`) and encoded on the worker at ``priority`` (batch priority does
        not write the cache, see the module doc)."""
        enc = self.peek(model, path)
        if enc is not None:
            return enc
        img = image if image is not None else load_image(path)
        enc = self.worker.run(priority, model.encode_image, img.pixels, size=img.size)
        key = self.key(path, model)
        if model.pack.task == "detector":
            enc.key = key
        else:
            enc = SegEncoding(key, enc.original_size, enc.arrays)
        if priority != BATCH:
            cache = self.cache
            if cache is not None:
                arrays = dict(enc.arrays)
                arrays["original_size"] = np.asarray(enc.original_size, dtype=np.int64)
                # Keep the cache's copy, not a second one of the same arrays (made by this
                # model just now: no need for _from_arrays' checks of a read-back entry).
                stored = cache.put(key, arrays)
                if model.pack.task == "segmenter":
                    enc = SegEncoding(key, enc.original_size, {k: stored[k] for k in enc.arrays})
                else:
                    enc = model.encoding_from_arrays(stored, key) or enc
            self._remember(model.pack.task, key, enc)
        return enc

    # -- prefetch -------------------------------------------------------------------------

    def prefetch(self, project: Any, current_id: int, task: str = "segmenter") -> None:
        """Encode the few images after ``current_id`` (project order) in the background.

        Earlier requests for other images are dropped if they have not started: the person
        moved on. Emits ``encode.ready`` for each image that becomes ready.
        """
        if self.prefetch_count <= 0:
            return
        with self._lock:
            self._generation += 1
            generation = self._generation
            old, self._prefetching = self._prefetching, []
        for f in old:
            f.cancel()
        self.worker.cancel_queued(PREFETCH)
        future = self._prefetch_pool.submit(self._prefetch, project, current_id, task, generation)
        with self._lock:
            self._prefetching.append(future)

    def _prefetch(self, project: Any, current_id: int, task: str, generation: int) -> None:
        try:
            model = self.models.segmenter() if task == "segmenter" else self.models.detector()
            ids = [im["id"] for im in project.images() if im["error"] is None]
        except FieldmarkError as exc:  # no model, project closed: nothing to prepare
            log.debug("prefetch skipped: %s", exc.message)
            return
        if current_id not in ids:
            return
        at = ids.index(current_id)
        for image_id in ids[at + 1: at + 1 + self.prefetch_count]:
            with self._lock:
                if generation != self._generation:
                    return  # superseded: the person moved on
            if not self.worker.wait_quiet():  # decode only while the person is not clicking
                return
            with self._lock:
                if generation != self._generation:
                    return
            try:
                path = project.image_path(image_id)
                if self.peek(model, path) is None:
                    self.encoding(model, path, PREFETCH)
                self.emit("encode.ready", {"image_id": image_id, "task": task})
            except FieldmarkError as exc:
                log.info("prefetch of image %s failed: %s", image_id, exc.message)
            except Exception as exc:  # noqa: BLE001 — a cancelled pass or a bug; never fatal
                log.info("prefetch of image %s stopped: %r", image_id, exc)
                return

    def forget(self) -> None:
        """Drop ready-to-use encodings and pending prefetches (project closed, models changed)."""
        with self._lock:
            for table in self._ready.values():
                table.clear()
            self._generation += 1
            old, self._prefetching = self._prefetching, []
        for f in old:
            f.cancel()
        self.worker.cancel_queued(PREFETCH)

    def shutdown(self) -> None:
        self.forget()
        self._prefetch_pool.shutdown(wait=False, cancel_futures=True)
