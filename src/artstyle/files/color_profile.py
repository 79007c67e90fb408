"""ICC colour profiles: the sRGB profile artstyle embeds, and converting embedded profiles to sRGB."""

from __future__ import annotations

import functools
import io
import struct

from PIL import Image, ImageCms

from artstyle.files.modes import GREY_MODES, INTEGER_MODES, alpha_of, grey8
from artstyle.files.problems import DECODE_ERRORS, warn

__all__ = ["srgb_profile", "to_srgb"]

# Which image modes an ICC profile of each colour space can describe. (Grey pixels
# with an RGB profile, as some programs write them, are taken as R = G = B.)
_PROFILE_SPACES: dict[str, frozenset[str]] = {
    "RGB": frozenset({"RGB", "RGBA", "RGBX", "P", "PA", "YCbCr", *GREY_MODES}),
    "GRAY": GREY_MODES,
    "CMYK": frozenset({"CMYK"}),
    "Lab": frozenset({"LAB"}),
}

# What ImageCms raises on profiles or transforms it cannot use.
_PROFILE_ERRORS: tuple[type[BaseException], ...] = (ImageCms.PyCMSError, *DECODE_ERRORS, AttributeError)


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


def _apply_profile(image: Image.Image, profile: ImageCms.ImageCmsProfile, space: str) -> Image.Image:
    """``image`` converted from ``profile``'s colours to sRGB: an RGB or RGBA image."""
    intent_value = profile.profile.rendering_intent
    intent = ImageCms.Intent(intent_value) if intent_value in (0, 1, 2, 3) else ImageCms.Intent.PERCEPTUAL
    if space == "RGB":
        if image.mode in INTEGER_MODES or image.mode == "F":
            image = grey8(image)
        base = image.convert("RGBA") if image.has_transparency_data else image.convert("RGB")
        transform = ImageCms.buildTransform(profile, _srgb(), base.mode, base.mode, intent)
        return transform.apply(base)
    alpha, base = None, image
    if space == "GRAY":
        alpha = alpha_of(image)
        base = image.convert("L") if image.mode in ("1", "LA", "L") else grey8(image)
    transform = ImageCms.buildTransform(profile, _srgb(), base.mode, "RGB", intent)
    result = transform.apply(base)
    if alpha is not None:
        result.putalpha(alpha)
    return result


def to_srgb(image: Image.Image, source: str) -> Image.Image:
    """``image`` with its embedded ICC profile converted to sRGB (``image`` itself when none).

    A profile that cannot be read, does not fit the image's mode or cannot be
    applied is ignored with an :class:`~artstyle.errors.ArtstyleWarning`: the
    pixels are still good, only their colours are then taken as sRGB.
    """
    data = image.info.get("icc_profile")
    if image.mode == "LAB" and not data:
        try:
            return _apply_profile(image, ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")), "Lab")
        except _PROFILE_ERRORS:
            return image  # Pillow's own conversion, later
    if not data or not isinstance(data, bytes) or data == _srgb_profile_bytes():
        return image
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
        space = str(profile.profile.xcolor_space).strip()
    except _PROFILE_ERRORS:
        warn(f"'{source}': ignored its unreadable ICC colour profile; colours taken as sRGB")
        return image
    if image.mode not in _PROFILE_SPACES.get(space, frozenset()):
        warn(f"'{source}': ignored its ICC colour profile, made for {space} colours, not {image.mode} pixels")
        return image
    try:
        return _apply_profile(image, profile, space)
    except _PROFILE_ERRORS:
        warn(f"'{source}': could not apply its ICC colour profile; colours taken as sRGB")
        return image
