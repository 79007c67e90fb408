"""Shrinking by area averaging, on every device.

``F.interpolate(mode="area")`` is adaptive average pooling: output pixel ``i`` of a side
of ``n`` shrunk to ``m`` is the mean of input pixels ``floor(i n / m)`` to
``ceil((i + 1) n / m) - 1``. Apple's MPS has pooled only sizes that divide in the
PyTorch releases artstyle supports; there the same means are taken as two matrix
products (rows, then columns), which MPS runs at any size. Everywhere else, and on MPS
when the sizes divide, it is PyTorch's own pooling.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from artstyle.device import is_mps


def area_resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """An (N, C, H, W) tensor shrunk to (height, width) by area averaging (see the module)."""
    in_height, in_width = image.shape[-2:]
    if not is_mps(image.device) or (in_height % height == 0 and in_width % width == 0):
        return F.adaptive_avg_pool2d(image, (height, width))
    rows = pooling_matrix(in_height, height, image)  # (height, H)
    columns = pooling_matrix(in_width, width, image)  # (width, W)
    return rows @ image @ columns.T


def pooling_matrix(size: int, out: int, like: torch.Tensor) -> torch.Tensor:
    """The (out, size) matrix whose row ``i`` averages adaptive pooling's window ``i``, on
    ``like``'s device and in its dtype."""
    index = torch.arange(out)
    start = index * size // out
    end = ((index + 1) * size + out - 1) // out
    inputs = torch.arange(size)
    inside = (inputs[None, :] >= start[:, None]) & (inputs[None, :] < end[:, None])
    return (inside.to(torch.float32) / (end - start)[:, None].to(torch.float32)).to(
        device=like.device, dtype=like.dtype
    )
