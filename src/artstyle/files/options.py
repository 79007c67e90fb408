"""The options of image files, and their checks, as plain values: the pixel limit on inputs,
the output formats, bits per channel and JPEG quality.

Apart from the modules that read and write (which import Pillow and numpy), so that the
command line builds its flags and refuses a bad value without importing them; those
modules take these from here (:mod:`~artstyle.files.limits`, :mod:`~artstyle.files.write`).
"""

from __future__ import annotations

import numbers

from artstyle.errors import ConfigError

#: The default limit on an input image's pixel count (width x height), checked
#: against the file's header before anything is decoded: 200 megapixels, more
#: than any camera photo, while a decompression bomb claims billions.
DEFAULT_MAX_PIXELS = 200_000_000

#: Lower-case output file extension -> Pillow format name.
OUTPUT_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

#: Bits per channel that can be written, and the formats that hold 16.
BIT_DEPTHS = (8, 16)
SIXTEEN_BIT_FORMATS = frozenset({"PNG", "TIFF"})


def check_max_pixels(value: object, what: str = "--max-pixels") -> int:
    """``value`` as a pixel limit (a whole number of at least 1, numpy's too), or ConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{what}: expected a whole number of pixels, got {value!r}")
    if value < 1:
        raise ConfigError(f"{what}: expected a whole number of pixels of at least 1, got {value}")
    return int(value)


def check_bit_depth(bit_depth: object, image_format: str | None = None) -> int:
    """``bit_depth`` if it is 8 or 16 (16 only for PNG and TIFF), else ConfigError."""
    if isinstance(bit_depth, bool) or not isinstance(bit_depth, int) or bit_depth not in BIT_DEPTHS:
        raise ConfigError(f"--bit-depth: expected 8 or 16, got {bit_depth!r}")
    if bit_depth == 16 and image_format is not None and image_format not in SIXTEEN_BIT_FORMATS:
        raise ConfigError(f"--bit-depth 16: {image_format} holds only 8 bits per channel; write a .png or .tif file")
    return bit_depth


def check_jpeg_quality(quality: object) -> int:
    """``quality`` if it is a whole number from 1 to 100, else ConfigError."""
    if isinstance(quality, bool) or not isinstance(quality, int):
        raise ConfigError(f"--jpeg-quality: expected a whole number from 1 to 100, got {quality!r}")
    if not 1 <= quality <= 100:
        raise ConfigError(f"--jpeg-quality: expected a whole number from 1 to 100, got {quality}")
    return quality
