"""Open an image file by content, probe it cheaply, decode it as displayed.

Every failure a user can meet (missing, empty, truncated, not an image, unsupported, too large,
unreadable) leaves here as :class:`~backend.errors.ImageReadError` whose message names the file
and whose ``detail["reason"]`` is one of :data:`backend.imaging.failures.REASONS`. A wrong
argument (page out of range, bad channel index) is :class:`~backend.errors.InvalidArgument`.

Each call opens its own file handle, so calls may run concurrently from worker threads.
"""

from __future__ import annotations

import contextlib
import os
import stat
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
import tifffile
from PIL import Image

from backend.errors import FieldmarkError, ImageReadError, InvalidArgument
from backend.imaging import display, sniff
from backend.imaging.failures import from_decode_error, from_os_error, unreadable
from backend.imaging.info import SCREEN_MAX_PIXELS, SCREEN_MAX_SIDE, SUPPORTED_EXTENSIONS, ImageInfo
from backend.imaging.pil_reader import PilReader
from backend.imaging.tiff_reader import TiffReader

# What decoders raise on malformed data. Anything else escaping a decoder is treated as a bug.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    ZeroDivisionError,
    struct.error,
    Image.DecompressionBombError,
    tifffile.TiffFileError,
)


# Files whose pixels failed to decode although their header was fine (damaged data in the middle),
# keyed by (absolute path, mtime, size, page). Only decoding finds these, so without this memory
# the next probe would call the file sound again, and the image list would flip between
# "unreadable" and "fine" each time it is looked at. A changed file has a new key.
# Only the message and detail are kept: the exception's traceback would hold decoder buffers.
_FAILED: OrderedDict[tuple[str, int, int, int], tuple[str, object]] = OrderedDict()
_FAILED_LOCK = threading.Lock()
_FAILED_MAX = 4096
_REMEMBERED = ("corrupt", "truncated", "unsupported format", "not an image", "too large (decompression bomb)")


def _file_key(path: Path, page: int) -> tuple[str, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (os.path.abspath(path), st.st_mtime_ns, st.st_size, page)


def _recall(key: tuple[str, int, int, int] | None) -> None:
    if key is None:
        return
    with _FAILED_LOCK:
        known = _FAILED.get(key)
    if known is not None:
        raise ImageReadError(known[0], detail=known[1])


def _remember(key: tuple[str, int, int, int] | None, exc: ImageReadError) -> None:
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    cause = exc.__cause__
    # A disk hiccup or a momentary lack of memory: try again next time.
    transient = isinstance(cause, MemoryError) or (isinstance(cause, OSError) and cause.errno is not None)
    if key is None or transient or detail.get("reason") not in _REMEMBERED:
        return
    with _FAILED_LOCK:
        _FAILED[key] = (exc.message, exc.detail)
        while len(_FAILED) > _FAILED_MAX:
            _FAILED.popitem(last=False)


class _Reader(Protocol):
    def info(self) -> ImageInfo: ...
    def check_complete(self) -> None: ...
    def read(self, page: int, max_side: int | None, max_pixels: int | None = None) -> tuple[np.ndarray, float]: ...


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[_Reader]:
    """A reader for ``path``, chosen from the file's content; maps every failure to a reason."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise from_os_error(path, exc) from exc
    if stat.S_ISDIR(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise unreadable(path, "not a file")
    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise unreadable(path, "unsupported format", extra=f'files ending in "{path.suffix}" are not images we open')
    if st.st_size == 0:
        raise unreadable(path, "zero bytes")
    try:
        fh = open(path, "rb")  # closed by the ``with fh`` below, after the reader is done
    except OSError as exc:
        raise from_os_error(path, exc) from exc
    try:
        with fh:
            verdict, container = sniff.sniff(fh.read(32))
            if verdict == "unsupported":
                raise unreadable(path, "unsupported format", extra=f"it is a {container} file")
            if verdict != "ok":
                raise unreadable(path, "not an image")
            fh.seek(0)
            reader: _Reader = _make_reader(fh, path, st.st_size, container)
            try:
                yield reader
            finally:
                if isinstance(reader, TiffReader):
                    reader.close()
    except FieldmarkError:
        raise
    except MemoryError as exc:
        raise unreadable(
            path, "too large (decompression bomb)", extra="not enough memory to decode it", cause=exc
        ) from exc
    except Image.DecompressionBombError as exc:
        raise unreadable(path, "too large (decompression bomb)", cause=exc) from exc
    except _DECODE_ERRORS as exc:
        raise from_decode_error(path, exc) from exc


def _make_reader(fh: BinaryIO, path: Path, size: int, container: str) -> _Reader:
    if container != "TIFF":
        return PilReader(fh, path, size, container)
    try:
        return TiffReader(fh, path, size)
    except _DECODE_ERRORS as exc:
        # Pillow decodes some TIFFs tifffile cannot without imagecodecs (LZW, JPEG-in-TIFF);
        # when Pillow fails too, report tifffile's reason, which is usually the clearer one.
        fh.seek(0)
        try:
            reader = PilReader(fh, path, size, container)
            reader.info()
        except _DECODE_ERRORS:
            if sniff.is_truncated(fh, container, size):
                raise unreadable(path, "truncated") from exc
            raise exc from None
        reader.codec_error = exc
        return reader


def probe(path: Path) -> ImageInfo:
    """Header facts about ``path`` without decoding its pixels (see :class:`ImageInfo`).

    Reads the header and a few bytes at the end of the file (to catch a truncated copy); a file
    whose page 0 already failed to decode in this process (and has not changed since) is reported
    with that failure. Raises :class:`~backend.errors.ImageReadError`.
    """
    _recall(_file_key(Path(path), 0))
    with _opened(path) as reader:
        info = reader.info()
        reader.check_complete()
        return info


def read_array(path: Path, page: int = 0) -> np.ndarray:
    """Pixels of ``page`` as displayed (EXIF orientation applied): H x W or H x W x C, in the
    file's dtype (16-bit stays uint16). Palette and CMYK images come as RGB(A)."""
    return _read(path, page, None)[0]


def _read(path: Path, page: int, max_side: int | None,
          max_pixels: int | None = None) -> tuple[np.ndarray, float]:
    if isinstance(page, bool) or not isinstance(page, int) or page < 0:
        raise InvalidArgument(f"page: expected a page number (0 or more), got {page!r}")
    key = _file_key(Path(path), page)
    _recall(key)
    decoding = False
    try:
        with _opened(path) as reader:
            pages = reader.info().pages
            if page >= pages:
                raise InvalidArgument(f'page: "{Path(path).name}" has {pages} page(s) (0-{pages - 1}), got {page}')
            # Before decoding, so a truncated file is reported as such rather than as "damaged".
            reader.check_complete()
            decoding = True
            return reader.read(page, max_side, max_pixels)
    except ImageReadError as exc:
        if decoding:
            _remember(key, exc)
        raise


def load_display_scaled(
    path: Path,
    page: int = 0,
    channels: Sequence[int] | None = None,
    lo: float = 0.5,
    hi: float = 99.5,
    max_side: int | None = None,
    max_pixels: int | None = None,
) -> tuple[np.ndarray, float]:
    """Display image (uint8 H x W x 3) and its scale relative to the full displayed image.

    With ``max_side`` the long side is reduced to at most ``max_side``, with ``max_pixels`` the
    area to at most ``max_pixels``, while decoding (JPEG draft mode, PNG / BMP row bands, TIFF
    strip-by-strip averaging or pyramid levels), and a point ``p`` in the returned image is at
    ``p / scale`` in image coordinates. The stretch percentiles are then computed on the reduced
    image. ``scale`` is 1.0 when nothing was reduced.
    """
    _check_max_side(max_side)
    _check_max_side(max_pixels, "max_pixels")
    display._check_percentiles(lo, hi)  # fail on bad arguments before the (slow) decode
    arr, scale = _read(path, page, max_side, max_pixels)
    return display.to_display(arr, channels, lo, hi), scale


def load_screen(
    path: Path,
    page: int = 0,
    channels: Sequence[int] | None = None,
    lo: float = 0.5,
    hi: float = 99.5,
) -> tuple[np.ndarray, float]:
    """What the page shows: :func:`load_display_scaled` within SCREEN_MAX_PIXELS and
    SCREEN_MAX_SIDE (see :mod:`backend.imaging.info`), so that no image, however large, needs
    its full size in memory to be looked at."""
    return load_display_scaled(path, page, channels, lo, hi, max_side=SCREEN_MAX_SIDE,
                               max_pixels=SCREEN_MAX_PIXELS)


def load_display(
    path: Path,
    page: int = 0,
    channels: Sequence[int] | None = None,
    lo: float = 0.5,
    hi: float = 99.5,
    max_side: int | None = None,
) -> np.ndarray:
    """:func:`read_array` then :func:`~backend.imaging.display.to_display`: uint8 H x W x 3.

    With ``max_side`` the result is reduced; use :func:`load_display_scaled` to get the scale.
    """
    return load_display_scaled(path, page, channels, lo, hi, max_side)[0]


def load_rgb(path: Path, page: int = 0) -> np.ndarray:
    """uint8 H x W x 3 for models: the default display rendering of ``page`` at full size."""
    return load_display(path, page)


def _check_max_side(max_side: int | None, name: str = "max_side") -> None:
    if max_side is None:
        return
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 1:
        raise InvalidArgument(f"{name}: expected a positive number of pixels or null, got {max_side!r}")
