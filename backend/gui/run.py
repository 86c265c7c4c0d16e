"""Start the desktop app (``python main.py [PROJECT_DIR]``)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from backend import paths
from backend.api.service import Api
from backend.api.settings import Settings
from backend.errors import FieldmarkError

log = logging.getLogger(__name__)


def run_gui(project: str | None, *, screenshot: Path | None = None, size: tuple[int, int] = (1400, 900),
            startup_report: Path | None = None, started: float | None = None) -> int:
    from backend.gui.app import MainWindow, make_application

    app = make_application(sys.argv[:1])
    api = Api(Settings(paths.user_data_dir() / "settings.json"))
    startup_error = None
    try:
        if project:
            api.open_project(Path(project))
        else:
            api.open_demo()
    except FieldmarkError as exc:
        # The window still opens (welcome screen), and the page shows why the project did not.
        startup_error = exc.to_dict()
        log.warning("could not open %s: %s", project or "the demo project", exc.message)
    api.startup_error = startup_error
    window = MainWindow(api)
    window.resize(*size)
    window.show()
    if screenshot is not None:
        from backend.gui.waiting import spin, wait_page_ready

        wait_page_ready(window)
        spin(1500)  # let images and thumbnails arrive
        window.grab().save(str(screenshot))
        print(f"saved {screenshot}")
        window.close()
        return 0
    if startup_report is not None:
        from backend.gui.selftest import write_startup_report

        write_startup_report(window, startup_report, started)
        window.close()
        api.shutdown()
        return 0
    code = app.exec()
    api.shutdown()
    return int(code)
