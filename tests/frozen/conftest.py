"""The built binaries under test: ``$FIELDMARK_BINARY``, else whatever ``dist/`` holds."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXE = ".exe" if sys.platform == "win32" else ""


def built_binaries() -> list[Path]:
    env = os.environ.get("FIELDMARK_BINARY")
    if env:
        return [Path(env)]
    candidates = [ROOT / "dist" / f"fieldmark{EXE}", ROOT / "dist" / "fieldmark-onedir" / f"fieldmark{EXE}"]
    return [p for p in candidates if p.is_file()]


@pytest.fixture(scope="module", params=built_binaries() or [None], ids=lambda p: p.parent.name + "/" + p.name if p else "none")
def binary(request: pytest.FixtureRequest) -> Path:
    if request.param is None:
        pytest.skip("no built binary in dist/ (build one: python build_scripts/build_onefile.py)")
    return Path(request.param)


@pytest.fixture(scope="session", autouse=True)
def _app_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The single file unpacks its app once per build into a per-user cache: here one cache for
    the whole session (unpacked by the first test that starts it), never the user's own."""
    cache = tmp_path_factory.mktemp("app-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIELDMARK_CACHE_DIR", str(cache))
        yield cache
