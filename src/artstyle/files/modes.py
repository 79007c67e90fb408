"""Every Pillow mode to 8-bit RGB: greys of any depth, palettes, CMYK, Lab, alpha on white."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

_WHITE = (255, 255, 255, 255)

#: 16- and 32-bit integer grey modes.
INTEGER_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
#: Every grey mode, of any depth, with or without alpha.
GREY_MODES = frozenset({"1", "L", "LA", "F", *INTEGER_MODES})


class UnsupportedModeError(ValueError):
    """A PIL image mode that cannot be turned into RGB."""

    def __init__(self, mode: str) -> None:
        super().__init__(f"unsupported colour mode {mode!r}")
        self.mode = mode


def _grey_to_rgb(grey: npt.NDArray[np.uint8]) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(grey)).convert("RGB")


def grey8(image: Image.Image) -> Image.Image:
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


def to_rgb(image: Image.Image, *, copy: bool = True) -> Image.Image:
    """Return an RGB version of ``image`` with alpha flattened onto white.

    The result is a new image, except that an RGB ``image`` is returned as it is
    when ``copy`` is False. 16/32-bit and float greys are scaled as by :func:`grey8`.
    Raises :class:`UnsupportedModeError` for modes Pillow cannot convert.
    """
    mode = image.mode
    if mode in INTEGER_MODES or mode == "F":
        return grey8(image).convert("RGB")
    try:
        if image.has_transparency_data:
            return _composite_on_white(image)
        if mode == "RGB":
            return image.copy() if copy else image
        return image.convert("RGB")
    except ValueError as exc:
        raise UnsupportedModeError(mode) from exc


def alpha_of(image: Image.Image) -> Image.Image | None:
    """The alpha band of ``image`` (also from a palette or a transparent colour), or None."""
    if not image.has_transparency_data:
        return None
    if "A" in image.getbands():
        return image.getchannel("A")
    return image.convert("RGBA").getchannel("A")
