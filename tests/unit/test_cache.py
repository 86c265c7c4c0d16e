"""Embedding cache: keys follow file content, entries survive restarts, caps hold, damaged
files are dropped, and concurrent threads do not corrupt it."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from backend.errors import ImageReadError, InvalidArgument
from backend.models.cache import EmbeddingCache

MB = 1 << 20


def entry(seed: int, nbytes: int = 64 * 1024) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"image_embeddings": rng.standard_normal(nbytes // 4).astype(np.float32),
            "original_size": np.array([480, 640], dtype=np.int64)}


def key_for(tmp_path: Path, seed: int) -> str:
    f = tmp_path / "images" / f"img{seed}.bin"
    f.parent.mkdir(exist_ok=True)
    f.write_bytes(f"image {seed}".encode())
    return EmbeddingCache.key(f, "sam-tiny@1.0.0")


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype
        np.testing.assert_array_equal(a[name], b[name])


# -- keys -------------------------------------------------------------------------------------

def test_key_follows_content_pack_and_variant(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jpg", tmp_path / "sub" / "b.jpg", tmp_path / "c.jpg"
    b.parent.mkdir()
    a.write_bytes(b"same pixels" * 1000)
    b.write_bytes(b"same pixels" * 1000)
    c.write_bytes(b"other pixels" * 1000)
    k = EmbeddingCache.key(a, "sam@1")
    assert len(k) == 64 and int(k, 16) >= 0
    assert EmbeddingCache.key(b, "sam@1") == k           # renamed / copied image: reused
    assert EmbeddingCache.key(c, "sam@1") != k           # different image
    assert EmbeddingCache.key(a, "sam@2") != k           # different model
    assert EmbeddingCache.key(a, "sam@1", "page=1") != k  # different page or parameters
    # Joining is unambiguous: moving a character between pack and variant changes the key.
    assert EmbeddingCache.key(a, "sam@1", "x") != EmbeddingCache.key(a, "sam@1x", "")


def test_key_is_recomputed_when_the_file_changes_and_memoized_otherwise(tmp_path: Path) -> None:
    f = tmp_path / "img.tif"
    f.write_bytes(b"A" * 4096)
    k1 = EmbeddingCache.key(f, "p@1")
    st = f.stat()
    # Same size and modification time: the memoized digest is used, the file is not re-read.
    f.write_bytes(b"B" * 4096)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert EmbeddingCache.key(f, "p@1") == k1
    # A real edit changes the modification time: the content is hashed again.
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert EmbeddingCache.key(f, "p@1") != k1


def test_key_of_a_missing_image_is_a_read_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError) as err:
        EmbeddingCache.key(tmp_path / "gone.jpg", "p@1")
    assert "gone.jpg" in err.value.message


# -- get / put --------------------------------------------------------------------------------

def test_put_get_round_trip_and_stats(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    k = key_for(tmp_path, 1)
    assert cache.get(k) is None
    data = entry(1)
    cache.put(k, data)
    got = cache.get(k)
    assert got is not None
    assert_same(got, data)
    with pytest.raises(ValueError):
        got["image_embeddings"][0] = 1.0             # shared arrays are read-only
    data["image_embeddings"][0] = 123.0              # the caller's array stays its own
    assert cache.get(k)["image_embeddings"][0] != 123.0  # type: ignore[index]
    s = cache.stats()
    assert s["hits"] == 2 and s["misses"] == 1
    assert s["memory_entries"] == 1 and s["disk_entries"] == 1
    assert s["memory_bytes"] == sum(a.nbytes for a in entry(1).values())
    assert s["disk_bytes"] == (tmp_path / "cache" / f"{k}.npz").stat().st_size
    assert not [p for p in (tmp_path / "cache").iterdir() if p.suffix == ".tmp"]


def test_entries_survive_a_new_session(tmp_path: Path) -> None:
    k = key_for(tmp_path, 2)
    EmbeddingCache(tmp_path / "cache").put(k, entry(2))
    later = EmbeddingCache(tmp_path / "cache")
    assert later.stats()["disk_entries"] == 1
    got = later.get(k)
    assert got is not None
    assert_same(got, entry(2))
    assert later.stats()["disk_hits"] == 1
    later.get(k)
    assert later.stats()["disk_hits"] == 1              # promoted to memory
    assert later.stats()["hits"] == 2


def test_any_identifier_works_as_an_array_name(tmp_path: Path) -> None:
    d = tmp_path / "cache"
    k = key_for(tmp_path, 9)
    data = {"file": np.arange(3), "allow_pickle": np.ones((2, 2), np.float16),
            "high_res_feats_0": np.zeros((1, 2, 3, 4), np.uint8)}
    EmbeddingCache(d).put(k, data)
    assert_same(EmbeddingCache(d).get(k), data)  # type: ignore[arg-type]


def test_memory_only_cache(tmp_path: Path) -> None:
    cache = EmbeddingCache(None)
    k = key_for(tmp_path, 3)
    cache.put(k, entry(3))
    assert_same(cache.get(k), entry(3))  # type: ignore[arg-type]
    assert cache.stats()["disk_entries"] == 0


def test_memory_is_lru_by_bytes(tmp_path: Path) -> None:
    size = sum(a.nbytes for a in entry(0).values())
    cache = EmbeddingCache(tmp_path / "cache", memory_bytes=3 * size)
    keys = [key_for(tmp_path, i) for i in range(5)]
    for i in range(3):
        cache.put(keys[i], entry(i))
    cache.get(keys[0])                                  # 0 is now the most recently used
    cache.put(keys[3], entry(3))                        # evicts 1, the least recently used
    s = cache.stats()
    assert s["memory_entries"] == 3 and s["memory_bytes"] <= 3 * size
    disk_hits = s["disk_hits"]
    cache.get(keys[0])
    assert cache.stats()["disk_hits"] == disk_hits      # 0 came from memory
    cache.get(keys[1])
    assert cache.stats()["disk_hits"] == disk_hits + 1  # 1 had to come from disk


def test_entry_bigger_than_memory_goes_to_disk_only(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache", memory_bytes=1024)
    k = key_for(tmp_path, 4)
    cache.put(k, entry(4))
    assert cache.stats()["memory_entries"] == 0
    assert_same(cache.get(k), entry(4))  # type: ignore[arg-type]


def test_disk_stays_under_its_cap_dropping_least_recently_used(tmp_path: Path) -> None:
    probe = EmbeddingCache(tmp_path / "probe")
    probe.put(key_for(tmp_path, 99), entry(99))
    file_size = probe.stats()["disk_bytes"]
    cache = EmbeddingCache(tmp_path / "cache", memory_bytes=0, disk_bytes=3 * file_size)
    keys = [key_for(tmp_path, i) for i in range(6)]
    past = time.time() - 1000
    for i in range(3):
        cache.put(keys[i], entry(i))
        os.utime(tmp_path / "cache" / f"{keys[i]}.npz", (past + i, past + i))
    assert cache.get(keys[0]) is not None               # use refreshes 0
    cache.put(keys[3], entry(3))                         # over the cap: 1 (oldest) goes
    files = {p.stem for p in (tmp_path / "cache").glob("*.npz")}
    assert files == {keys[0], keys[2], keys[3]}
    for i in range(4, 6):
        cache.put(keys[i], entry(i))
    s = cache.stats()
    assert s["disk_bytes"] <= 3 * file_size
    total = sum(p.stat().st_size for p in (tmp_path / "cache").glob("*.npz"))
    assert total == s["disk_bytes"] <= 3 * file_size


def test_evict_to_caps_applies_lowered_caps(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    keys = [key_for(tmp_path, i) for i in range(4)]
    for i, k in enumerate(keys):
        cache.put(k, entry(i))
    size = sum(a.nbytes for a in entry(0).values())
    cache.memory_cap = size
    cache.disk_cap = cache.stats()["disk_bytes"] // 2
    cache.evict_to_caps()
    s = cache.stats()
    assert s["memory_entries"] == 1 and s["disk_bytes"] <= cache.disk_cap
    assert s["disk_entries"] == len(list((tmp_path / "cache").glob("*.npz")))


def test_clear_removes_everything_but_foreign_files(tmp_path: Path) -> None:
    d = tmp_path / "cache"
    cache = EmbeddingCache(d)
    k = key_for(tmp_path, 5)
    cache.put(k, entry(5))
    (d / "notes.txt").write_text("not ours")
    cache.clear()
    assert cache.get(k) is None
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"]
    assert cache.stats()["disk_entries"] == 0 and cache.stats()["memory_entries"] == 0


# -- damaged files ----------------------------------------------------------------------------

def _pickled_npz(path: Path) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, x=np.array([{"a": 1}], dtype=object))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "pickled", "npy"])
def test_damaged_file_is_a_miss_and_is_deleted(tmp_path: Path, damage: str) -> None:
    d = tmp_path / "cache"
    k = key_for(tmp_path, 6)
    EmbeddingCache(d).put(k, entry(6))
    path = d / f"{k}.npz"
    if damage == "garbage":
        path.write_bytes(os.urandom(5000))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "pickled":
        _pickled_npz(path)
    else:
        with open(path, "wb") as fh:
            np.save(fh, np.zeros(3))
    fresh = EmbeddingCache(d)
    assert fresh.get(k) is None
    assert not path.exists()
    assert fresh.stats()["misses"] == 1 and fresh.stats()["disk_entries"] == 0
    fresh.put(k, entry(6))                               # and the slot is usable again
    assert_same(EmbeddingCache(d).get(k), entry(6))  # type: ignore[arg-type]


def test_flipped_byte_in_array_data_is_detected(tmp_path: Path) -> None:
    d = tmp_path / "cache"
    k = key_for(tmp_path, 7)
    EmbeddingCache(d).put(k, entry(7))
    path = d / f"{k}.npz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF                           # inside the embedding data
    path.write_bytes(bytes(raw))
    assert EmbeddingCache(d).get(k) is None              # zip CRC catches it
    assert not path.exists()


def test_stale_temp_files_are_cleaned_up(tmp_path: Path) -> None:
    d = tmp_path / "cache"
    d.mkdir()
    stale, fresh = d / ".abc.123.tmp", d / ".def.456.tmp"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    EmbeddingCache(d)
    assert not stale.exists() and fresh.exists()        # fresh may be another writer's


# -- validation -------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["../../etc/passwd", "A" * 64, "ab", "", "0" * 63 + "/"])
def test_keys_that_are_not_our_digests_are_refused(tmp_path: Path, key: str) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    with pytest.raises(InvalidArgument, match="key"):
        cache.put(key, entry(0))
    with pytest.raises(InvalidArgument, match="key"):
        cache.get(key)


def test_object_arrays_and_empty_entries_are_refused(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    k = key_for(tmp_path, 8)
    with pytest.raises(InvalidArgument, match="objects"):
        cache.put(k, {"x": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(InvalidArgument):
        cache.put(k, {})
    with pytest.raises(InvalidArgument):
        cache.put(k, {"not an identifier": np.zeros(2)})
    assert cache.get(k) is None


# -- threads ----------------------------------------------------------------------------------

def test_concurrent_puts_and_gets(tmp_path: Path) -> None:
    size = sum(a.nbytes for a in entry(0, 16 * 1024).values())
    cache = EmbeddingCache(tmp_path / "cache", memory_bytes=5 * size, disk_bytes=8 * size)
    keys = [key_for(tmp_path, i) for i in range(12)]
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for round_ in range(15):
                i = (offset + round_) % len(keys)
                cache.put(keys[i], entry(i, 16 * 1024))
                got = cache.get(keys[(i + 3) % len(keys)])
                if got is not None:   # whatever comes back must be the right, whole entry
                    assert_same(got, entry((i + 3) % len(keys), 16 * 1024))
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    s = cache.stats()
    assert s["memory_bytes"] <= 5 * size
    on_disk = list((tmp_path / "cache").glob("*.npz"))
    assert sum(p.stat().st_size for p in on_disk) <= 8 * size
    assert not list((tmp_path / "cache").glob(".*.tmp"))
    for p in on_disk:
        k = p.stem
        assert_same(cache.get(k), entry(keys.index(k), 16 * 1024))  # type: ignore[arg-type]
