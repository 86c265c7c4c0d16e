"""What the imaging core promises about a file, before any pixel is decoded.

Conventions used by every module in this package:

* Coordinates are pixels of the image *as displayed*: EXIF orientation applied, origin top-left,
  x right, y down. ``ImageInfo.width``/``height`` are already swapped for orientations 5-8.
* Arrays are ``H x W`` (one channel) or ``H x W x C`` (channels last), in the file's own dtype.
* A "page" is one plane the user can pick: a TIFF page, a z-slice, a time point. Channels are
  never pages; they are picked with the channel picker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})

# Decompression-bomb policy: one displayed plane may have at most this many pixels. A
# 30,000 x 30,000 slide scan (0.9 GP) is accepted; a 2-kB PNG that claims 100,000 x 100,000 is not.
# Probing never allocates pixels, so the limit only guards the decode that would follow.
MAX_PIXELS = 1_000_000_000

# What the page is sent to show (``fieldmark://app/pixels/image/...``): an image with more pixels
# than SCREEN_MAX_PIXELS, or a longer side than SCREEN_MAX_SIDE, is reduced while decoding and
# stretched back to its full size by the page (shapes stay in full-resolution coordinates).
# 40 MP keeps every common camera photo (up to ~45 MP: 6000 x 4000 is 24 MP) at or near full
# resolution, and bounds the bitmap the browser holds to ~160 MB (RGBA) and the decoder's working
# memory to a few hundred MB, where a 30,000 x 30,000 scan decoded whole needs 2.7-3.6 GB.
# 16,384 is the largest image side GPUs commonly accept as one texture (panoramas).
SCREEN_MAX_PIXELS = 40_000_000
SCREEN_MAX_SIDE = 16_384

# A reduced read of a format that can only be decoded whole (WebP, GIF, interlaced PNG, RLE BMP)
# is refused above this much decoder memory, instead of risking the out-of-memory killer.
WHOLE_DECODE_MAX_BYTES = 1 << 30


@dataclass(frozen=True)
class ImageInfo:
    """Header facts about one image file.

    ``width``/``height`` are for page 0 as displayed (after EXIF orientation). ``channels`` and
    ``dtype`` describe what :func:`backend.imaging.read_array` returns for that page (after
    palette / CMYK conversion), e.g. an 8-bit palette PNG is ``channels=3, dtype="uint8"`` and a
    16-bit grayscale PNG is ``channels=1, dtype="uint16"``. ``orientation`` is the EXIF value 1-8
    (1 when absent). ``format`` is the container: ``JPEG``, ``PNG``, ``WEBP``, ``BMP``, ``GIF``,
    ``TIFF``.
    """

    width: int
    height: int
    pages: int
    channels: int
    dtype: str
    orientation: int
    format: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def oriented_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """Size after EXIF orientation: orientations 5-8 swap the axes."""
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)
