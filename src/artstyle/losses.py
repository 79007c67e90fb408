"""The three losses of Gatys et al. (2016), as pure functions and thin modules.

Normalisation (the classic implementations disagree, so ours is stated here):

* content: mean squared error of the features, averaged over all N*C*H*W elements,
  as jcjohnson/neural-style does; independent of image size.
* Gram matrix: ``F @ F.T / (C*H*W)`` for features F of shape (C, H*W), so it is the
  channel co-activation averaged over positions (and over channels), independent of
  image size; again neural-style's choice, which makes its published weights
  (content 5, style 100) meaningful here too.
* style: mean squared error between Gram matrices, averaged over the C*C entries.
  Gatys et al. use ``sum((G - A)^2) / (4 C^2 (HW)^2)`` with an unnormalised Gram; ours
  is theirs times ``4 / C^2``, which gives the deep (wide) layers less weight.
* total variation: mean of the squared differences between horizontally and
  vertically neighbouring pixels of the RGB image in [0, 1] (the L2, or "squared",
  stencil), i.e. ``mean(dx^2) + mean(dy^2)``.

The modules hold their precomputed target as a buffer and are created once per
target, so a run never recomputes the content or style targets.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _check_features(features: torch.Tensor, name: str) -> None:
    if features.dim() != 4:
        raise ValueError(f"{name}: expected features of shape (N, C, H, W), got {tuple(features.shape)}")


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) features -> (N, C, C) Gram matrices, divided by C*H*W."""
    _check_features(features, "gram_matrix")
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)  # (N, C, HW)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between (N, C, H, W) features and their target (same shape)."""
    if features.shape != target.shape:
        raise ValueError(f"content_loss: expected target of shape {tuple(features.shape)}, got {tuple(target.shape)}")
    return F.mse_loss(features, target)


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the Gram matrix of (N, C, H, W) features and a (N|1, C, C) target."""
    gram = gram_matrix(features)
    if (
        target_gram.dim() != 3
        or target_gram.shape[0] not in (1, gram.shape[0])
        or target_gram.shape[1:] != gram.shape[1:]
    ):
        raise ValueError(
            f"style_loss: expected a target Gram of shape {tuple(gram.shape)}, got {tuple(target_gram.shape)}"
        )
    return F.mse_loss(gram, target_gram.expand_as(gram))


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Squared total variation of an (N, C, H, W) image: mean(dx^2) + mean(dy^2)."""
    _check_features(image, "tv_loss")
    dx = image[..., :, 1:] - image[..., :, :-1]  # (N, C, H, W-1)
    dy = image[..., 1:, :] - image[..., :-1, :]  # (N, C, H-1, W)
    zero = image.new_zeros(())
    return (dx.pow(2).mean() if dx.numel() else zero) + (dy.pow(2).mean() if dy.numel() else zero)


class ContentLoss(nn.Module):
    """:func:`content_loss` against a fixed target, stored as a buffer."""

    target: torch.Tensor

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target.detach().clone())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return content_loss(features, self.target)


class StyleLoss(nn.Module):
    """:func:`style_loss` against a fixed target Gram matrix, stored as a buffer."""

    target: torch.Tensor

    def __init__(self, target_gram: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target_gram.detach().clone())

    @classmethod
    def from_features(cls, features: torch.Tensor) -> StyleLoss:
        with torch.no_grad():
            return cls(gram_matrix(features))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return style_loss(features, self.target)


class TVLoss(nn.Module):
    """:func:`tv_loss` as a module."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return tv_loss(image)
