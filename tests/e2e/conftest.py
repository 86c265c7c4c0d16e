"""Fixtures for the end-to-end tests: one QApplication, a fresh window and project per test.

The environment is fixed before Qt is imported: the offscreen platform, and a throwaway user
data folder (settings, recent projects) so tests never touch the real one.

Every window a test opens is checked when it closes: a JavaScript error in the console, a
request blocked by the interceptor or an error toast shown to the person fails the test, unless
the test declared it with ``driver.expect_console/expect_blocked/expect_toast(regex)``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

_DATA = Path(tempfile.mkdtemp(prefix="fieldmark-e2e-data-"))
atexit.register(shutil.rmtree, _DATA, ignore_errors=True)
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["FIELDMARK_DATA_DIR"] = str(_DATA)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402 (after the environment above)

from backend.api.service import Api  # noqa: E402
from backend.api.settings import Settings  # noqa: E402
from tests.e2e.harness import Driver, Launcher, launch  # noqa: E402
from tests.e2e.projects import make_project  # noqa: E402


@pytest.fixture(scope="session")
def qapp() -> object:
    from backend.gui.app import make_application

    return make_application([sys.argv[0]])


@pytest.fixture
def launcher(qapp: object, tmp_path: Path) -> Iterator[Launcher]:
    """``launcher(folder=None, settings=None)``: a new Api (opening ``folder``) and its window.

    Windows still open at the end are closed; every window's problems fail the test.
    """
    drivers: list[Driver] = []
    settings_path = tmp_path / "user" / "settings.json"

    def start(folder: Path | None = None, settings: Path | None = None) -> Driver:
        api = Api(Settings(settings or settings_path), demo_dir=tmp_path / "demo")
        if folder is not None:
            api.open_project(folder)
        driver = launch(api, folder)
        drivers.append(driver)
        return driver

    yield start
    problems: list[str] = []
    for driver in drivers:
        problems += driver.close()
        driver.api.close_project()
        stop_ai(driver)
    if problems:
        pytest.fail("the page had problems:\n  " + "\n  ".join(problems))


def stop_ai(driver: Driver) -> None:
    """Stop the AI threads (inference worker, job pool) the page's first AI call started."""
    found = getattr(driver.api, "_ai_services", None)  # set by backend.api.ai_handlers.services
    if found is not None:
        found.shutdown()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with the three DEFAULT_IMAGES."""
    return make_project(tmp_path / "photos")


@pytest.fixture
def app(launcher: Launcher, project: Path) -> Driver:
    """The window on the default project, showing its first image."""
    return launcher(project)


# -- AI-assisted labeling: tiny model packs ------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
# task -> (family, pack id): random-weight packs made by our own exporter, like the model tests.
TINY_PACKS = {"detector": ("owlv2", "owlv2-tiny-e2e"), "segmenter": ("sam", "sam-tiny-e2e")}


@pytest.fixture(scope="session")
def tiny_pack_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"detector": folder, "segmenter": folder}``: tiny random packs, exported once per session
    by ``build_scripts/export_models.py --random tiny`` (two processes side by side; torch stays
    out of the test process)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("tiny-packs")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    procs = {task: subprocess.Popen(
        [sys.executable, str(REPO / "build_scripts" / "export_models.py"), "--family", family,
         "--random", "tiny", "--out", str(root / task), "--id", pack_id, "--version", "0.0.1"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for task, (family, pack_id) in TINY_PACKS.items()}
    for task, proc in procs.items():
        log, _ = proc.communicate(timeout=900)
        if proc.returncode != 0:
            pytest.fail(f"exporting the tiny {task} pack failed:\n{log[-3000:]}")
    return {task: root / task for task in TINY_PACKS}


@pytest.fixture
def ai_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh packs folder (``FIELDMARK_PACKS_DIR``) and user data folder for this test: the
    active-pack choice and the embedding cache start empty, so no test sees another's."""
    data = tmp_path / "ai-data"
    data.mkdir()
    monkeypatch.setenv("FIELDMARK_DATA_DIR", str(data))
    monkeypatch.setenv("FIELDMARK_PACKS_DIR", str(data / "packs"))
    return data / "packs"


@pytest.fixture
def ai_launcher(launcher: Launcher, ai_env: Path, tiny_pack_sources: dict[str, Path]) -> Launcher:
    """Like ``launcher``, with the tiny packs installed through the page (``models.install``)
    into this test's packs folder and both active. ``segmenter=False`` leaves the segmenter out
    (smart select)."""
    def start(folder: Path | None = None, settings: Path | None = None, *,
              segmenter: bool = True) -> Driver:
        driver = launcher(folder, settings)
        driver.install_pack(tiny_pack_sources["detector"])
        driver.activate_pack("detector", TINY_PACKS["detector"][1])
        if segmenter:
            driver.install_pack(tiny_pack_sources["segmenter"])
            driver.activate_pack("segmenter", TINY_PACKS["segmenter"][1])
        else:
            driver.activate_pack("segmenter", None)
        return driver
    return start
