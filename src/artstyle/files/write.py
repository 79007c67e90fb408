"""Writing images atomically: an output file is either the complete new image or the
untouched old one, never a half-written mix.

PNG (8 or 16 bits per channel), TIFF (8 or 16), JPEG and WebP (8, with a quality),
always with an embedded sRGB profile; 16-bit files are quantised from the float
image, not from an 8-bit one (:mod:`~artstyle.files.png16`, :mod:`~artstyle.files.tiff16`).
8-bit files are written by Pillow. The metadata goes into the PNG file itself, or
into a JSON sidecar for the other formats (:mod:`~artstyle.files.metadata`).
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from artstyle.errors import ConfigError, ImageWriteError
from artstyle.files.atomic import atomic_path, atomic_write_bytes, write_target
from artstyle.files.color_profile import srgb_profile
from artstyle.files.convert import SavableImage, image8, pixels16
from artstyle.files.metadata import METADATA_KEY, encode_metadata, sidecar_path
from artstyle.files.options import BIT_DEPTHS, OUTPUT_FORMATS, check_bit_depth, check_jpeg_quality
from artstyle.files.png16 import encode_png16
from artstyle.files.problems import StrPath, directory_problem, path_text, write_error, write_problem
from artstyle.files.tiff16 import encode_tiff16

__all__ = [
    "BIT_DEPTHS",
    "OUTPUT_FORMATS",
    "check_bit_depth",
    "check_jpeg_quality",
    "check_output_path",
    "save_image",
]

# --------------------------------------------------------------------------- #
# Checking values and paths before a run
# --------------------------------------------------------------------------- #


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
        name = path_text(path, "output path")
    except ConfigError as exc:
        raise ImageWriteError(str(exc)) from None
    if not name:
        raise ImageWriteError("cannot write image: the output path is empty")
    image_format = _output_format(name)
    check_bit_depth(bit_depth, image_format)
    if Path(name).is_dir():
        raise write_error(name, "is a directory")
    if not overwrite:
        _check_absent(name, image_format)
    problem = directory_problem(write_target(name).parent)
    if problem is not None:
        raise write_error(name, problem)
    return image_format


def _output_format(name: str) -> str:
    suffix = Path(name).suffix
    if suffix.lower() not in OUTPUT_FORMATS:
        found = f"extension '{suffix}'" if suffix else "no extension"
        raise write_error(name, f"unsupported {found} (supported: {', '.join(sorted(OUTPUT_FORMATS))})")
    return OUTPUT_FORMATS[suffix.lower()]


def _check_absent(name: str, image_format: str) -> None:
    if os.path.lexists(name):
        raise write_error(name, "the file already exists (not overwritten: --no-clobber)")
    sidecar = sidecar_path(name)
    if image_format != "PNG" and os.path.lexists(sidecar):
        raise write_error(name, f"its metadata file '{sidecar}' already exists (not overwritten: --no-clobber)")


# --------------------------------------------------------------------------- #
# Saving
# --------------------------------------------------------------------------- #


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
    ICC profile (:func:`~artstyle.files.color_profile.srgb_profile`).

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
    text = None if metadata is None else encode_metadata(name, metadata)
    if bit_depth == 16:
        _save_sixteen_bits(image, name, image_format, text, overwrite)
    else:
        _save_with_pillow(image8(image, "save_image"), name, image_format, text, jpeg_quality, overwrite)
    if image_format != "PNG":
        _write_sidecar(name, text, overwrite)


def _save_sixteen_bits(image: SavableImage, name: str, image_format: str, text: str | None, overwrite: bool) -> None:
    pixels = pixels16(image, "save_image")
    encode = encode_png16 if image_format == "PNG" else encode_tiff16
    data = _encoded_or_error(name, lambda: encode(pixels, text))
    try:
        atomic_write_bytes(name, data, overwrite=overwrite)
    except (OSError, ValueError) as exc:
        raise write_error(name, write_problem(exc)) from exc


def _encoded_or_error(name: str, encode: Callable[[], bytes]) -> bytes:
    try:
        return encode()
    except MemoryError as exc:
        raise write_error(name, "not enough memory to encode it") from exc
    except (OverflowError, struct.error) as exc:  # sizes beyond what the format can hold
        raise write_error(name, str(exc)) from exc


def _save_with_pillow(
    rgb: Image.Image, name: str, image_format: str, text: str | None, jpeg_quality: int, overwrite: bool
) -> None:
    options: dict[str, Any] = {"icc_profile": srgb_profile()}
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
        raise write_error(name, "not enough memory to encode it") from exc
    except (OSError, ValueError, KeyError, TypeError, struct.error, zlib.error) as exc:
        raise write_error(name, write_problem(exc)) from exc


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
            f"wrote image '{name}' but cannot write its metadata file '{sidecar}': {write_problem(exc)}"
        ) from exc
