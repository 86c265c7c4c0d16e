"""Fixtures for the AI-assisted labeling tests: tiny packs, projects of synthetic photos, a
throwaway user data folder, and helpers to wait for job events.

Tiny packs are exported once per test session by our own exporter (random weights shaped so that
scores spread out and masks are blobs; see ADRs 0003 and 0004). ``FIELDMARK_TEST_PACKS`` may name
a folder to keep them between sessions while developing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TIMEOUT = 120.0  # upper bound for waits on a loaded machine; tests never sleep a fixed time


@dataclass
class Packs:
    detector: Path
    segmenter: Path


def _export(family: str, out: Path, pack_id: str) -> Path:
    if (out / "manifest.json").is_file():
        return out
    from build_scripts.exporters import EXPORTERS

    EXPORTERS[family](family=family, checkpoint=None, random="tiny", out=out, quantize=False,
                      seed=0, pack_id=pack_id, version="0.0.1")
    return out


@pytest.fixture(scope="session")
def packs(tmp_path_factory: pytest.TempPathFactory) -> Packs:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    keep = os.environ.get("FIELDMARK_TEST_PACKS")
    root = Path(keep) if keep else tmp_path_factory.mktemp("ai-packs")
    return Packs(detector=_export("owlv2", root / "owlv2-tiny", "owlv2-tiny-test"),
                 segmenter=_export("sam", root / "sam-tiny", "sam-tiny-test"))


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh user data folder (settings, embedding cache, installed packs) for one test."""
    data = tmp_path / "user-data"
    data.mkdir()
    monkeypatch.setenv("FIELDMARK_DATA_DIR", str(data))
    monkeypatch.setenv("FIELDMARK_PACKS_DIR", str(data / "packs"))
    return data


def photo(h: int, w: int, seed: int) -> np.ndarray:
    """A structured RGB picture: gradients, texture and a few solid discs (something to find)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([xx / w * 255, yy / h * 255, 128 + 100 * np.sin(xx / 9) * np.cos(yy / 7)], -1)
    for _ in range(4):
        cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        r = rng.uniform(0.1, 0.2) * min(h, w)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def make_photos(folder: Path, n: int, *, corrupt: tuple[int, ...] = (), size: tuple[int, int] = (120, 160),
                prefix: str = "img") -> list[str]:
    """``n`` JPEGs ``img01.jpg``...; the positions in ``corrupt`` are broken files. Returns names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = f"{prefix}{i + 1:02d}.jpg"
        if i in corrupt:
            (folder / name).write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG" * (i + 1))
        else:
            Image.fromarray(photo(*size, seed=i)).save(folder / name, quality=92)
        names.append(name)
    return names


class Events:
    """Records bridge events (listeners run on job threads) and waits for a job's end."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []
        self._cond = threading.Condition()

    def __call__(self, name: str, payload: Any) -> None:
        with self._cond:
            self.items.append((name, payload))
            self._cond.notify_all()

    def names(self) -> list[str]:
        with self._cond:
            return [n for n, _ in self.items]

    def of(self, name: str) -> list[Any]:
        with self._cond:
            return [p for n, p in self.items if n == name]

    def wait_job(self, job_id: str, timeout: float = TIMEOUT) -> tuple[str, Any]:
        """(final event name, payload) of ``job_id``."""
        def end() -> tuple[str, Any] | None:
            for n, p in self.items:
                if n in ("job.done", "job.failed", "job.cancelled") and p.get("job") == job_id:
                    return n, p
            return None

        with self._cond:
            if not self._cond.wait_for(lambda: end() is not None, timeout):
                raise AssertionError(f"job {job_id} did not finish within {timeout} s")
            found = end()
        assert found is not None
        return found

    def result(self, job_id: str) -> Any:
        name, payload = self.wait_job(job_id)
        assert name == "job.done", payload
        return payload["result"]


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def ai_services(data_dir: Path, events: Events) -> Iterator[Any]:
    from backend.ai.services import AiServices

    services = AiServices(events, packs_dir=data_dir / "packs", state_path=data_dir / "ai.json",
                          cache_dir=data_dir / "cache", threads=1)
    yield services
    services.shutdown()


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    make_photos(folder, 3)
    return folder


@pytest.fixture
def project(project_dir: Path) -> Iterator[Any]:
    from backend.imaging import SUPPORTED_EXTENSIONS
    from backend.store import Project

    p = Project.open(project_dir)
    p.scan(SUPPORTED_EXTENSIONS)
    yield p
    p.close()
