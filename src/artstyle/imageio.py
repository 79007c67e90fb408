"""Reading and writing image files for artstyle.

This is the only module that touches image files. It turns whatever the caller
hands in (a path, a PIL image or a numpy array) into a plain, fully decoded sRGB
``PIL.Image.Image``, converts between images and ``(1, 3, H, W)`` float tensors,
and writes results atomically: an output file is either the complete new image
or the untouched old one, never a half-written mix.

Reading a file: the header is checked against a pixel limit before anything is
decoded (:data:`DEFAULT_MAX_PIXELS`, see :func:`pixel_limit`); the EXIF
orientation is applied; an embedded ICC colour profile is converted to sRGB;
every Pillow mode (bilevel, grey, palette, 16- and 32-bit integer and float
grey, CMYK, Lab, 16-bit RGB) becomes 8-bit RGB, with transparency composited
onto white; animated and multi-page files give their first frame.

Writing: PNG (8 or 16 bits per channel), TIFF (8 or 16), JPEG and WebP (8,
with a quality), always with an embedded sRGB profile; 16-bit files are
quantised from the float image, not from an 8-bit one.

Every failure caused by a bad file or a bad value is raised as one of the typed
errors of :mod:`artstyle.errors` with a one-line message naming the file and the
problem; things handled on the user's behalf (an unusable colour profile, say)
are reported with :class:`~artstyle.errors.ArtstyleWarning`. The low-level
atomic helpers (:func:`atomic_path`, :func:`atomic_write_bytes`) are the
exception: they raise ``OSError`` so that each caller can wrap it in the error
type that fits its own domain.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import operator
import os
import re
import stat
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeAlias, Union, cast

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image, ImageCms, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from artstyle.errors import ArtstyleWarning, ConfigError, ImageReadError, ImageWriteError
from artstyle.files.atomic import atomic_path, atomic_write_bytes, write_target

__all__ = [
    "BIT_DEPTHS",
    "DEFAULT_MAX_PIXELS",
    "METADATA_KEY",
    "OUTPUT_FORMATS",
    "as_image",
    "atomic_path",
    "atomic_write_bytes",
    "check_bit_depth",
    "check_jpeg_quality",
    "check_max_pixels",
    "check_output_path",
    "image_to_tensor",
    "max_pixels",
    "pixel_limit",
    "read_image",
    "read_metadata",
    "resize_long_side",
    "save_image",
    "sidecar_path",
    "srgb_profile",
    "tensor_to_image",
]

StrPath: TypeAlias = str | os.PathLike[str]

#: What :func:`save_image` accepts: an 8-bit RGB image, a (1, 3, H, W) or (3, H, W)
#: float tensor in [0, 1], or an H x W x 3 array (uint8, uint16 or float in [0, 1]).
SavableImage: TypeAlias = Union[Image.Image, torch.Tensor, "npt.NDArray[Any]"]

#: Key of the PNG text chunk (and nothing else) that carries artstyle's metadata.
METADATA_KEY = "artstyle"

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

#: The default limit on an input image's pixel count (width x height), checked
#: against the file's header before anything is decoded: 200 megapixels, more
#: than any camera photo, while a decompression bomb claims billions.
DEFAULT_MAX_PIXELS = 200_000_000

_WHITE = (255, 255, 255, 255)
_INTEGER_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})

# What Pillow's decoders raise on damaged data. They are not consistent, so the
# list is wide; anything here means "this file is broken", not "artstyle is broken".
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    struct.error,
    zlib.error,
)


class _UnsupportedModeError(ValueError):
    """A PIL image mode that cannot be turned into RGB."""

    def __init__(self, mode: str) -> None:
        super().__init__(f"unsupported colour mode {mode!r}")
        self.mode = mode


# --------------------------------------------------------------------------- #
# Colour conversion
# --------------------------------------------------------------------------- #


def _warn(message: str) -> None:
    warnings.warn(message, ArtstyleWarning, stacklevel=4)


def _grey_to_rgb(grey: npt.NDArray[np.uint8]) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(grey)).convert("RGB")


def _grey8(image: Image.Image) -> Image.Image:
    """An 8-bit grey ("L") version of a 16/32-bit integer or float grey image.

    Integer greys are scaled from 0-65535 to 0-255 (32-bit values are clipped to that
    range); float greys are taken as 0-1 when their maximum is at most 1, otherwise
    as 0-255 (NaN becomes 0).
    """
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        finite = values[np.isfinite(values)]
        scale = 255.0 if finite.size == 0 or float(finite.max()) <= 1.0 else 1.0
        scaled = np.nan_to_num(values * np.float32(scale), nan=0.0, posinf=255.0, neginf=0.0)
        return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
    values = np.asarray(image).astype(np.float32) / np.float32(257.0)
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))


def _composite_on_white(image: Image.Image) -> Image.Image:
    """Flatten an image with transparency onto an opaque white background."""
    if image.mode == "La":
        # Premultiplied grey + alpha: Pillow cannot convert it, so blend by hand.
        arr = np.asarray(image, dtype=np.int32)
        grey = np.clip(arr[..., 0] + 255 - arr[..., 1], 0, 255).astype(np.uint8)
        return _grey_to_rgb(grey)
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", image.size, _WHITE)
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_rgb(image: Image.Image, *, copy: bool = True) -> Image.Image:
    """Return an RGB version of ``image`` with alpha flattened onto white.

    The result is a new image, except that an RGB ``image`` is returned as it is
    when ``copy`` is False. 16/32-bit and float greys are scaled as by ``_grey8``.
    Raises ``_UnsupportedModeError`` for modes Pillow cannot convert.
    """
    mode = image.mode
    if mode in _INTEGER_MODES or mode == "F":
        return _grey8(image).convert("RGB")
    try:
        if image.has_transparency_data:
            return _composite_on_white(image)
        if mode == "RGB":
            return image.copy() if copy else image
        return image.convert("RGB")
    except ValueError as exc:
        raise _UnsupportedModeError(mode) from exc


def srgb_profile() -> bytes:
    """The sRGB ICC profile artstyle embeds in every image it writes.

    Made by LittleCMS (through ``PIL.ImageCms``) with its creation date fixed, so
    that the same picture always gives the same file bytes.
    """
    return _srgb_profile_bytes()


@functools.lru_cache(maxsize=1)
def _srgb_profile_bytes() -> bytes:
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    data[24:36] = struct.pack(">6H", 2000, 1, 1, 0, 0, 0)  # the header's creation date
    return bytes(data)


@functools.lru_cache(maxsize=1)
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(io.BytesIO(_srgb_profile_bytes()))


# Which image modes an ICC profile of each colour space can describe. (Grey pixels
# with an RGB profile, as some programs write them, are taken as R = G = B.)
_GREY_MODES = frozenset({"1", "L", "LA", "F", "I", *_INTEGER_MODES})
_PROFILE_SPACES: dict[str, frozenset[str]] = {
    "RGB": frozenset({"RGB", "RGBA", "RGBX", "P", "PA", "YCbCr", *_GREY_MODES}),
    "GRAY": _GREY_MODES,
    "CMYK": frozenset({"CMYK"}),
    "Lab": frozenset({"LAB"}),
}

# What ImageCms raises on profiles or transforms it cannot use.
_PROFILE_ERRORS: tuple[type[BaseException], ...] = (ImageCms.PyCMSError, *_DECODE_ERRORS, AttributeError)


def _alpha_of(image: Image.Image) -> Image.Image | None:
    """The alpha band of ``image`` (also from a palette or a transparent colour), or None."""
    if not image.has_transparency_data:
        return None
    if "A" in image.getbands():
        return image.getchannel("A")
    return image.convert("RGBA").getchannel("A")


def _apply_profile(image: Image.Image, profile: ImageCms.ImageCmsProfile, space: str) -> Image.Image:
    """``image`` converted from ``profile``'s colours to sRGB: an RGB or RGBA image."""
    intent_value = profile.profile.rendering_intent
    intent = ImageCms.Intent(intent_value) if intent_value in (0, 1, 2, 3) else ImageCms.Intent.PERCEPTUAL
    if space == "RGB":
        if image.mode in _INTEGER_MODES or image.mode == "F":
            image = _grey8(image)
        base = image.convert("RGBA") if image.has_transparency_data else image.convert("RGB")
        transform = ImageCms.buildTransform(profile, _srgb(), base.mode, base.mode, intent)
        return transform.apply(base)
    alpha, base = None, image
    if space == "GRAY":
        alpha = _alpha_of(image)
        base = image.convert("L") if image.mode in ("1", "LA", "L") else _grey8(image)
    transform = ImageCms.buildTransform(profile, _srgb(), base.mode, "RGB", intent)
    result = transform.apply(base)
    if alpha is not None:
        result.putalpha(alpha)
    return result


def _to_srgb(image: Image.Image, source: str) -> Image.Image:
    """``image`` with its embedded ICC profile converted to sRGB (``image`` itself when none).

    A profile that cannot be read, does not fit the image's mode or cannot be
    applied is ignored with an :class:`ArtstyleWarning`: the pixels are still good,
    only their colours are then taken as sRGB.
    """
    data = image.info.get("icc_profile")
    if image.mode == "LAB" and not data:
        try:
            return _apply_profile(image, ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")), "Lab")
        except _PROFILE_ERRORS:
            return image  # Pillow's own conversion, below
    if not data or not isinstance(data, bytes) or data == _srgb_profile_bytes():
        return image
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
        space = str(profile.profile.xcolor_space).strip()
    except _PROFILE_ERRORS:
        _warn(f"'{source}': ignored its unreadable ICC colour profile; colours taken as sRGB")
        return image
    if image.mode not in _PROFILE_SPACES.get(space, frozenset()):
        _warn(f"'{source}': ignored its ICC colour profile, made for {space} colours, not {image.mode} pixels")
        return image
    try:
        return _apply_profile(image, profile, space)
    except _PROFILE_ERRORS:
        _warn(f"'{source}': could not apply its ICC colour profile; colours taken as sRGB")
        return image


# EXIF orientation -> the transposition that shows the picture upright.
_ORIENTATIONS: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_TAG = 0x0112


def _orientation(image: Image.Image, source: str) -> Image.Transpose | None:
    """The transposition the EXIF orientation asks for; None when none is needed or known."""
    try:
        value = image.getexif().get(_ORIENTATION_TAG)
    except _DECODE_ERRORS:
        _warn(f"'{source}': ignored its unreadable EXIF data (the orientation is not known)")
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return _ORIENTATIONS.get(int(value))
    return None


def _decoded(image: Image.Image, source: str) -> Image.Image:
    """A new, upright sRGB RGB image from a loaded ``image``; it carries no ``info``.

    ``image`` itself is not modified. The empty ``info`` matters: Pillow copies
    it (ICC profile, EXIF) into converted images, and a second pass must neither
    convert the colours nor rotate the picture again.
    """
    orientation = _orientation(image, source)
    srgb = _to_srgb(image, source)
    rgb = _to_rgb(srgb, copy=srgb is image)
    if orientation is not None:
        rgb = rgb.transpose(orientation)
    rgb.info = {}
    return rgb


# --------------------------------------------------------------------------- #
# The pixel limit
# --------------------------------------------------------------------------- #

_max_pixels: ContextVar[int] = ContextVar("artstyle_max_pixels", default=DEFAULT_MAX_PIXELS)

# Pillow keeps its own decompression-bomb limit in a module global; while artstyle
# opens and decodes a file it sets that global to artstyle's limit (under this lock,
# restoring it after), so that one limit, with one message, applies to every file.
_PILLOW_LIMIT_LOCK = threading.RLock()


def check_max_pixels(value: object, what: str = "--max-pixels") -> int:
    """``value`` as a pixel limit (a whole number of at least 1), or ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{what}: expected a whole number of pixels, got {value!r}")
    if value < 1:
        raise ConfigError(f"{what}: expected a whole number of pixels of at least 1, got {value}")
    return int(value)


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
def _pillow_limit(limit: int) -> Iterator[None]:
    with _PILLOW_LIMIT_LOCK, warnings.catch_warnings():
        # Pillow warns between 1 and 2 times its limit; artstyle refuses there itself.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _too_large(count: int, limit: int, size: tuple[int, int] | None = None) -> str:
    dimensions = f"{size[0]}x{size[1]} px, " if size else ""
    return f"image too large ({dimensions}{count:,} pixels; the limit is {limit:,}, see --max-pixels)"


def _check_pixels(path: str, size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise _read_error(path, f"image has no pixels ({width}x{height})")
    if width * height > limit:
        raise _read_error(path, _too_large(width * height, limit, size))


# --------------------------------------------------------------------------- #
# Reading
# --------------------------------------------------------------------------- #


def _read_error(path: str, problem: str) -> ImageReadError:
    return ImageReadError(f"cannot read image '{path}': {problem}")


def _os_problem(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not an image"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


def _check_regular_file(path: str) -> None:
    """Raise ImageReadError unless ``path`` is an existing, non-empty regular file."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise _read_error(path, _os_problem(exc)) from exc
    except ValueError as exc:  # e.g. an embedded NUL character
        raise _read_error(path, f"invalid path ({exc})") from exc
    if stat.S_ISDIR(info.st_mode):
        raise _read_error(path, "is a directory, not an image")
    if not stat.S_ISREG(info.st_mode):
        # FIFOs, devices, sockets: opening them could block forever.
        raise _read_error(path, "not a regular file")
    if info.st_size == 0:
        raise _read_error(path, "file is empty")


def _bomb_problem(exc: Image.DecompressionBombError, limit: int) -> str:
    match = re.search(r"\((\d+) pixels\)", str(exc))
    if match is None:
        return f"image too large (the limit is {limit:,} pixels, see --max-pixels)"
    return _too_large(int(match.group(1)), limit)


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
def _open_image(path: str, limit: int) -> Iterator[Image.Image]:
    """Open ``path`` with Pillow, turning every failure into ImageReadError.

    The image's size, read from its header, is checked against ``limit`` before
    the body runs. Decoding errors raised inside the ``with`` body are mapped too,
    so the body should only decode and convert the image.
    """
    _check_regular_file(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; open errors mapped apart
    except OSError as exc:
        raise _read_error(path, _os_problem(exc)) from exc
    with handle, _pillow_limit(limit):
        try:
            with Image.open(handle) as image:
                _check_pixels(path, image.size, limit)
                yield image
        except ImageReadError:
            raise
        except UnidentifiedImageError as exc:
            raise _read_error(path, _unknown_format_problem(handle)) from exc
        except Image.DecompressionBombError as exc:
            raise _read_error(path, _bomb_problem(exc, limit)) from exc
        except _UnsupportedModeError as exc:
            raise _read_error(path, f"unsupported colour mode '{exc.mode}'") from exc
        except MemoryError as exc:
            raise _read_error(path, "not enough memory to decode it") from exc
        except _DECODE_ERRORS as exc:
            raise _read_error(path, "file is truncated or corrupt") from exc


def read_image(path: StrPath, *, max_pixels: int | None = None) -> Image.Image:
    """Read an image file and return it fully decoded as an upright sRGB RGB image.

    The EXIF orientation is applied, an embedded ICC profile is converted to sRGB,
    transparency is flattened onto white, and only the first frame of an animated
    or multi-page file is used. The returned image is independent of the file
    (which is closed on return) and has an empty ``info``.

    ``max_pixels`` (default: the limit of :func:`pixel_limit`, normally
    :data:`DEFAULT_MAX_PIXELS`) caps width x height; it is checked on the file's
    header, before decoding, so a decompression bomb costs nothing.

    Truncated files are only detected while ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES``
    keeps its default, False; artstyle never changes it.

    Raises ImageReadError when the file is missing, a directory, unreadable, not
    an image, truncated or corrupt, or has more than ``max_pixels`` pixels; issues
    :class:`ArtstyleWarning` for a colour profile or EXIF block it had to ignore.
    """
    name = _fspath(path, "image path")
    limit = _max_pixels.get() if max_pixels is None else check_max_pixels(max_pixels, "max_pixels")
    with _open_image(name, limit) as image:
        image.load()  # decodes everything now, so truncation is detected here
        return _decoded(image, name)


def _fspath(path: object, what: str) -> str:
    if isinstance(path, str):
        return path
    if isinstance(path, os.PathLike):
        result = os.fspath(path)
        if isinstance(result, str):
            return result
    raise ConfigError(f"{what}: expected a file path, got {type(path).__name__}")


# --------------------------------------------------------------------------- #
# Accepting images from callers
# --------------------------------------------------------------------------- #


def _array_to_image(array: npt.NDArray[Any], what: str) -> Image.Image:
    shape = tuple(int(n) for n in array.shape)
    if not (array.ndim == 2 or (array.ndim == 3 and shape[2] in (1, 3, 4))):
        raise ConfigError(f"{what}: expected an H x W x 3 array (or H x W, H x W x 1, H x W x 4), got shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise ConfigError(f"{what}: the array is empty (shape {shape})")

    if array.dtype == np.uint8:
        data = array
    elif array.dtype == np.uint16:
        data = np.rint(array.astype(np.float32) / np.float32(257.0)).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if bool(np.isnan(array).any()):
            raise ConfigError(f"{what}: the float array contains NaN values")
        scaled = np.clip(array.astype(np.float32), 0.0, 1.0) * np.float32(255.0)
        data = np.rint(scaled).astype(np.uint8)
    else:
        raise ConfigError(
            f"{what}: expected a uint8 (0-255), uint16 (0-65535) or float (0-1) array, got dtype {array.dtype}"
        )

    if data.ndim == 3 and shape[2] == 1:
        data = data[..., 0]
    image = Image.fromarray(np.ascontiguousarray(data))
    return _to_rgb(image)


def as_image(
    obj: StrPath | Image.Image | npt.NDArray[Any],
    what: str = "image",
) -> Image.Image:
    """Return ``obj`` as a new RGB PIL image.

    ``obj`` may be a file path (read with :func:`read_image`), a PIL image (its
    EXIF orientation is applied, an ICC profile in its ``info`` is converted to
    sRGB and it is converted to RGB with alpha on white; the caller's image is
    not modified) or a numpy array of shape H x W,
    H x W x 1, H x W x 3 or H x W x 4 with dtype uint8 (0-255), uint16 (0-65535)
    or float (0-1, clipped). ``what`` names the argument in error messages, e.g.
    ``"style image"``.

    Raises ConfigError for any other type, shape or dtype, and ImageReadError
    when a path cannot be read or a lazily opened PIL image cannot be decoded.
    """
    if isinstance(obj, (str, os.PathLike)):
        return read_image(obj)
    if isinstance(obj, Image.Image):
        return _pil_to_rgb(obj, what)
    if isinstance(obj, np.ndarray):
        return _array_to_image(obj, what)
    raise ConfigError(f"{what}: expected a file path, a PIL image or a numpy array, got {type(obj).__name__}")


def _pil_to_rgb(image: Image.Image, what: str) -> Image.Image:
    source = getattr(image, "filename", "") or what
    try:
        image.load()
        return _decoded(image, source)
    except _UnsupportedModeError as exc:
        raise ConfigError(f"{what}: unsupported PIL image mode '{exc.mode}'") from exc
    except Image.DecompressionBombError as exc:
        raise _read_error(source, _bomb_problem(exc, _max_pixels.get())) from exc
    except _DECODE_ERRORS as exc:
        raise _read_error(source, "file is truncated or corrupt") from exc


def _convert_rgb(image: Image.Image, what: str) -> Image.Image:
    """``image`` itself when it is RGB, otherwise an RGB copy (alpha on white)."""
    if not isinstance(image, Image.Image):
        raise ConfigError(f"{what}: expected a PIL image, got {type(image).__name__}")
    try:
        return _to_rgb(image, copy=False)
    except _UnsupportedModeError as exc:
        raise ConfigError(f"{what}: unsupported PIL image mode '{exc.mode}'") from exc


# --------------------------------------------------------------------------- #
# Tensors and sizes
# --------------------------------------------------------------------------- #


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """Return ``image`` as a float32 tensor of shape (1, 3, H, W) with values in [0, 1].

    Non-RGB images are converted first (alpha flattened onto white).
    """
    rgb = _convert_rgb(image, "image_to_tensor")
    array = np.array(rgb, dtype=np.uint8)  # a writable copy, as torch.from_numpy wants
    tensor = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0)
    return tensor.to(torch.float32).div_(255.0).contiguous()


def tensor_to_image(t: torch.Tensor) -> Image.Image:
    """Return a (1, 3, H, W) or (3, H, W) tensor as an RGB image.

    Any dtype and device is accepted; values are clamped to [0, 1] (NaN becomes 0)
    and rounded to 8 bits.
    """
    if not isinstance(t, torch.Tensor):
        raise ConfigError(f"expected a torch tensor, got {type(t).__name__}")
    shape = tuple(t.shape)
    if t.dim() == 4 and shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3 or t.shape[1] == 0 or t.shape[2] == 0:
        raise ConfigError(f"expected a tensor of shape (1, 3, H, W) or (3, H, W), got {shape}")
    # nan_to_num returns a new tensor, so the in-place steps below never touch ``t``.
    values = torch.nan_to_num(t.detach().to(device="cpu", dtype=torch.float32), nan=0.0)
    values = values.clamp_(0.0, 1.0)
    pixels = values.mul_(255.0).round_().to(torch.uint8).permute(1, 2, 0).contiguous()
    return Image.fromarray(pixels.numpy())


def resize_long_side(image: Image.Image, size: int) -> Image.Image:
    """Scale ``image`` so its longer side is ``size`` pixels, keeping the aspect ratio.

    Uses Lanczos resampling; each side stays at least 1 pixel. Returns the same
    object unchanged when the longer side already equals ``size``.
    """
    if isinstance(size, bool):
        raise ConfigError(f"image size must be a positive integer, got {size!r}")
    try:
        size = operator.index(size)
    except TypeError:
        raise ConfigError(f"image size must be a positive integer, got {size!r}") from None
    if size < 1:
        raise ConfigError(f"image size must be a positive integer, got {size}")
    width, height = image.size
    if max(width, height) == size:
        return image
    if width >= height:
        new_size = (size, max(1, round(height * size / width)))
    else:
        new_size = (max(1, round(width * size / height)), size)
    return image.resize(new_size, Image.Resampling.LANCZOS)


# --------------------------------------------------------------------------- #
# Writing images
# --------------------------------------------------------------------------- #


def _write_error(path: str, problem: str) -> ImageWriteError:
    return ImageWriteError(f"cannot write image '{path}': {problem}")


def _supported_extensions() -> str:
    return ", ".join(sorted(OUTPUT_FORMATS))


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


def check_output_path(path: StrPath, *, bit_depth: int = 8, overwrite: bool = True) -> str:
    """Check that an image can be written to ``path`` and return its Pillow format.

    Meant to be called before a long run so that a bad output path fails early.
    Checks the extension, that the parent directory exists and is writable, and
    that ``path`` is not a directory; with ``overwrite=False``, also that neither
    ``path`` nor (for formats other than PNG) its metadata sidecar exists. Creates
    nothing.

    Raises ImageWriteError naming the path and the problem, and ConfigError for
    a bit depth the format cannot hold.
    """
    try:
        name = _fspath(path, "output path")
    except ConfigError as exc:
        raise ImageWriteError(str(exc)) from None
    if not name:
        raise ImageWriteError("cannot write image: the output path is empty")
    target = Path(name)
    extension = target.suffix.lower()
    if extension not in OUTPUT_FORMATS:
        found = f"extension '{target.suffix}'" if target.suffix else "no extension"
        raise _write_error(name, f"unsupported {found} (supported: {_supported_extensions()})")
    image_format = OUTPUT_FORMATS[extension]
    check_bit_depth(bit_depth, image_format)
    if target.is_dir():
        raise _write_error(name, "is a directory")
    if not overwrite:
        _check_absent(name, image_format)
    real = write_target(target)
    parent = real.parent
    if not parent.exists():
        raise _write_error(name, f"directory '{parent}' does not exist")
    if not parent.is_dir():
        raise _write_error(name, f"'{parent}' is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _write_error(name, f"directory '{parent}' is not writable")
    return image_format


def _check_absent(name: str, image_format: str) -> None:
    if os.path.lexists(name):
        raise _write_error(name, "the file already exists (not overwritten: --no-clobber)")
    sidecar = sidecar_path(name)
    if image_format != "PNG" and os.path.lexists(sidecar):
        raise _write_error(name, f"its metadata file '{sidecar}' already exists (not overwritten: --no-clobber)")


def sidecar_path(path: StrPath) -> Path:
    """Return the metadata sidecar of a non-PNG output: ``out.jpg`` -> ``out.jpg.json``."""
    return Path(os.fspath(path) + ".json")


def _encode_metadata(name: str, metadata: Mapping[str, object]) -> str:
    try:
        # default=str: a Path or similar must never make a finished run unsavable.
        return json.dumps(dict(metadata), sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError) as exc:
        raise _write_error(name, f"metadata cannot be stored as JSON ({exc})") from exc


def _float_rgb(image: torch.Tensor | npt.NDArray[Any], what: str) -> npt.NDArray[np.float32]:
    """An H x W x 3 float32 array in [0, 1] (NaN as 0) from a tensor or a float array."""
    if isinstance(image, torch.Tensor):
        shape = tuple(image.shape)
        t = image[0] if image.dim() == 4 and shape[0] == 1 else image
        if t.dim() != 3 or t.shape[0] != 3 or t.shape[1] == 0 or t.shape[2] == 0:
            raise ConfigError(f"{what}: expected a tensor of shape (1, 3, H, W) or (3, H, W), got {shape}")
        array = t.detach().to(device="cpu", dtype=torch.float32).permute(1, 2, 0).numpy()
    else:
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
            raise ConfigError(f"{what}: expected an H x W x 3 array, got shape {tuple(image.shape)}")
        array = image.astype(np.float32)
    clipped: npt.NDArray[np.float32] = np.clip(np.nan_to_num(array, nan=0.0), 0.0, 1.0)
    return clipped


def _pixels16(image: SavableImage, what: str) -> npt.NDArray[np.uint16]:
    """An H x W x 3 uint16 array: floats are quantised to 0-65535, 8-bit values scaled by 257."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint16:
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
            raise ConfigError(f"{what}: expected an H x W x 3 array, got shape {tuple(image.shape)}")
        same: npt.NDArray[np.uint16] = np.ascontiguousarray(image)
        return same
    if isinstance(image, torch.Tensor) or (isinstance(image, np.ndarray) and image.dtype.kind == "f"):
        # In float64 the product is exact, so rounding is exact too.
        exact = _float_rgb(image, what).astype(np.float64) * 65535.0
        quantised: npt.NDArray[np.uint16] = np.rint(exact).astype(np.uint16)
        return quantised
    scaled: npt.NDArray[np.uint16] = np.asarray(_image8(image, what), dtype=np.uint16) * np.uint16(257)
    return scaled


def _image8(image: SavableImage, what: str) -> Image.Image:
    """An 8-bit RGB PIL image of any savable image (floats rounded to 0-255)."""
    if isinstance(image, Image.Image):
        return _convert_rgb(image, what)
    if isinstance(image, torch.Tensor):
        return tensor_to_image(image)
    if isinstance(image, np.ndarray):
        return _array_to_image(image, what)
    raise ConfigError(f"{what}: expected a PIL image, a tensor or a numpy array, got {type(image).__name__}")


def save_image(
    image: SavableImage,
    path: StrPath,
    metadata: Mapping[str, object] | None = None,
    *,
    jpeg_quality: int = 95,
    bit_depth: int = 8,
    overwrite: bool = True,
) -> None:
    """Save ``image`` atomically, in the format given by the extension of ``path``.

    ``image`` is a PIL image, a (1, 3, H, W) or (3, H, W) float tensor in [0, 1]
    (as the engine makes them), or an H x W x 3 array (uint8, uint16, or float in
    [0, 1]). ``bit_depth`` 16 (PNG and TIFF only) quantises a float image to
    0-65535; an 8-bit image is scaled by 257. Every file gets an embedded sRGB
    ICC profile (:func:`srgb_profile`).

    ``path`` is only replaced once the new file is completely written; on any
    failure no temporary file is left and the previous file is untouched. With
    ``overwrite=False`` an existing file is never replaced (ImageWriteError).
    ``metadata`` is stored as JSON: inside PNG files in an iTXt chunk with key
    ``"artstyle"``, for other formats in the sidecar ``<path>.json`` (also
    written atomically; a stale sidecar is removed when ``metadata`` is None).
    ``jpeg_quality`` (1-100) is used for JPEG and WEBP.

    Raises ImageWriteError when the file or its sidecar cannot be written, and
    ConfigError for a bad ``jpeg_quality`` or ``bit_depth`` or a non-image ``image``.
    """
    check_jpeg_quality(jpeg_quality)
    check_bit_depth(bit_depth)
    image_format = check_output_path(path, bit_depth=bit_depth, overwrite=overwrite)
    name = os.fspath(path)
    text = None if metadata is None else _encode_metadata(name, metadata)
    if bit_depth == 16:
        pixels = _pixels16(image, "save_image")
        encode = _encode_png16 if image_format == "PNG" else _encode_tiff16
        data = _encoded_or_error(name, lambda: encode(pixels, text))
        try:
            atomic_write_bytes(name, data, overwrite=overwrite)
        except (OSError, ValueError) as exc:
            raise _write_error(name, _write_problem(exc)) from exc
    else:
        _save_with_pillow(_image8(image, "save_image"), name, image_format, text, jpeg_quality, overwrite)
    if image_format != "PNG":
        _write_sidecar(name, text, overwrite)


def _encoded_or_error(name: str, encode: Any) -> bytes:
    try:
        return cast(bytes, encode())
    except MemoryError as exc:
        raise _write_error(name, "not enough memory to encode it") from exc
    except (OverflowError, struct.error) as exc:  # sizes beyond what the format can hold
        raise _write_error(name, str(exc)) from exc


def _save_with_pillow(
    rgb: Image.Image, name: str, image_format: str, text: str | None, jpeg_quality: int, overwrite: bool
) -> None:
    options: dict[str, Any] = {"icc_profile": _srgb_profile_bytes()}
    if image_format in ("JPEG", "WEBP"):
        options["quality"] = jpeg_quality
    if image_format == "PNG" and text is not None:
        info = PngInfo()
        info.add_itxt(METADATA_KEY, text)
        options["pnginfo"] = info
    try:
        with atomic_path(name, overwrite=overwrite) as temp, open(temp, "wb") as handle:
            rgb.save(handle, format=image_format, **options)
    except MemoryError as exc:
        raise _write_error(name, "not enough memory to encode it") from exc
    except (OSError, ValueError, KeyError, TypeError, struct.error, zlib.error) as exc:
        raise _write_error(name, _write_problem(exc)) from exc


def _write_sidecar(name: str, text: str | None, overwrite: bool) -> None:
    sidecar = sidecar_path(name)
    try:
        if text is None:
            if overwrite:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(sidecar)
        else:
            atomic_write_bytes(sidecar, text.encode("utf-8"), overwrite=overwrite)
    except OSError as exc:
        raise ImageWriteError(
            f"wrote image '{name}' but cannot write its metadata file '{sidecar}': {_write_problem(exc)}"
        ) from exc


def _write_problem(exc: BaseException) -> str:
    if isinstance(exc, FileExistsError):
        return "the file already exists (not overwritten: --no-clobber)"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


# --------------------------------------------------------------------------- #
# 16-bit encoders (Pillow has no 16-bit RGB mode)
# --------------------------------------------------------------------------- #

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IDAT_CHUNK = 1 << 20
_PNG_FILTER_ROWS = 256  # rows filtered at a time, to bound the memory used


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _paeth(a: npt.NDArray[np.int16], b: npt.NDArray[np.int16], c: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _png_filtered(rows: npt.NDArray[np.uint8], bpp: int) -> bytes:
    """Scanlines with the PNG filter type byte, each row filtered by whichever of the five
    standard filters gives the smallest sum of absolute (signed) values."""
    height = rows.shape[0]
    out = bytearray()
    for start in range(0, height, _PNG_FILTER_ROWS):
        raw = rows[start : start + _PNG_FILTER_ROWS].astype(np.int16)
        above = np.zeros_like(raw)
        above[1:] = raw[:-1]
        if start:
            above[0] = rows[start - 1]
        left = np.zeros_like(raw)
        left[:, bpp:] = raw[:, :-bpp]
        upper_left = np.zeros_like(raw)
        upper_left[:, bpp:] = above[:, :-bpp]
        candidates = np.stack(
            [raw, raw - left, raw - above, raw - (left + above) // 2, raw - _paeth(left, above, upper_left)]
        ).astype(np.uint8)  # wraps modulo 256, as PNG specifies
        cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)
        best = cost.argmin(axis=0)
        chosen = candidates[best, np.arange(raw.shape[0])]
        block = np.concatenate([best.astype(np.uint8)[:, None], chosen], axis=1)
        out += block.tobytes()
    return bytes(out)


def _encode_png16(pixels: npt.NDArray[np.uint16], text: str | None) -> bytes:
    """A 16-bit RGB PNG (colour type 2) with the sRGB profile and the metadata text."""
    height, width, _ = pixels.shape
    rows = np.ascontiguousarray(pixels, dtype=">u2").view(np.uint8).reshape(height, width * 6)
    data = zlib.compress(_png_filtered(rows, 6), 6)
    chunks = [
        _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)),
        _png_chunk(b"iCCP", b"sRGB\x00\x00" + zlib.compress(_srgb_profile_bytes())),
    ]
    if text is not None:
        chunks.append(_png_chunk(b"iTXt", METADATA_KEY.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text.encode()))
    chunks += [_png_chunk(b"IDAT", data[i : i + _PNG_IDAT_CHUNK]) for i in range(0, len(data), _PNG_IDAT_CHUNK)]
    chunks.append(_png_chunk(b"IEND", b""))
    return _PNG_SIGNATURE + b"".join(chunks)


# TIFF field types
_SHORT, _LONG, _RATIONAL, _UNDEFINED = 3, 4, 5, 7
_TIFF_STRIP_BYTES = 1 << 18

TiffField: TypeAlias = tuple[int, int, bytes]  # (type, count, value bytes)


def _tiff_field(kind: int, values: list[int] | bytes) -> TiffField:
    if isinstance(values, bytes):
        return kind, len(values), values
    if kind == _SHORT:
        return kind, len(values), struct.pack(f"<{len(values)}H", *values)
    count = len(values) // 2 if kind == _RATIONAL else len(values)
    return kind, count, struct.pack(f"<{len(values)}I", *values)  # LONGs; a RATIONAL is two


def _encode_tiff16(pixels: npt.NDArray[np.uint16], text: str | None) -> bytes:
    """A little-endian 16-bit RGB TIFF: Deflate with horizontal differencing, the sRGB profile.

    Layout: header, the one IFD, the values that do not fit in an IFD entry, the
    strips. (``text`` goes into the JSON sidecar, as for every format but PNG.)
    """
    del text
    height, width, _ = pixels.shape
    rows_per_strip = max(1, _TIFF_STRIP_BYTES // (width * 6))
    predicted = np.array(pixels, dtype="<u2", order="C", copy=True)  # never the caller's array
    predicted[:, 1:] = pixels[:, 1:] - pixels[:, :-1]  # horizontal predictor, modulo 2**16
    strips = [zlib.compress(predicted[i : i + rows_per_strip].tobytes(), 6) for i in range(0, height, rows_per_strip)]
    fields: dict[int, TiffField] = {
        256: _tiff_field(_LONG, [width]),
        257: _tiff_field(_LONG, [height]),
        258: _tiff_field(_SHORT, [16, 16, 16]),
        259: _tiff_field(_SHORT, [8]),  # Adobe Deflate
        262: _tiff_field(_SHORT, [2]),  # RGB
        273: _tiff_field(_LONG, [0] * len(strips)),  # strip offsets: the real ones below
        277: _tiff_field(_SHORT, [3]),
        278: _tiff_field(_LONG, [rows_per_strip]),
        279: _tiff_field(_LONG, [len(strip) for strip in strips]),
        282: _tiff_field(_RATIONAL, [72, 1]),
        283: _tiff_field(_RATIONAL, [72, 1]),
        284: _tiff_field(_SHORT, [1]),  # interleaved samples
        296: _tiff_field(_SHORT, [2]),  # resolution in inches
        317: _tiff_field(_SHORT, [2]),  # horizontal differencing
        339: _tiff_field(_SHORT, [1, 1, 1]),  # unsigned integers
        34675: _tiff_field(_UNDEFINED, _srgb_profile_bytes()),
    }
    extra_start = 8 + 2 + 12 * len(fields) + 4
    extra_size = sum(len(value) + len(value) % 2 for _, _, value in fields.values() if len(value) > 4)
    offsets = [extra_start + extra_size + sum(len(strip) for strip in strips[:i]) for i in range(len(strips))]
    if extra_start + extra_size + sum(len(strip) for strip in strips) >= 1 << 32:
        raise OverflowError("too large for a TIFF file (over 4 GiB)")
    fields[273] = _tiff_field(_LONG, offsets)

    entries, extra = bytearray(struct.pack("<H", len(fields))), bytearray()
    for tag in sorted(fields):
        kind, count, value = fields[tag]
        if len(value) <= 4:
            entries += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")
        else:
            entries += struct.pack("<HHII", tag, kind, count, extra_start + len(extra))
            extra += value + b"\x00" * (len(value) % 2)  # values start on even offsets
    entries += struct.pack("<I", 0)  # no further IFD
    return b"II*\x00" + struct.pack("<I", 8) + bytes(entries) + bytes(extra) + b"".join(strips)


# --------------------------------------------------------------------------- #
# Reading metadata back
# --------------------------------------------------------------------------- #


def _decode_metadata(source: str, text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ImageReadError(f"cannot read metadata of '{source}': not valid JSON") from exc
    if not isinstance(value, dict):
        raise ImageReadError(f"cannot read metadata of '{source}': not a JSON object")
    return value


def read_metadata(path: StrPath) -> dict[str, object] | None:
    """Return the metadata stored by :func:`save_image`, or None when there is none.

    For ``.png`` files it is read from the ``"artstyle"`` text chunk, for other
    files from the sidecar ``<path>.json``.

    Raises ImageReadError when the image (or an existing sidecar) cannot be read
    or the stored metadata is not a JSON object.
    """
    name = _fspath(path, "image path")
    if Path(name).suffix.lower() == ".png":
        with _open_image(name, _max_pixels.get()) as image:
            text = image.info.get(METADATA_KEY)
            if text is None and hasattr(image, "text"):
                # Chunks after the image data are only seen once it is decoded.
                text = image.text.get(METADATA_KEY)
        if text is None:
            return None
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        return _decode_metadata(name, str(text))

    _check_regular_file(name)
    sidecar = sidecar_path(name)
    try:
        data = sidecar.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ImageReadError(f"cannot read metadata file '{sidecar}': {_os_problem(exc)}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImageReadError(f"cannot read metadata file '{sidecar}': not UTF-8 text") from exc
    return _decode_metadata(str(sidecar), text)
