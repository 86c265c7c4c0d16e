"""``fieldmark://app/`` — serves the page's files and image pixels.

Static files come only from ``web/`` (resolved path must stay inside it, known extensions only).
Pixels are decoded by the imaging core in a thread pool, never on the GUI thread; the reply is
handed back to the GUI thread through a queued signal, because a request job belongs to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from PySide6.QtCore import QBuffer, QByteArray, QFile, QIODevice, QObject, Signal, Slot
from PySide6.QtWebEngineCore import QWebEngineUrlRequestJob, QWebEngineUrlSchemeHandler

from backend import paths
from backend.errors import FieldmarkError, ImageReadError

log = logging.getLogger(__name__)

MIME = {".html": b"text/html", ".js": b"text/javascript", ".mjs": b"text/javascript",
        ".css": b"text/css", ".svg": b"image/svg+xml", ".png": b"image/png", ".json": b"application/json",
        ".woff2": b"font/woff2", ".ico": b"image/x-icon"}

PLACEHOLDER_THUMB = (b'<svg xmlns="http://www.w3.org/2000/svg" width="96" height="72" viewBox="0 0 96 72">'
                     b'<rect width="96" height="72" fill="#3a3f4b"/><path d="M38 26l20 20M58 26L38 46" '
                     b'stroke="#e06c75" stroke-width="4" stroke-linecap="round"/></svg>')

# (image path, thumbnail cache dir) for an id, looked up on the GUI thread.
Resolver = Callable[[int], tuple[Path, Path]]


def _small_int(text: str) -> bool:
    """ASCII digits that fit a SQLite id (``str.isdigit`` also accepts e.g. Arabic-Indic digits,
    and a longer number would overflow in the store instead of being refused here)."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def parse_pixels(path: str, query: str) -> dict[str, Any]:
    """``/pixels/image/<id>`` or ``/pixels/thumb/<id>`` plus page/channels/lo/hi -> request dict."""
    parts = path.strip("/").split("/")
    if len(parts) != 3 or parts[0] != "pixels" or parts[1] not in ("image", "thumb") \
            or not _small_int(parts[2]):
        raise ValueError(f"bad pixels path {path!r}")
    q = {k: v[-1] for k, v in parse_qs(query).items()}
    if not _small_int(q.get("page", "0").removeprefix("-")):  # -1: refused by name further on
        raise ValueError("bad page number")
    channels = None
    if q.get("channels"):
        if not all(_small_int(c) for c in q["channels"].split(",")):
            raise ValueError("bad channel list")
        channels = [int(c) for c in q["channels"].split(",")][:3]
    lo, hi = float(q.get("lo", 0.5)), float(q.get("hi", 99.5))
    if not (0 <= lo < hi <= 100):
        raise ValueError("lo/hi percentiles out of range")
    return {"kind": parts[1], "id": int(parts[2]), "page": int(q.get("page", 0)),
            "channels": channels, "lo": lo, "hi": hi}


def render_pixels(req: dict[str, Any], image_path: Path, thumb_dir: Path) -> tuple[bytes, bytes]:
    """Encoded bytes and MIME type for a parsed pixels request.

    The display image is at most SCREEN_MAX_PIXELS / SCREEN_MAX_SIDE (reduced while decoding, see
    :func:`backend.imaging.load_screen`); the page draws it stretched to the image's full
    width x height from ``image.get``, so shapes stay in full-resolution coordinates.
    """
    from backend import imaging

    if req["kind"] == "thumb":
        return imaging.thumbnail(image_path, thumb_dir), b"image/jpeg"
    arr, _scale = imaging.load_screen(image_path, page=req["page"], channels=req["channels"],
                                      lo=req["lo"], hi=req["hi"])
    # PNG keeps labels pixel-exact at high zoom; JPEG only where PNG would be slow to encode.
    if arr.shape[0] * arr.shape[1] > 12_000_000:
        return imaging.encode_jpeg(arr, quality=92), b"image/jpeg"
    return imaging.encode_png(arr), b"image/png"


class PixelAnswer(NamedTuple):
    """What a pixels request gets: ``data`` (None -> the request fails) and, when the file itself
    is at fault, ``error`` = (image id, message for a person) to record on the image."""

    data: bytes | None
    mime: bytes | None
    error: tuple[int, str] | None


def serve_pixels(req: dict[str, Any], image_path: Path, thumb_dir: Path) -> PixelAnswer:
    """:func:`render_pixels` that never raises: runs on a worker thread, which must answer."""
    try:
        return PixelAnswer(*render_pixels(req, image_path, thumb_dir), None)
    except ImageReadError as exc:
        # The file itself is unreadable: remember why. A thumbnail still answers (with a
        # placeholder) so the list shows the reason instead of a broken-image error.
        if req["kind"] == "thumb":
            return PixelAnswer(PLACEHOLDER_THUMB, b"image/svg+xml", (req["id"], exc.message))
        return PixelAnswer(None, None, (req["id"], exc.message))
    except FieldmarkError as exc:  # a bad request (page out of range...), not a bad file
        log.info("pixels request for image %s refused: %s", req["id"], exc.message)
        return PixelAnswer(None, None, None)
    except MemoryError:
        log.warning("out of memory decoding %s", image_path)
        return PixelAnswer(None, None, (req["id"], f'Cannot show "{image_path.name}": there was not enough '
                                        "memory to decode it. Close other programs and try again."))
    except Exception as exc:  # noqa: BLE001 - a worker must always answer its job
        log.exception("decoding %s failed", image_path)
        return PixelAnswer(None, None, (req["id"], f'Cannot show "{image_path.name}": Fieldmark failed '
                                        f"on it ({type(exc).__name__}: {exc}). Please report this "
                                        "with the file."))


class SchemeHandler(QWebEngineUrlSchemeHandler):
    _finished = Signal(int, object, object, object)  # token, bytes | None, mime, error message

    def __init__(self, resolve: Resolver, parent: QObject | None = None, workers: int = 2) -> None:
        super().__init__(parent)
        self.resolve = resolve
        self.web_root = paths.resource("web").resolve()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pixels")
        self.pending: dict[int, QWebEngineUrlRequestJob] = {}
        self.next_token = 0
        self.on_pixel_error: Callable[[int, str], None] | None = None
        self._finished.connect(self._deliver)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def requestStarted(self, job: QWebEngineUrlRequestJob) -> None:  # noqa: N802 (Qt name)
        url = job.requestUrl()
        if url.host() != "app" or job.requestMethod() != b"GET":
            job.fail(QWebEngineUrlRequestJob.Error.UrlInvalid)
            return
        path = url.path()
        if path.startswith("/pixels/"):
            self._start_pixels(job, path, url.query())
        elif path == "/qwebchannel.js":
            f = QFile(":/qtwebchannel/qwebchannel.js")
            if not f.open(QIODevice.OpenModeFlag.ReadOnly):
                job.fail(QWebEngineUrlRequestJob.Error.UrlNotFound)
                return
            self._reply(job, bytes(f.readAll().data()), b"text/javascript")
        else:
            self._serve_static(job, path)

    def _serve_static(self, job: QWebEngineUrlRequestJob, path: str) -> None:
        target = (self.web_root / path.lstrip("/")).resolve()
        if not paths.is_inside(target, self.web_root) or target.suffix not in MIME or not target.is_file():
            log.warning("404 %s", path[:200])
            job.fail(QWebEngineUrlRequestJob.Error.UrlNotFound)
            return
        self._reply(job, target.read_bytes(), MIME[target.suffix])

    def _start_pixels(self, job: QWebEngineUrlRequestJob, path: str, query: str) -> None:
        try:
            req = parse_pixels(path, query)
            image_path, thumb_dir = self.resolve(req["id"])
        except (ValueError, OverflowError, FieldmarkError) as exc:
            log.info("pixels request refused: %s", exc)
            job.fail(QWebEngineUrlRequestJob.Error.UrlInvalid)
            return
        token = self.next_token = self.next_token + 1
        self.pending[token] = job
        job.destroyed.connect(lambda *_: self.pending.pop(token, None))

        def work() -> None:
            self._finished.emit(token, *serve_pixels(req, image_path, thumb_dir))

        self.pool.submit(work)

    @Slot(int, object, object, object)
    def _deliver(self, token: int, data: bytes | None, mime: bytes | None, error: Any) -> None:
        job = self.pending.pop(token, None)
        if job is None:  # the page gave up on this request (navigated, image changed)
            return
        if error and self.on_pixel_error:
            self.on_pixel_error(*error)
        if data is None:
            job.fail(QWebEngineUrlRequestJob.Error.RequestFailed)
            return
        self._reply(job, data, mime or b"application/octet-stream")

    @staticmethod
    def _reply(job: QWebEngineUrlRequestJob, data: bytes, mime: bytes) -> None:
        buf = QBuffer(parent=job)  # lives as long as the job reads from it
        buf.setData(QByteArray(data))
        buf.open(QIODevice.OpenModeFlag.ReadOnly)
        job.reply(mime, buf)
