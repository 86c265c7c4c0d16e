"""The window shell: a QWebEngineView on our page, the bridge on a web channel, folder drops.

Only this package imports Qt. It wires the pure core (``backend.api``) to the page and adds
what needs the desktop: the native folder dialog, drag and drop.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QIcon
from PySide6.QtWebChannel import QWebChannel
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import QApplication, QFileDialog, QMainWindow

from backend import paths
from backend.api.service import Api
from backend.errors import FieldmarkError
from backend.gui.bridge import Bridge
from backend.gui.scheme import SchemeHandler
from backend.gui.webpage import SCHEME, START_URL, Page, make_profile, register_scheme

log = logging.getLogger(__name__)


def prepare_environment() -> None:
    """Chromium flags that must be set before Qt WebEngine starts.

    The sandbox cannot run as root (CI, containers) — only there is it turned off. Offscreen
    runs have no GPU context to give, so GPU compositing is skipped there.
    """
    flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "").split()
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--no-sandbox" not in flags:
        flags.append("--no-sandbox")
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen" and "--disable-gpu" not in flags:
        flags.append("--disable-gpu")
    os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = " ".join(flags)
    os.environ.setdefault("QT_LOGGING_RULES", "qt.webenginecontext.debug=false")


def make_application(argv: list[str]) -> QApplication:
    prepare_environment()
    register_scheme()
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("Fieldmark")
    app.setOrganizationName("Fieldmark")
    return app  # type: ignore[return-value]


_CONSOLE_LEVELS = {0: logging.INFO, 1: logging.WARNING, 2: logging.ERROR}


class MainWindow(QMainWindow):
    def __init__(self, api: Api, *, on_console: Callable[[int, str, int, str], None] | None = None,
                 on_block: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.api = api
        self.setWindowTitle("Fieldmark")
        icon = paths.resource("web", "img", "icon.svg")
        if icon.exists():
            self.setWindowIcon(QIcon(str(icon)))
        self.resize(1400, 900)
        self.console: list[tuple[int, str, int, str]] = []
        self.blocked: list[str] = []
        self._on_console, self._on_block = on_console, on_block

        # The profile must outlive the page (Qt warns otherwise), so the application owns it.
        self.profile, self.interceptor = make_profile(QApplication.instance(), self._blocked)
        self.scheme = SchemeHandler(self._resolve_pixels, parent=self)
        self.scheme.on_pixel_error = self._pixel_error
        self.profile.installUrlSchemeHandler(SCHEME, self.scheme)
        self.page = Page(self.profile, self._console)
        self.view = QWebEngineView(self)
        self.view.setPage(self.page)
        self.view.setAcceptDrops(False)  # drops reach the window, which opens folders
        self.setAcceptDrops(True)
        self.channel = QWebChannel(self.page)
        self.bridge = Bridge(api, parent=self)
        self.channel.registerObject("fieldmark", self.bridge)
        self.page.setWebChannel(self.channel)
        self.setCentralWidget(self.view)
        api.pick_folder = self.pick_folder
        api.pick_path = self.pick_path  # type: ignore[attr-defined]
        api.pick_pack = self.pick_pack  # type: ignore[attr-defined]
        api.listeners.append(self._api_event)
        self.load_ok: bool | None = None  # None while loading; tests and the self-test wait on it
        self.page.loadFinished.connect(self._load_finished)
        self.view.load(START_URL)

    def _load_finished(self, ok: bool) -> None:
        self.load_ok = ok

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        self.scheme.shutdown()
        super().closeEvent(event)

    # -- page plumbing ------------------------------------------------------------------------
    def _console(self, level: int, message: str, line: int, source: str) -> None:
        self.console.append((level, message, line, source))
        log.log(_CONSOLE_LEVELS.get(level, logging.INFO), "js %s:%s %s", source, line, message)
        if self._on_console:
            self._on_console(level, message, line, source)

    def _blocked(self, url: str) -> None:
        self.blocked.append(url)
        log.warning("blocked request %s", url)
        if self._on_block:
            self._on_block(url)

    def _resolve_pixels(self, image_id: int) -> tuple[Path, Path]:
        project = self.api.require_project()
        return project.image_path(image_id), project.folder / ".fieldmark" / "thumbs"

    def _pixel_error(self, image_id: int, message: str) -> None:
        if self.api.project is None:
            return
        try:
            self.api.project.update_image_info(image_id, error=message)
        except FieldmarkError as exc:
            log.warning("could not record the error of image %s: %s", image_id, exc.message)
            return
        self.api.emit("images.changed", {"ids": [image_id]})

    def _api_event(self, name: str, payload: object) -> None:
        if name == "project.changed":
            summary = payload.get("project") if isinstance(payload, dict) else None
            self.setWindowTitle(f"{summary['name']} — Fieldmark" if summary else "Fieldmark")

    # -- desktop --------------------------------------------------------------------------------
    def pick_folder(self) -> str | None:
        start = str(self.api.project.folder) if self.api.project else str(Path.home())
        chosen = QFileDialog.getExistingDirectory(self, "Open a folder of images", start)
        return chosen or None

    def pick_path(self, kind: str, title: str, name_filter: str = "") -> str | None:
        start = str(self.api.project.folder.parent) if self.api.project else str(Path.home())
        if kind == "file":
            chosen, _ = QFileDialog.getOpenFileName(self, title, start, name_filter)
        else:
            chosen = QFileDialog.getExistingDirectory(self, title, start)
        return chosen or None

    def pick_pack(self) -> str | None:
        """A pack is a .zip or a folder: choosing the folder's manifest.json means the folder."""
        chosen, _ = QFileDialog.getOpenFileName(
            self, "Choose a model pack (.zip, or manifest.json inside a pack folder)", str(Path.home()),
            "Model packs (*.zip manifest.json)")
        if not chosen:
            return None
        path = Path(chosen)
        return str(path.parent if path.name == "manifest.json" else path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt name)
        urls = event.mimeData().urls()
        if urls and all(u.isLocalFile() for u in urls) and Path(urls[0].toLocalFile()).is_dir():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        urls = event.mimeData().urls()
        if not urls:
            return
        folder = Path(urls[0].toLocalFile())
        result = self.api.call("project.open", {"path": str(folder)})
        if "error" in result:
            self.bridge.publish("app.error", result["error"])
        event.acceptProposedAction()
