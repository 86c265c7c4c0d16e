"""Imaging core: decode images as displayed, stretch them for the screen, make thumbnails.

Pure Python (Pillow, numpy, tifffile); no Qt. Coordinates everywhere are pixels of the image as
displayed (EXIF orientation applied). See :mod:`backend.imaging.info` for the conventions.
"""

from backend.imaging.display import encode_jpeg, encode_png, to_display
from backend.imaging.info import MAX_PIXELS, SCREEN_MAX_PIXELS, SCREEN_MAX_SIDE, SUPPORTED_EXTENSIONS, ImageInfo
from backend.imaging.load import load_display, load_display_scaled, load_rgb, load_screen, probe, read_array
from backend.imaging.thumbs import thumbnail, thumbnail_path

__all__ = [
    "MAX_PIXELS",
    "SCREEN_MAX_PIXELS",
    "SCREEN_MAX_SIDE",
    "SUPPORTED_EXTENSIONS",
    "ImageInfo",
    "encode_jpeg",
    "encode_png",
    "load_display",
    "load_display_scaled",
    "load_rgb",
    "load_screen",
    "probe",
    "read_array",
    "thumbnail",
    "thumbnail_path",
    "to_display",
]
