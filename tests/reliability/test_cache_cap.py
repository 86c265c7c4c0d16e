"""The embedding cache stays within its caps, measured from outside: the files in its folder
(not its own counters) and the array memory still reachable from the cache and the encoding
service. A cache entry that cannot be used (damaged, truncated, or written by an earlier export
of the same pack id and version with other shapes) is dropped and the image encoded again, so
a click gives the mask a fresh encoding gives.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.ai.encodings import EncodingService
from backend.ai.models import ModelManager
from backend.ai.worker import INTERACTIVE, InferenceWorker
from backend.models.cache import EmbeddingCache
from backend.models.segmenter import SegEncoding
from tests.ai.conftest import make_photos
from tests.reliability.test_bad_packs import tiny_packs

MB = 1 << 20


def folder_bytes(folder: Path) -> int:
    """What the cache occupies on disk: every file in its folder, temp files included."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def held_bytes(*roots: object) -> int:
    """Bytes of the distinct array buffers reachable from ``roots`` through containers and the
    fields of the cache, the encoding service and encodings (views count once, by owner)."""
    walk = (EmbeddingCache, EncodingService, SegEncoding)
    seen: set[int] = set()
    owners: dict[int, int] = {}
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            base = obj
            while isinstance(base.base, np.ndarray):
                base = base.base
            owner = base if base.base is None else base.base
            owners[id(owner)] = max(owners.get(id(owner), 0), base.nbytes)
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif isinstance(obj, walk):
            stack.extend(vars(obj).values())
    return sum(owners.values())


def entry(seed: int, nbytes: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"image_embeddings": rng.standard_normal(nbytes // 4).astype(np.float32),
            "original_size": np.array([480, 640], dtype=np.int64)}


def keys(tmp_path: Path, n: int) -> list[str]:
    (tmp_path / "images").mkdir(exist_ok=True)
    out = []
    for i in range(n):
        f = tmp_path / "images" / f"{i}.bin"
        f.write_bytes(f"image {i}".encode())
        out.append(EmbeddingCache.key(f, "sam-tiny@1.0.0"))
    return out


# -- the cache alone ----------------------------------------------------------------------------

def test_memory_and_disk_stay_under_their_caps_through_many_puts_and_gets(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    mem_cap, disk_cap = 1 * MB, 2 * MB
    cache = EmbeddingCache(folder, memory_bytes=mem_cap, disk_bytes=disk_cap)
    ks = keys(tmp_path, 40)
    sizes = [64 * 1024, 200 * 1024, 390 * 1024, 5 * 1024, 1100 * 1024]   # the last: disk only
    peak_disk = peak_mem = 0
    for i, k in enumerate(ks):
        cache.put(k, entry(i, sizes[i % len(sizes)]))
        for back in (ks[i // 2], ks[max(0, i - 3)]):     # reads bring old entries back
            cache.get(back)
        peak_disk = max(peak_disk, folder_bytes(folder))
        peak_mem = max(peak_mem, held_bytes(cache))
        assert folder_bytes(folder) <= disk_cap, f"after {i + 1} puts"
        assert held_bytes(cache) <= mem_cap, f"after {i + 1} puts"
    assert peak_disk > disk_cap // 2 and peak_mem > mem_cap // 2, "the caps were reached"
    stats = cache.stats()
    assert stats["disk_bytes"] == folder_bytes(folder) and stats["memory_bytes"] == held_bytes(cache)


def test_two_app_instances_sharing_the_folder_keep_it_under_the_cap(tmp_path: Path) -> None:
    # The app and an ``autolabel`` command (or two windows) share <user data>/cache/embeddings.
    folder = tmp_path / "cache"
    cap = 1 * MB
    first = EmbeddingCache(folder, memory_bytes=0, disk_bytes=cap)
    second = EmbeddingCache(folder, memory_bytes=0, disk_bytes=cap)
    ks = keys(tmp_path, 24)
    for i, k in enumerate(ks):
        (first if i % 2 else second).put(k, entry(i, 150 * 1024))
        assert folder_bytes(folder) <= cap, f"after {i + 1} puts"
    assert len(list(folder.glob("*.npz"))) >= 5


def _absurd_header(path: Path) -> None:
    # A damaged .npy header that declares 4 TiB: loading it must not try to allocate that.
    with zipfile.ZipFile(path, "w") as zf, zf.open("image_embeddings.npy", "w") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (1 << 40,)})
        fh.write(b"\0" * 64)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).bytes(path.stat().st_size))


# -- the encoding service with a real (tiny) SAM -------------------------------------------------

@dataclass
class Setup:
    models: ModelManager
    worker: InferenceWorker
    seg: Any
    photos: list[Path]

    def service(self, cache_dir: Path, memory: int = 64 * MB,
                disk: int = 64 * MB) -> EncodingService:
        return EncodingService(self.models, self.worker,
                               EmbeddingCache(cache_dir, memory_bytes=memory, disk_bytes=disk),
                               prefetch_count=0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    good = tiny_packs(tmp_path_factory)
    root = tmp_path_factory.mktemp("cache-cap")
    models = ModelManager(root / "packs", None, None, threads=1)
    models.install(good.segmenter)
    worker = InferenceWorker()
    photos = [root / "photos" / n for n in make_photos(root / "photos", 8)]
    try:
        yield Setup(models, worker, models.segmenter(), photos)
    finally:
        worker.shutdown(wait=False)


def _mask(setup: Setup, enc: Any) -> np.ndarray:
    return setup.seg.predict(enc, [(60.0, 50.0, 1)]).mask


def test_encodings_keep_memory_and_disk_under_the_caps(setup: Setup, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    one = 64 * 64 * 64 * 4 + 16                         # a tiny-SAM embedding + its size
    mem_cap, disk_cap = int(2.5 * one), int(3.5 * one)
    svc = setup.service(folder, mem_cap, disk_cap)
    order = [0, 1, 2, 0, 3, 4, 2, 5, 6, 7, 5, 7]         # 0 and 5 come back from disk
    masks: dict[int, np.ndarray] = {}
    for i in order:
        enc = svc.encoding(setup.seg, setup.photos[i], INTERACTIVE)
        mask = _mask(setup, enc)
        if i in masks:
            np.testing.assert_array_equal(mask, masks[i])   # re-read or re-encoded: same mask
        masks[i] = mask
        assert folder_bytes(folder) <= disk_cap
        # The cache's own memory is within its cap; the service adds at most the encoding of
        # the image being worked on.
        assert held_bytes(svc.cache) <= mem_cap
        assert held_bytes(svc) <= mem_cap + one
    assert len(list(folder.glob("*.npz"))) == 3
    assert svc.cache.stats()["disk_hits"] == 2
    svc.shutdown()


Damage = Callable[[EmbeddingCache, str, dict[str, np.ndarray]], None]


def _store(change: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]) -> Damage:
    """Write a changed copy of the good entry under the same key, as an earlier session would."""
    def damage(cache: EmbeddingCache, key: str, good: dict[str, np.ndarray]) -> None:
        cache.put(key, change(dict(good)))
    return damage


def _on_disk(hurt: Callable[[Path], None]) -> Damage:
    def damage(cache: EmbeddingCache, key: str, good: dict[str, np.ndarray]) -> None:
        cache.put(key, good)
        hurt(cache.disk_dir / f"{key}.npz")  # type: ignore[operator]
    return damage


def _nan(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    emb = arrays["image_embeddings"].copy()
    emb[0, :, :8] = np.nan
    return {**arrays, "image_embeddings": emb}


DAMAGE: dict[str, Damage] = {
    # An earlier export of the same id@version with another embedding size or width.
    "smaller-embedding": _store(lambda a: {**a, "image_embeddings": np.ones((1, 64, 32, 32),
                                                                           np.float32)}),
    "other-channels": _store(lambda a: {**a, "image_embeddings": a["image_embeddings"][:, :32]}),
    "float16": _store(lambda a: {**a, "image_embeddings": a["image_embeddings"].astype(np.float16)}),
    "not-finite": _store(_nan),
    "no-original-size": _store(lambda a: {"image_embeddings": a["image_embeddings"]}),
    "zero-original-size": _store(lambda a: {**a, "original_size": np.zeros(2, np.int64)}),
    "embedding-missing": _store(lambda a: {"other": a["image_embeddings"],
                                           "original_size": a["original_size"]}),
    "truncated-file": _on_disk(_truncate),
    "garbage-file": _on_disk(_garbage),
    "header-declares-4-TiB": _on_disk(_absurd_header),
}


@pytest.fixture(scope="module")
def reference(setup: Setup, tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, dict]:
    svc = setup.service(tmp_path_factory.mktemp("reference-cache"))
    enc = svc.encoding(setup.seg, setup.photos[0], INTERACTIVE)
    key = svc.key(setup.photos[0], setup.seg)
    good = svc.cache.get(key)
    assert good is not None
    svc.shutdown()
    return _mask(setup, enc), good


@pytest.mark.parametrize("name", list(DAMAGE))
def test_an_unusable_cache_entry_is_dropped_and_the_image_encoded_again(
        setup: Setup, reference: tuple[np.ndarray, dict], name: str, tmp_path: Path) -> None:
    want, good = reference
    folder = tmp_path / "cache"
    key = EncodingService.key(setup.photos[0], setup.seg)
    DAMAGE[name](EmbeddingCache(folder), key, good)   # as left by an earlier session
    svc = setup.service(folder)
    runs = setup.seg.encoder_runs
    enc = svc.encoding(setup.seg, setup.photos[0], INTERACTIVE)
    assert setup.seg.encoder_runs == runs + 1, "encoded again, not used"
    np.testing.assert_array_equal(_mask(setup, enc), want)
    svc.shutdown()
    # The bad entry was replaced by a good one: the next session uses it without encoding.
    again = setup.service(folder)
    enc = again.encoding(setup.seg, setup.photos[0], INTERACTIVE)
    assert setup.seg.encoder_runs == runs + 1
    np.testing.assert_array_equal(_mask(setup, enc), want)
    assert [p.name for p in folder.iterdir()] == [f"{key}.npz"], "no debris left"
    again.shutdown()
