"""The limit on an input image's pixel count, checked on the file's header before decoding."""

from __future__ import annotations

import contextlib
import re
import threading
import warnings
from collections.abc import Iterator
from contextvars import ContextVar

from PIL import Image

from artstyle.files.options import DEFAULT_MAX_PIXELS, check_max_pixels
from artstyle.files.problems import read_error

__all__ = ["DEFAULT_MAX_PIXELS", "check_max_pixels", "max_pixels", "pixel_limit", "too_large_problem"]

_max_pixels: ContextVar[int] = ContextVar("artstyle_max_pixels", default=DEFAULT_MAX_PIXELS)

# Pillow keeps its own decompression-bomb limit in a module global; while artstyle
# opens and decodes a file it sets that global to artstyle's limit (under this lock,
# restoring it after), so that one limit, with one message, applies to every file.
_PILLOW_LIMIT_LOCK = threading.RLock()


def max_pixels() -> int:
    """The pixel limit in force for reading files (see :func:`pixel_limit`)."""
    return _max_pixels.get()


@contextlib.contextmanager
def pixel_limit(limit: int) -> Iterator[None]:
    """Within the ``with`` block, refuse image files of more than ``limit`` pixels.

    The limit applies to every file read in this thread or task (also by
    :func:`artstyle.stylize`), checked on the header before any decoding. The
    default is :data:`DEFAULT_MAX_PIXELS`.
    """
    token = _max_pixels.set(check_max_pixels(limit, "pixel limit"))
    try:
        yield
    finally:
        _max_pixels.reset(token)


@contextlib.contextmanager
def pillow_limit(limit: int) -> Iterator[None]:
    """Within the ``with`` block, Pillow's own decompression-bomb limit is ``limit``."""
    with _PILLOW_LIMIT_LOCK, warnings.catch_warnings():
        # Pillow warns between 1 and 2 times its limit; artstyle refuses there itself.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def too_large_problem(count: int, limit: int, size: tuple[int, int] | None = None) -> str:
    """The words for an input of ``count`` pixels over ``limit``."""
    return _too_large(count, limit, size)


def _too_large(count: int, limit: int, size: tuple[int, int] | None = None) -> str:
    dimensions = f"{size[0]}x{size[1]} px, " if size else ""
    return f"image too large ({dimensions}{count:,} pixels; the limit is {limit:,}, see --max-pixels)"


def check_pixels(path: str, size: tuple[int, int], limit: int) -> None:
    """ImageReadError unless an image of ``size`` has at least one and at most ``limit`` pixels."""
    width, height = size
    if width < 1 or height < 1:
        raise read_error(path, f"image has no pixels ({width}x{height})")
    if width * height > limit:
        raise read_error(path, _too_large(width * height, limit, size))


def bomb_problem(exc: Image.DecompressionBombError, limit: int) -> str:
    """What to say about a file Pillow refused as a decompression bomb."""
    match = re.search(r"\((\d+) pixels\)", str(exc))
    if match is None:
        return f"image too large (the limit is {limit:,} pixels, see --max-pixels)"
    return _too_large(int(match.group(1)), limit)
