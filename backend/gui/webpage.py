"""The web page's cage: an off-the-record profile, a request filter and a navigation lock.

The page holds a bridge that can write files, so it may load nothing but our own
``fieldmark://app/`` origin: every other request (http, https, file, data, ftp, ws...) is
blocked and recorded, navigation away is refused and new windows are never created.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QUrl
from PySide6.QtWebEngineCore import (
    QWebEnginePage,
    QWebEngineProfile,
    QWebEngineSettings,
    QWebEngineUrlRequestInfo,
    QWebEngineUrlRequestInterceptor,
    QWebEngineUrlScheme,
)

log = logging.getLogger(__name__)
SCHEME = b"fieldmark"
APP_ORIGIN = "fieldmark://app"
START_URL = QUrl(f"{APP_ORIGIN}/index.html")


def register_scheme() -> None:
    """Must run before the QApplication exists (Qt's rule for custom schemes)."""
    if QWebEngineUrlScheme.schemeByName(SCHEME).name() == SCHEME:
        return
    scheme = QWebEngineUrlScheme(SCHEME)
    scheme.setSyntax(QWebEngineUrlScheme.Syntax.Host)
    scheme.setFlags(QWebEngineUrlScheme.Flag.SecureScheme | QWebEngineUrlScheme.Flag.LocalScheme
                    | QWebEngineUrlScheme.Flag.LocalAccessAllowed
                    | QWebEngineUrlScheme.Flag.CorsEnabled)
    QWebEngineUrlScheme.registerScheme(scheme)


def is_app_url(url: QUrl) -> bool:
    return url.scheme() == SCHEME.decode() and url.host() == "app"


class Interceptor(QWebEngineUrlRequestInterceptor):
    """Blocks every request that is not for our own origin; ``on_block`` hears about each."""

    def __init__(self, on_block: Callable[[str], None]) -> None:
        super().__init__()
        self.on_block = on_block

    def interceptRequest(self, info: QWebEngineUrlRequestInfo) -> None:  # noqa: N802 (Qt name)
        url = info.requestUrl()
        if is_app_url(url) or url.scheme() == "qrc" and url.path().startswith("/qtwebchannel/"):
            return
        info.block(True)
        self.on_block(url.toString()[:300])


class Page(QWebEnginePage):
    """Refuses navigation outside the app page and every new window; forwards console lines."""

    def __init__(self, profile: QWebEngineProfile, on_console: Callable[[int, str, int, str], None]) -> None:
        super().__init__(profile)
        self.on_console = on_console

    def acceptNavigationRequest(self, url: QUrl, nav_type: QWebEnginePage.NavigationType,  # noqa: N802
                                is_main_frame: bool) -> bool:
        ok = is_app_url(url) and url.path() == START_URL.path()
        if not ok:
            log.warning("refused navigation to %s", url.toString()[:300])
        return ok

    def createWindow(self, _type: QWebEnginePage.WebWindowType) -> None:  # noqa: N802
        log.warning("refused a new window")
        return None

    def javaScriptConsoleMessage(self, level: QWebEnginePage.JavaScriptConsoleMessageLevel,  # noqa: N802
                                 message: str, line: int, source: str) -> None:
        self.on_console(int(level.value), message, line, source)


def make_profile(parent: object, on_block: Callable[[str], None]) -> tuple[QWebEngineProfile, Interceptor]:
    profile = QWebEngineProfile(parent)  # no storage name: off the record, nothing on disk
    interceptor = Interceptor(on_block)
    profile.setUrlRequestInterceptor(interceptor)
    s = profile.settings()
    for attr, on in ((QWebEngineSettings.WebAttribute.LocalContentCanAccessRemoteUrls, False),
                     (QWebEngineSettings.WebAttribute.LocalContentCanAccessFileUrls, False),
                     (QWebEngineSettings.WebAttribute.JavascriptCanOpenWindows, False),
                     (QWebEngineSettings.WebAttribute.PluginsEnabled, False),
                     (QWebEngineSettings.WebAttribute.PdfViewerEnabled, False),
                     (QWebEngineSettings.WebAttribute.NavigateOnDropEnabled, False)):
        s.setAttribute(attr, on)
    return profile, interceptor
