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
* mean and covariance (``meancov``): the squared 2-Wasserstein distance between
  Gaussians fitted to the feature vectors of the two images,
  ``|m - m_t|^2 + tr(S) + tr(S_t) - 2 tr((S_t^(1/2) S S_t^(1/2))^(1/2))``, divided by
  C so it is a per-channel figure; S is the covariance over positions.

Relative normalisation (``normalization="relative"``, the default of a run): the
objective divides each content layer's loss by :func:`content_scale` of its target,
the mean square of the target features, and each style layer's by :func:`style_scale`
of its target, the mean square of the target Gram matrix (for ``meancov``: the mean
squared feature, E|f|^2 / C, the distance of the target from zero). Each term is then a
relative squared error, independent of the layer's and the image's own magnitudes, so
every style layer counts alike; without it the layers with the largest Gram values
(relu4_1's are about a thousand times relu1_1's, twenty thousand times relu5_1's) make
up nearly all of the style loss. ``absolute`` keeps neural-style's figures as above.

Masks (Gatys et al. 2017, guided Gram matrices): a mask (N|1, 1, H, W) of weights in
[0, 1] at the features' resolution weights every position. The masked Gram matrix is
``(F m)(F m)^T / (C * sum(m^2))`` and the masked mean and covariance use the weights
``m / sum(m)``, so a mask of ones gives the unmasked figures. A masked content loss is
``mean(m * (F - P)^2)``: black areas do not count, white ones count as without a mask.

The modules hold their precomputed target as a buffer and are created once per
target, so a run never recomputes the content or style targets.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from artstyle.choices import STYLE_LOSSES
from artstyle.linalg import sqrtm, trace_sqrtm
from artstyle.resample import area_resize


def _check_features(features: torch.Tensor, name: str) -> None:
    if features.dim() != 4:
        raise ValueError(f"{name}: expected features of shape (N, C, H, W), got {tuple(features.shape)}")


def _check_mask(mask: torch.Tensor, features: torch.Tensor, name: str) -> None:
    if (
        mask.dim() != 4
        or mask.shape[1] != 1
        or mask.shape[0] not in (1, features.shape[0])
        or mask.shape[2:] != features.shape[2:]
    ):
        raise ValueError(
            f"{name}: expected a mask of shape (1, 1, {features.shape[2]}, {features.shape[3]}), "
            f"got {tuple(mask.shape)}"
        )


def resize_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A (N, 1, H, W) mask brought to (height, width) by area averaging (bilinear when growing)."""
    if mask.shape[2:] == (height, width):
        return mask
    if mask.shape[2] >= height and mask.shape[3] >= width:
        return area_resize(mask, height, width)
    return F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False).clamp(0, 1)


class _SelfProduct(torch.autograd.Function):
    """``X @ X^T`` for (N, C, M) ``X``, with a backward of one product instead of
    autograd's two: the gradient of ``X X^T`` against ``G`` is ``(G + G^T) X``, where
    ``torch.bmm``'s backward multiplies by ``X`` once for each factor. At 512 px the five
    style layers' Gram matrices, forward and backward, take about a fifth of an fp32
    iteration with autograd's; this takes a third of that off (docs/decisions.md, Speed)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, flat: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(flat)
        return torch.bmm(flat, flat.transpose(1, 2))

    @staticmethod
    @once_differentiable
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (flat,) = ctx.saved_tensors  # type: ignore[attr-defined]
        both = grad + grad.transpose(1, 2)
        if flat.stride(1) == 1 and flat.shape[1] > 1:  # channels last: the gradient laid out alike
            return torch.bmm(flat.transpose(1, 2), both).transpose(1, 2)
        return torch.bmm(both, flat)


def gram_matrix(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(N, C, H, W) features -> (N, C, C) Gram matrices, divided by C*H*W (or by C*sum(m^2))."""
    _check_features(features, "gram_matrix")
    n, c, h, w = features.shape
    if mask is not None:
        _check_mask(mask, features, "gram_matrix")
        features = features * mask
        count = mask.pow(2).sum(dim=(1, 2, 3)).clamp_min(1e-8).expand(n).reshape(n, 1, 1)
    else:
        count = torch.full((n, 1, 1), float(h * w), dtype=features.dtype, device=features.device)
    flat = features.reshape(n, c, h * w)  # (N, C, HW)
    product: torch.Tensor = _SelfProduct.apply(flat)  # type: ignore[no-untyped-call]
    return product / (c * count)


def content_loss(features: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error between (N, C, H, W) features and their target (same shape),
    each position weighted by ``mask`` when given."""
    if features.shape != target.shape:
        raise ValueError(f"content_loss: expected target of shape {tuple(features.shape)}, got {tuple(target.shape)}")
    if mask is None:
        return F.mse_loss(features, target)
    _check_mask(mask, features, "content_loss")
    return (mask * (features - target).pow(2)).mean()


def style_loss(features: torch.Tensor, target_gram: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error between the (masked) Gram matrix of (N, C, H, W) features and a (N|1, C, C) target."""
    gram = gram_matrix(features, mask)
    if (
        target_gram.dim() != 3
        or target_gram.shape[0] not in (1, gram.shape[0])
        or target_gram.shape[1:] != gram.shape[1:]
    ):
        raise ValueError(
            f"style_loss: expected a target Gram of shape {tuple(gram.shape)}, got {tuple(target_gram.shape)}"
        )
    return F.mse_loss(gram, target_gram.expand_as(gram))


@dataclass(frozen=True)
class FeatureStats:
    """First and second moments of feature vectors over positions: ``mean`` (N, C) and
    ``second_moment`` (N, C, C) = E[f f^T]. Both blend linearly, so the statistics of a
    blend of styles are the weighted sums of theirs (those of the mixture)."""

    mean: torch.Tensor
    second_moment: torch.Tensor

    @property
    def gram(self) -> torch.Tensor:
        """The Gram matrix of :func:`gram_matrix`: E[f f^T] / C."""
        return self.second_moment / self.second_moment.shape[-1]

    @property
    def covariance(self) -> torch.Tensor:
        return self.second_moment - self.mean.unsqueeze(-1) * self.mean.unsqueeze(-2)

    def scaled(self, weight: float) -> FeatureStats:
        return FeatureStats(self.mean * weight, self.second_moment * weight)

    def __add__(self, other: FeatureStats) -> FeatureStats:
        return FeatureStats(self.mean + other.mean, self.second_moment + other.second_moment)

    def to(self, device: torch.device) -> FeatureStats:
        return FeatureStats(self.mean.to(device), self.second_moment.to(device))

    def __iter__(self) -> Iterator[torch.Tensor]:
        """The two tensors, mean first."""
        return iter((self.mean, self.second_moment))


def feature_stats(features: torch.Tensor, mask: torch.Tensor | None = None) -> FeatureStats:
    """The (mask-weighted) mean and second moment of (N, C, H, W) features over positions."""
    _check_features(features, "feature_stats")
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    if mask is None:
        weights = flat.new_full((1, 1, h * w), 1.0 / (h * w))
    else:
        _check_mask(mask, features, "feature_stats")
        m = mask.reshape(mask.shape[0], 1, h * w)
        weights = m / m.sum(dim=2, keepdim=True).clamp_min(1e-8)
    mean = (flat * weights).sum(dim=2)
    second = torch.bmm(flat * weights, flat.transpose(1, 2))
    return FeatureStats(mean, second)


@dataclass(frozen=True)
class MeanCovTarget:
    """A style target for :func:`meancov_loss`: mean (N, C), covariance root (N, C, C), trace (N,)."""

    mean: torch.Tensor
    cov_sqrt: torch.Tensor
    cov_trace: torch.Tensor

    @classmethod
    def from_stats(cls, stats: FeatureStats) -> MeanCovTarget:
        cov = stats.covariance.detach()
        return cls(stats.mean.detach(), sqrtm(cov), torch.diagonal(cov, dim1=-2, dim2=-1).sum(-1))


def meancov_loss(features: torch.Tensor, target: MeanCovTarget, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Squared 2-Wasserstein distance between Gaussian fits of the features and the target, / C.

    Averaged over the batch. The matrix root is taken in float64 (:mod:`artstyle.linalg`).
    """
    return meancov_distance(feature_stats(features, mask), target)


def meancov_distance(stats: FeatureStats, target: MeanCovTarget) -> torch.Tensor:
    """:func:`meancov_loss` from the features' statistics (for features seen in parts)."""
    c = stats.mean.shape[1]
    if target.cov_sqrt.shape[-1] != c:
        raise ValueError(f"meancov_loss: expected a target with {c} channels, got {target.cov_sqrt.shape[-1]}")
    cov = stats.covariance
    mean_term = (stats.mean - target.mean).pow(2).sum(dim=1)
    cross = target.cov_sqrt @ cov @ target.cov_sqrt
    trace = torch.diagonal(cov, dim1=-2, dim2=-1).sum(-1)
    cov_term = trace + target.cov_trace - 2 * trace_sqrtm(cross)
    return ((mean_term + cov_term.clamp_min(0)) / c).mean()


def content_scale(target: torch.Tensor) -> float:
    """The mean square of content target features: the relative normalisation's divisor."""
    return max(float(target.detach().pow(2).mean()), 1e-12)


def style_scale(target: FeatureStats, kind: str = "gram") -> float:
    """The relative normalisation's divisor of a style target: the mean square of its Gram
    matrix (``gram``), or its mean squared feature per channel, E|f|^2 / C (``meancov``)."""
    if kind == "gram":
        return max(float(target.gram.detach().pow(2).mean()), 1e-12)
    second = target.second_moment.detach()
    return max(float(torch.diagonal(second, dim1=-2, dim2=-1).sum(-1).mean()) / second.shape[-1], 1e-12)


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Squared total variation of an (N, C, H, W) image: mean(dx^2) + mean(dy^2)."""
    _check_features(image, "tv_loss")
    dx = image[..., :, 1:] - image[..., :, :-1]  # (N, C, H, W-1)
    dy = image[..., 1:, :] - image[..., :-1, :]  # (N, C, H-1, W)
    zero = image.new_zeros(())
    return (dx.pow(2).mean() if dx.numel() else zero) + (dy.pow(2).mean() if dy.numel() else zero)


def temporal_loss(image: torch.Tensor, previous: torch.Tensor, certainty: torch.Tensor) -> torch.Tensor:
    """Ruder et al.'s (2016) short-term temporal loss: the certainty-weighted squared
    difference between an (N, C, H, W) image in [0, 1] and the previous output warped
    onto it, ``sum(c * (x - w)^2) / (N*C*H*W)``; ``certainty`` (N, 1, H, W) in [0, 1]
    is 0 where the flow is unreliable (disocclusions, motion boundaries, outside the
    frame). Their weight of 1e3 is on 0-255 pixels minus the ImageNet mean."""
    _check_features(image, "temporal_loss")
    if previous.shape != image.shape or certainty.shape != (image.shape[0], 1, *image.shape[2:]):
        got = f"{tuple(previous.shape)} and {tuple(certainty.shape)}"
        raise ValueError(f"temporal_loss: expected a previous image of {tuple(image.shape)} and a certainty, got {got}")
    return (certainty * (image - previous).pow(2)).mean()


def neighbour_difference(image: torch.Tensor) -> torch.Tensor:
    """The mean absolute difference between horizontally and vertically neighbouring
    pixels of an (N, C, H, W) image, over all of them: its fine-grain energy, in the
    image's units (``benchmarks/evaluation.py``'s noise figure)."""
    _check_features(image, "neighbour_difference")
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs()
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs()
    count = dx.numel() + dy.numel()
    return (dx.sum() + dy.sum()) / max(count, 1)


def tv_scale(styles: Sequence[torch.Tensor], blend: Sequence[float]) -> float:
    """The relative normalisation's divisor of the TV weight: the style images' mean
    absolute neighbour difference (:func:`neighbour_difference`), averaged by the blend
    weights, at least 1e-3.

    A smooth painting (little fine grain of its own) gets a larger TV weight, a finely
    textured one a smaller: measured on the quality set, a fixed weight that kept Seated
    Nude as smooth as neural-style's picture erased The Starry Night's brushwork. The
    mean absolute difference is the measure the noise figure uses; dividing by it, rather
    than by the root-mean-square difference, gives The Shipwreck (whose differences have a
    heavier tail) 13% more of the weight relative to The Scream, 17% relative to The
    Starry Night: its picture was the one over neural-style's noise figure.
    """
    total = sum(blend)
    mean = sum(float(neighbour_difference(style.detach())) * w / total for style, w in zip(styles, blend, strict=True))
    return max(mean, 1e-3)


class ContentLoss(nn.Module):
    """:func:`content_loss` against a fixed target (and optional mask), stored as buffers."""

    target: torch.Tensor
    mask: torch.Tensor | None

    def __init__(self, target: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("target", target.detach().clone())
        self.register_buffer("mask", None if mask is None else mask.detach().clone())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return content_loss(features, self.target, self.mask)


class StyleLoss(nn.Module):
    """A style loss against fixed target statistics, with an optional mask (buffers).

    ``kind`` is ``"gram"`` (:func:`style_loss`; the target may be given as a Gram matrix)
    or ``"meancov"`` (:func:`meancov_loss`; the target root is computed once, here).
    """

    target: torch.Tensor
    cov_sqrt: torch.Tensor
    cov_trace: torch.Tensor
    mask: torch.Tensor | None

    def __init__(
        self, target: torch.Tensor | FeatureStats, mask: torch.Tensor | None = None, kind: str = "gram"
    ) -> None:
        super().__init__()
        if kind not in STYLE_LOSSES:
            raise ValueError(f"unknown style loss {kind!r}; expected one of {', '.join(STYLE_LOSSES)}")
        self.kind = kind
        self.register_buffer("mask", None if mask is None else mask.detach().clone())
        if kind == "gram":
            gram = target.gram if isinstance(target, FeatureStats) else target
            self.register_buffer("target", gram.detach().clone())
        else:
            if not isinstance(target, FeatureStats):
                raise ValueError("the meancov style loss needs FeatureStats as its target")
            mc = MeanCovTarget.from_stats(target)
            self.register_buffer("target", mc.mean.clone())
            self.register_buffer("cov_sqrt", mc.cov_sqrt.clone())
            self.register_buffer("cov_trace", mc.cov_trace.clone())

    @classmethod
    def from_features(cls, features: torch.Tensor, kind: str = "gram") -> StyleLoss:
        with torch.no_grad():
            return cls(feature_stats(features), kind=kind)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.kind == "gram":
            return style_loss(features, self.target, self.mask)
        target = MeanCovTarget(self.target, self.cov_sqrt, self.cov_trace)
        return meancov_loss(features, target, self.mask)

    def from_stats(self, stats: FeatureStats) -> torch.Tensor:
        """The loss given the statistics of the features instead of the features (the mask,
        if any, already applied as :func:`feature_stats` and :func:`gram_matrix` do)."""
        if self.kind == "gram":
            gram = stats.gram
            return F.mse_loss(gram, self.target.expand_as(gram))
        return meancov_distance(stats, MeanCovTarget(self.target, self.cov_sqrt, self.cov_trace))


class TVLoss(nn.Module):
    """:func:`tv_loss` as a module."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return tv_loss(image)


def palette_directions(count: int = 16) -> torch.Tensor:
    """``count`` unit vectors in RGB (3, count), the same on every run (a fixed seed): the
    directions of :func:`palette_loss`."""
    units = torch.randn(3, count, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    unit: torch.Tensor = units / units.norm(dim=0)
    return unit.to(torch.float32)


def palette_quantiles(pixels: torch.Tensor, mass: torch.Tensor, directions: torch.Tensor, count: int) -> torch.Tensor:
    """The ``count`` evenly spaced quantiles (at (i + 1/2) / count) of (3, M) ``pixels``,
    weighted by ``mass`` (M,), projected on each of ``directions`` (3, K): (K, count)."""
    projected = directions.T.to(pixels) @ pixels  # (K, M)
    ordered, order = projected.sort(dim=1)
    cumulative = (mass / mass.sum()).to(pixels).expand(order.shape[0], -1).gather(1, order).cumsum(dim=1)  # (K, M)
    levels = (torch.arange(count, dtype=pixels.dtype, device=pixels.device) + 0.5) / count
    index = torch.searchsorted(cumulative, levels.repeat(ordered.shape[0], 1))
    return ordered.gather(1, index.clamp(max=ordered.shape[1] - 1))


#: The bins of each direction's histogram in :func:`palette_loss`.
PALETTE_BINS = 2048


def palette_loss(image: torch.Tensor, target: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """The sliced squared 2-Wasserstein distance between the pixel colours of a (1, 3, H, W)
    image and a target distribution given by its quantiles along ``directions`` (3, K)
    (``target`` (K, H*W), :func:`palette_quantiles`): the mean over directions and pixels
    of (projection - the target quantile at its rank)^2, in [0, 1] units.

    Each pixel's rank comes from a histogram of its direction's projections
    (:data:`PALETTE_BINS` bins, linear within a bin) instead of a sort, and the target at
    a fractional rank is interpolated: the value and gradient of the sorted version to
    about 1e-4, at under half of its cost (43-65 ms against 150 at 512x384, forward and
    backward; the sort of 16 x 196k projections was 6% of a 512-px objective). The
    gradient treats the matched quantiles as fixed, as the sort's does."""
    _check_features(image, "palette_loss")
    projected = (directions.T.to(image) @ image[0].reshape(3, -1)).float()  # (K, H*W)
    with torch.no_grad():
        matched = _quantile_at_rank(projected, target)
    return (projected - matched).pow(2).mean()


def _quantile_at_rank(projected: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """For each of the (K, N) ``projected`` values, ``target`` (K, N, ascending) at its rank
    in its row, the rank read from a histogram of the row."""
    rows, count = projected.shape
    low = projected.min(dim=1, keepdim=True).values
    width = ((projected.max(dim=1, keepdim=True).values - low) / PALETTE_BINS).clamp_min(1e-12)
    position = (projected - low) / width
    index = position.floor().clamp_(0, PALETTE_BINS - 1)
    bins = index.long()
    flat = bins + torch.arange(rows, device=bins.device).unsqueeze(1) * PALETTE_BINS
    # a one-dimensional scatter_add_, not bincount: of a fixed size, and deterministic on CUDA
    counts = projected.new_zeros(rows * PALETTE_BINS)
    counts = counts.scatter_add_(0, flat.reshape(-1), torch.ones_like(projected).reshape(-1))
    counts = counts.reshape(rows, PALETTE_BINS)
    below = counts.cumsum(dim=1) - counts
    in_bin = counts.gather(1, bins)
    # the place within the bin, as if its values were spread evenly: exact for a bin of one
    within = torch.minimum(((position - index) * in_bin - 0.5).clamp_(min=0), in_bin - 1)
    rank = (below.gather(1, bins) + within).clamp_(0, count - 1)
    lower = rank.floor()
    fraction = rank - lower
    lower_index = lower.long()
    upper_index = (lower_index + 1).clamp_(max=count - 1)
    target = target.to(projected)
    return torch.lerp(target.gather(1, lower_index), target.gather(1, upper_index), fraction)
