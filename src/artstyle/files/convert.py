"""Conversions that are not file I/O: what callers hand in to RGB images, images to and
from ``(1, 3, H, W)`` float tensors, resizing, and the pixels that :mod:`~artstyle.files.write`
stores at 8 or 16 bits per channel."""

from __future__ import annotations

import operator
import os
from typing import Any, TypeAlias, Union

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image

from artstyle.errors import ConfigError
from artstyle.files import limits
from artstyle.files.limits import bomb_problem
from artstyle.files.modes import UnsupportedModeError, to_rgb
from artstyle.files.problems import DECODE_ERRORS, StrPath, read_error
from artstyle.files.read import decoded, read_image

__all__ = ["SavableImage", "as_image", "image_to_tensor", "resize_long_side", "tensor_to_image"]

#: What :func:`artstyle.files.write.save_image` accepts: an 8-bit RGB image, a (1, 3, H, W)
#: or (3, H, W) float tensor in [0, 1], or an H x W x 3 array (uint8, uint16 or float in [0, 1]).
SavableImage: TypeAlias = Union[Image.Image, torch.Tensor, "npt.NDArray[Any]"]


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
    return to_rgb(image)


def as_image(
    obj: StrPath | Image.Image | npt.NDArray[Any],
    what: str = "image",
) -> Image.Image:
    """Return ``obj`` as a new RGB PIL image.

    ``obj`` may be a file path (read with :func:`~artstyle.files.read.read_image`),
    a PIL image (its EXIF orientation is applied, an ICC profile in its ``info`` is
    converted to sRGB and it is converted to RGB with alpha on white; the caller's
    image is not modified) or a numpy array of shape H x W,
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
        return decoded(image, source)
    except UnsupportedModeError as exc:
        raise ConfigError(f"{what}: unsupported PIL image mode '{exc.mode}'") from exc
    except Image.DecompressionBombError as exc:
        raise read_error(source, bomb_problem(exc, limits.max_pixels())) from exc
    except DECODE_ERRORS as exc:
        raise read_error(source, "file is truncated or corrupt") from exc


def _convert_rgb(image: Image.Image, what: str) -> Image.Image:
    """``image`` itself when it is RGB, otherwise an RGB copy (alpha on white)."""
    if not isinstance(image, Image.Image):
        raise ConfigError(f"{what}: expected a PIL image, got {type(image).__name__}")
    try:
        return to_rgb(image, copy=False)
    except UnsupportedModeError as exc:
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
# Pixels to store
# --------------------------------------------------------------------------- #


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


def pixels16(image: SavableImage, what: str) -> npt.NDArray[np.uint16]:
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
    scaled: npt.NDArray[np.uint16] = np.asarray(image8(image, what), dtype=np.uint16) * np.uint16(257)
    return scaled


def image8(image: SavableImage, what: str) -> Image.Image:
    """An 8-bit RGB PIL image of any savable image (floats rounded to 0-255)."""
    if isinstance(image, Image.Image):
        return _convert_rgb(image, what)
    if isinstance(image, torch.Tensor):
        return tensor_to_image(image)
    if isinstance(image, np.ndarray):
        return _array_to_image(image, what)
    raise ConfigError(f"{what}: expected a PIL image, a tensor or a numpy array, got {type(image).__name__}")
