"""Image tensors as the engine moves them between scales: RGB views and resizing."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def as_rgb(image: torch.Tensor) -> torch.Tensor:
    """A one-channel (luminance) image repeated into three channels; RGB unchanged."""
    return image.expand(-1, 3, -1, -1) if image.shape[1] == 1 else image


def resize_image(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """An (N, C, H, W) image at a new size: area averaging down, bicubic up; in [0, 1]."""
    if image.shape[2:] == (height, width):
        return image
    if image.shape[2] >= height and image.shape[3] >= width:
        return F.interpolate(image, size=(height, width), mode="area")
    return F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)
