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
    if problems:
        pytest.fail("the page had problems:\n  " + "\n  ".join(problems))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with the three DEFAULT_IMAGES."""
    return make_project(tmp_path / "photos")


@pytest.fixture
def app(launcher: Launcher, project: Path) -> Driver:
    """The window on the default project, showing its first image."""
    return launcher(project)

