"""Kept for one release: image files are now handled by the package :mod:`artstyle.files`.

This module only re-exports the names it had, from their new homes:

* :mod:`artstyle.files.read`: :func:`read_image`;
* :mod:`artstyle.files.limits`: :data:`DEFAULT_MAX_PIXELS`, :func:`pixel_limit`,
  :func:`max_pixels`, :func:`check_max_pixels`;
* :mod:`artstyle.files.color_profile`: :func:`srgb_profile`;
* :mod:`artstyle.files.convert`: :func:`as_image`, :func:`image_to_tensor`,
  :func:`tensor_to_image`, :func:`resize_long_side`;
* :mod:`artstyle.files.write`: :func:`save_image`, :func:`check_output_path`,
  :func:`check_bit_depth`, :func:`check_jpeg_quality`, :data:`OUTPUT_FORMATS`,
  :data:`BIT_DEPTHS`;
* :mod:`artstyle.files.metadata`: :data:`METADATA_KEY`, :func:`read_metadata`,
  :func:`sidecar_path`;
* :mod:`artstyle.files.atomic`: :func:`atomic_path`, :func:`atomic_write_bytes`.

Import from those modules instead.
"""

from __future__ import annotations

from artstyle.files.atomic import atomic_path, atomic_write_bytes
from artstyle.files.color_profile import srgb_profile
from artstyle.files.convert import as_image, image_to_tensor, resize_long_side, tensor_to_image
from artstyle.files.limits import DEFAULT_MAX_PIXELS, check_max_pixels, max_pixels, pixel_limit
from artstyle.files.metadata import METADATA_KEY, read_metadata, sidecar_path
from artstyle.files.read import read_image
from artstyle.files.write import (
    BIT_DEPTHS,
    OUTPUT_FORMATS,
    check_bit_depth,
    check_jpeg_quality,
    check_output_path,
    save_image,
)

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
