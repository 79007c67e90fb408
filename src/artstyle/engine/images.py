"""Image tensors as the engine moves them between scales: RGB views, resizing, and the
upsampling guided by the content's edges."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from artstyle.resample import area_resize


def as_rgb(image: torch.Tensor) -> torch.Tensor:
    """A one-channel (luminance) image repeated into three channels; RGB unchanged."""
    return image.expand(-1, 3, -1, -1) if image.shape[1] == 1 else image


def resize_image(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """An (N, C, H, W) image at a new size: area averaging down (:func:`~artstyle.resample.area_resize`,
    as ``F.interpolate(mode="area")``), bicubic up; in [0, 1]."""
    if image.shape[2:] == (height, width):
        return image
    if image.shape[2] >= height and image.shape[3] >= width:
        return area_resize(image, height, width)
    return F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)


#: The guided upsampling's window radius, in pixels of the smaller picture (a 5x5 window).
GUIDE_RADIUS = 2
#: Its regulariser, in squared [0, 1] units: the guide's variations much below
#: sqrt(GUIDE_EPS) (about 8 levels of 255) within a window count as flat.
GUIDE_EPS = 1e-3


def box_mean(image: torch.Tensor, radius: int) -> torch.Tensor:
    """The mean of every (2 radius + 1)-square window of an (N, C, H, W) image, the edges
    repeated outwards; the same size as the image."""
    padded = F.pad(image, (radius, radius, radius, radius), mode="replicate")
    return F.avg_pool2d(padded, 2 * radius + 1, stride=1)


def guided_upsample(
    image: torch.Tensor,
    guide: torch.Tensor,
    radius: int = GUIDE_RADIUS,
    eps: float = GUIDE_EPS,
) -> torch.Tensor:
    """``image`` (N, C, h, w) upsampled to the size of ``guide`` (N, 1, H, W), the edges
    taken from the guide: the fast guided filter of He and Sun (2015).

    In every window of the small picture, each channel is fitted as a linear function
    ``a * g + b`` of the guide shrunk to that size (least squares, ``a`` damped by
    ``eps``); ``a`` and ``b``, averaged over the windows and upsampled bilinearly, are
    applied to the guide at full size. Where the picture follows the guide (the photo's
    outlines, kept by the content loss), the guide's sharp edges come back, which plain
    bicubic upsampling blurs; where it does not (painted texture), ``a`` is small and
    the result is the smooth upsampled picture. In [0, 1]. A picture not smaller than the
    guide is only resized (:func:`resize_image`).
    """
    height, width = guide.shape[2:]
    if image.shape[2] >= height and image.shape[3] >= width:
        return resize_image(image, height, width)
    small = resize_image(guide, image.shape[2], image.shape[3])
    mean_guide, mean_image = box_mean(small, radius), box_mean(image, radius)
    covariance = box_mean(small * image, radius) - mean_guide * mean_image
    variance = box_mean(small * small, radius) - mean_guide * mean_guide
    a = covariance / (variance + eps)
    b = mean_image - a * mean_guide
    a, b = (
        F.interpolate(box_mean(v, radius), size=(height, width), mode="bilinear", align_corners=False) for v in (a, b)
    )
    return (a * guide + b).clamp(0, 1)
