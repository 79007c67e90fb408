"""Reading and writing image files for artstyle.

This is the only module that touches image files. It turns whatever the caller
hands in (a path, a PIL image or a numpy array) into a plain, fully decoded RGB
``PIL.Image.Image``, converts between images and ``(1, 3, H, W)`` float tensors,
and writes results atomically: an output file is either the complete new image
or the untouched old one, never a half-written mix.

Every failure caused by a bad file or a bad value is raised as one of the typed
errors of :mod:`artstyle.errors` with a one-line message naming the file and the
problem. The low-level atomic helpers (:func:`atomic_path`,
:func:`atomic_write_bytes`) are the exception: they raise ``OSError`` so that
each caller can wrap it in the error type that fits its own domain.
"""

from __future__ import annotations

import contextlib
import json
import operator
import os
import re
import stat
import struct
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from artstyle.atomic import atomic_path, atomic_write_bytes, write_target
from artstyle.errors import ConfigError, ImageReadError, ImageWriteError

__all__ = [
    "METADATA_KEY",
    "OUTPUT_FORMATS",
    "as_image",
    "atomic_path",
    "atomic_write_bytes",
    "check_output_path",
    "image_to_tensor",
    "read_image",
    "read_metadata",
    "resize_long_side",
    "save_image",
    "sidecar_path",
    "tensor_to_image",
]

StrPath: TypeAlias = str | os.PathLike[str]

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


def _grey_to_rgb(grey: npt.NDArray[np.uint8]) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(grey)).convert("RGB")


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
    when ``copy`` is False.

    16-bit and 32-bit integer greys are scaled from 0-65535 to 0-255; float greys
    are taken as 0-1 when their maximum is at most 1, otherwise as 0-255.
    Raises ``_UnsupportedModeError`` for modes Pillow cannot convert.
    """
    mode = image.mode
    if mode in _INTEGER_MODES:
        values = np.asarray(image).astype(np.float32) / np.float32(257.0)
        return _grey_to_rgb(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    if mode == "F":
        values = np.asarray(image, dtype=np.float32)
        finite = values[np.isfinite(values)]
        scale = 255.0 if finite.size == 0 or float(finite.max()) <= 1.0 else 1.0
        scaled = np.nan_to_num(values * np.float32(scale), nan=0.0, posinf=255.0, neginf=0.0)
        return _grey_to_rgb(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
    try:
        if image.has_transparency_data:
            return _composite_on_white(image)
        if mode == "RGB":
            return image.copy() if copy else image
        return image.convert("RGB")
    except ValueError as exc:
        raise _UnsupportedModeError(mode) from exc


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


def _bomb_problem(exc: Image.DecompressionBombError) -> str:
    match = re.search(r"\((\d+) pixels\)", str(exc))
    if match is None:
        return "image is too large"
    return f"image is too large ({match.group(1)} pixels)"


@contextlib.contextmanager
def _open_image(path: str) -> Iterator[Image.Image]:
    """Open ``path`` with Pillow, turning every failure into ImageReadError.

    Decoding errors raised inside the ``with`` body are mapped too, so the body
    should only decode and convert the image.
    """
    _check_regular_file(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; open errors mapped apart
    except OSError as exc:
        raise _read_error(path, _os_problem(exc)) from exc
    with handle:
        try:
            with Image.open(handle) as image:
                yield image
        except ImageReadError:
            raise
        except UnidentifiedImageError as exc:
            raise _read_error(path, "not an image file (unknown format)") from exc
        except Image.DecompressionBombError as exc:
            raise _read_error(path, _bomb_problem(exc)) from exc
        except _UnsupportedModeError as exc:
            raise _read_error(path, f"unsupported colour mode '{exc.mode}'") from exc
        except MemoryError as exc:
            raise _read_error(path, "not enough memory to decode it") from exc
        except _DECODE_ERRORS as exc:
            raise _read_error(path, "file is truncated or corrupt") from exc


def read_image(path: StrPath) -> Image.Image:
    """Read an image file and return it fully decoded as an RGB image.

    The EXIF orientation is applied, transparency is flattened onto white, and
    only the first frame of an animated or multi-page file is used. The returned
    image is independent of the file (which is closed on return).

    Truncated files are only detected while ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES``
    keeps its default, False; artstyle never changes it.

    Raises ImageReadError when the file is missing, a directory, unreadable, not
    an image, truncated or corrupt, or more than twice ``PIL.Image.MAX_IMAGE_PIXELS``
    (Pillow only warns between one and two times that limit).
    """
    name = _fspath(path, "image path")
    with _open_image(name) as image:
        image.load()  # decodes everything now, so truncation is detected here
        return _to_rgb(_transposed(image), copy=False)


def _transposed(image: Image.Image) -> Image.Image:
    """A new image with the EXIF orientation applied (a plain copy when there is none)."""
    result = ImageOps.exif_transpose(image)
    return image.copy() if result is None else result


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
    EXIF orientation is applied and it is converted to RGB with alpha on white;
    the caller's image is not modified) or a numpy array of shape H x W,
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
        return _to_rgb(_transposed(image), copy=False)
    except _UnsupportedModeError as exc:
        raise ConfigError(f"{what}: unsupported PIL image mode '{exc.mode}'") from exc
    except Image.DecompressionBombError as exc:
        raise _read_error(source, _bomb_problem(exc)) from exc
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


def check_output_path(path: StrPath) -> str:
    """Check that an image can be written to ``path`` and return its Pillow format.

    Meant to be called before a long run so that a bad output path fails early.
    Checks the extension, that the parent directory exists and is writable, and
    that ``path`` is not a directory. Creates nothing.

    Raises ImageWriteError naming the path and the problem.
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
    if target.is_dir():
        raise _write_error(name, "is a directory")
    real = write_target(target)
    parent = real.parent
    if not parent.exists():
        raise _write_error(name, f"directory '{parent}' does not exist")
    if not parent.is_dir():
        raise _write_error(name, f"'{parent}' is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _write_error(name, f"directory '{parent}' is not writable")
    return OUTPUT_FORMATS[extension]


def sidecar_path(path: StrPath) -> Path:
    """Return the metadata sidecar of a non-PNG output: ``out.jpg`` -> ``out.jpg.json``."""
    return Path(os.fspath(path) + ".json")


def _encode_metadata(name: str, metadata: Mapping[str, object]) -> str:
    try:
        # default=str: a Path or similar must never make a finished run unsavable.
        return json.dumps(dict(metadata), sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError) as exc:
        raise _write_error(name, f"metadata cannot be stored as JSON ({exc})") from exc


def save_image(
    image: Image.Image,
    path: StrPath,
    metadata: Mapping[str, object] | None = None,
    *,
    jpeg_quality: int = 95,
) -> None:
    """Save ``image`` atomically, in the format given by the extension of ``path``.

    ``path`` is only replaced once the new file is completely written; on any
    failure no temporary file is left and the previous file is untouched.
    ``metadata`` is stored as JSON: inside PNG files in an iTXt chunk with key
    ``"artstyle"``, for other formats in the sidecar ``<path>.json`` (also
    written atomically; a stale sidecar is removed when ``metadata`` is None).
    ``jpeg_quality`` (1-100) is used for JPEG and WEBP.

    Raises ImageWriteError when the file or its sidecar cannot be written, and
    ConfigError for a bad ``jpeg_quality`` or a non-image ``image``.
    """
    if isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, int):
        raise ConfigError(f"JPEG quality must be an integer from 1 to 100, got {jpeg_quality!r}")
    if not 1 <= jpeg_quality <= 100:
        raise ConfigError(f"JPEG quality must be an integer from 1 to 100, got {jpeg_quality}")
    rgb = _convert_rgb(image, "save_image")
    image_format = check_output_path(path)
    name = os.fspath(path)
    text = None if metadata is None else _encode_metadata(name, metadata)

    options: dict[str, Any] = {}
    if image_format in ("JPEG", "WEBP"):
        options["quality"] = jpeg_quality
    if image_format == "PNG" and text is not None:
        info = PngInfo()
        info.add_itxt(METADATA_KEY, text)
        options["pnginfo"] = info

    try:
        with atomic_path(name) as temp, open(temp, "wb") as handle:
            rgb.save(handle, format=image_format, **options)
    except MemoryError as exc:
        raise _write_error(name, "not enough memory to encode it") from exc
    except (OSError, ValueError, KeyError, TypeError, struct.error, zlib.error) as exc:
        raise _write_error(name, _write_problem(exc)) from exc

    if image_format == "PNG":
        return
    sidecar = sidecar_path(name)
    try:
        if text is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sidecar)
        else:
            atomic_write_bytes(sidecar, text.encode("utf-8"))
    except OSError as exc:
        raise ImageWriteError(
            f"wrote image '{name}' but cannot write its metadata file '{sidecar}': {_write_problem(exc)}"
        ) from exc


def _write_problem(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


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
        with _open_image(name) as image:
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
