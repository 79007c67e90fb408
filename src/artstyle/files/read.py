"""Reading image files: every file becomes a fully decoded, upright sRGB RGB image.

The header is checked against the pixel limit (:mod:`artstyle.files.limits`) before
anything is decoded; the EXIF orientation is applied; an embedded ICC colour profile
is converted to sRGB (:mod:`artstyle.files.color_profile`); every Pillow mode becomes
8-bit RGB with transparency composited onto white (:mod:`artstyle.files.modes`);
animated and multi-page files give their first frame.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Iterator

import numpy as np
import tifffile
from PIL import Image, ImageOps, UnidentifiedImageError

from artstyle.errors import ImageReadError
from artstyle.files import limits
from artstyle.files.color_profile import to_srgb
from artstyle.files.limits import bomb_problem, check_max_pixels, check_pixels, pillow_limit
from artstyle.files.modes import UnsupportedModeError, to_rgb
from artstyle.files.problems import DECODE_ERRORS, StrPath, os_problem, path_text, read_error, warn

__all__ = ["read_image"]

_ORIENTATION_TAG = 0x0112
#: TIFF's PhotometricInterpretation tag, and its value for YCbCr pixels.
_PHOTOMETRIC, _YCBCR = 262, 6
#: How each orientation other than 1 turns a TIFF's stored pixels upright, as Pillow's TIFF
#: reader does while it decodes them (and EXIF's orientation means for other formats).
_TIFF_TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def upright(image: Image.Image, source: str) -> Image.Image:
    """``image`` turned as its EXIF orientation asks: a new image, or ``image`` itself when none is needed.

    Unreadable EXIF data is ignored with an :class:`~artstyle.errors.ArtstyleWarning`.
    """
    try:
        if image.getexif().get(_ORIENTATION_TAG, 1) == 1:
            return image
        return ImageOps.exif_transpose(image)
    except DECODE_ERRORS:
        warn(f"'{source}': ignored its unreadable EXIF data (the orientation is not known)")
        return image


def decoded(image: Image.Image, source: str) -> Image.Image:
    """A new, upright sRGB RGB image from a loaded ``image``; it carries no ``info``.

    ``image`` itself is not modified. The empty ``info`` matters: Pillow copies
    it (ICC profile, EXIF) into converted images, and a second pass must neither
    convert the colours nor rotate the picture again.
    """
    turned = upright(image, source)
    srgb = to_srgb(turned, source)
    rgb = to_rgb(srgb, copy=srgb is image)
    rgb.info = {}
    return rgb


def check_regular_file(path: str) -> None:
    """Raise ImageReadError unless ``path`` is an existing, non-empty regular file."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise read_error(path, os_problem(exc)) from exc
    except ValueError as exc:  # e.g. an embedded NUL character
        raise read_error(path, f"invalid path ({exc})") from exc
    if stat.S_ISDIR(info.st_mode):
        raise read_error(path, "is a directory, not an image")
    if not stat.S_ISREG(info.st_mode):
        # FIFOs, devices, sockets: opening them could block forever.
        raise read_error(path, "not a regular file")
    if info.st_size == 0:
        raise read_error(path, "file is empty")


_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})


def _unknown_format_problem(handle: io.BufferedReader) -> str:
    """What to say about a file Pillow cannot identify: names a few formats people try."""
    try:
        handle.seek(0)
        head = handle.read(64)
    except OSError:
        head = b""
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        found = "HEIC/HEIF"
    elif head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL ")):
        found = "JPEG XL"
    elif head.startswith(b"%PDF"):
        found = "PDF"
    elif b"<svg" in head:
        found = "SVG"
    else:
        return "not an image file (unknown format)"
    return f"a {found} file, which artstyle cannot read; convert it to PNG or JPEG first"


@contextlib.contextmanager
def open_image(path: str, limit: int) -> Iterator[Image.Image]:
    """Open ``path`` with Pillow, turning every failure into ImageReadError.

    The image's size, read from its header, is checked against ``limit`` before
    the body runs. Decoding errors raised inside the ``with`` body are mapped too,
    so the body should only decode and convert the image.
    """
    check_regular_file(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; open errors mapped apart
    except OSError as exc:
        raise read_error(path, os_problem(exc)) from exc
    with handle, pillow_limit(limit):
        try:
            with Image.open(handle) as image:
                check_pixels(path, image.size, limit)
                yield image
        except ImageReadError:
            raise
        except UnidentifiedImageError as exc:
            raise read_error(path, _unknown_format_problem(handle)) from exc
        except Image.DecompressionBombError as exc:
            raise read_error(path, bomb_problem(exc, limit)) from exc
        except UnsupportedModeError as exc:
            raise read_error(path, f"unsupported colour mode '{exc.mode}'") from exc
        except MemoryError as exc:
            raise read_error(path, "not enough memory to decode it") from exc
        except DECODE_ERRORS as exc:
            raise read_error(path, "file is truncated or corrupt") from exc


def read_image(path: StrPath, *, max_pixels: int | None = None) -> Image.Image:
    """Read an image file and return it fully decoded as an upright sRGB RGB image.

    The EXIF orientation is applied, an embedded ICC profile is converted to sRGB,
    transparency is flattened onto white, and only the first frame of an animated
    or multi-page file is used. The returned image is independent of the file
    (which is closed on return) and has an empty ``info``.

    ``max_pixels`` (default: the limit of :func:`~artstyle.files.limits.pixel_limit`,
    normally :data:`~artstyle.files.limits.DEFAULT_MAX_PIXELS`) caps width x height;
    it is checked on the file's header, before decoding, so a decompression bomb
    costs nothing.

    Truncated files are only detected while ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES``
    keeps its default, False; artstyle never changes it.

    Raises ImageReadError when the file is missing, a directory, unreadable, not
    an image, truncated or corrupt, or has more than ``max_pixels`` pixels; issues
    :class:`~artstyle.errors.ArtstyleWarning` for a colour profile or EXIF block it
    had to ignore.
    """
    name = path_text(path, "image path")
    limit = limits.max_pixels() if max_pixels is None else check_max_pixels(max_pixels, "max_pixels")
    with open_image(name, limit) as image:
        return decoded(loaded(image, name), name)


def loaded(image: Image.Image, path: str) -> Image.Image:
    """``image`` with every pixel decoded now (so that truncation is detected here). A
    YCbCr TIFF that Pillow cannot decode is decoded by tifffile instead (Pillow 12 writes
    uncompressed YCbCr TIFFs with no chroma subsampling that its own reader takes for
    truncated), and turned upright by its orientation tag as Pillow turns the TIFFs it
    decodes; its colour profile is kept. The error of Pillow stands where tifffile cannot
    read the file either."""
    try:
        image.load()
        return image
    except DECODE_ERRORS as error:
        if image.format != "TIFF" or getattr(image, "tag_v2", {}).get(_PHOTOMETRIC) != _YCBCR:
            raise
        pillow_error = error
    try:
        pixels = tifffile.imread(path, key=0)
    except Exception:  # tifffile's own errors: the file is damaged, as Pillow said
        raise pillow_error from None
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise pillow_error
    fallback = Image.fromarray(pixels, "YCbCr").convert("RGB")  # as Pillow reads the YCbCr TIFFs it can
    turn = _TIFF_TURNS.get(getattr(image, "tag_v2", {}).get(_ORIENTATION_TAG, 1))
    if turn is not None:  # Pillow's TIFF reader turns the pixels upright itself: so as it would
        fallback = fallback.transpose(turn)
    if fallback.size != image.size:
        raise pillow_error
    fallback.info = {key: value for key, value in image.info.items() if key == "icc_profile"}
    return fallback
