"""The optimisation: an objective that reports its parts, and a loop that does no I/O.

Gatys et al. (2016) optimise the pixels of the generated image against
``content_weight * L_content + style_weight * sum_l w_l L_style,l + tv_weight * L_tv``.
:class:`Objective` computes that sum and its named breakdown; :func:`optimize` runs
L-BFGS or Adam on the image and calls back with a frozen :class:`Progress` after every
step. Nothing here reads or writes files or prints: progress bars, previews and
checkpoints are consumers of :class:`Progress`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from artstyle.features.vgg import VGG19Features
from artstyle.losses import ContentLoss, StyleLoss, TVLoss, gram_matrix


@dataclass(frozen=True)
class Progress:
    """One step of a run, as seen by its consumers.

    ``losses`` holds the weighted terms of the objective at the image *before* the
    step: ``content``, ``style:<layer>`` for each style layer, ``style`` (their sum),
    ``tv`` and ``total``. ``image`` is a detached copy of the image after the step,
    (1, 3, H, W) RGB in [0, 1], safe to keep.
    """

    step: int
    iterations: int
    losses: Mapping[str, float]
    image: torch.Tensor


ProgressCallback = Callable[[Progress], None]


class Objective(nn.Module):
    """The weighted sum of content, style and total-variation losses for fixed targets.

    Targets are computed once, under ``no_grad``, when the objective is built. The style
    target is the blend ``sum_i b_i * Gram(style_i)`` with the blend weights ``b``
    normalised to sum to 1 (neural-style's ``-style_blend_weights``).
    """

    def __init__(
        self,
        net: VGG19Features,
        content_image: torch.Tensor,
        style_images: Sequence[torch.Tensor],
        *,
        content_layers: Sequence[tuple[str, float]],
        style_layers: Sequence[tuple[str, float]],
        content_weight: float,
        style_weight: float,
        tv_weight: float,
        style_blend: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.content_weights = {name: content_weight * w for name, w in content_layers}
        self.style_weights = {name: style_weight * w for name, w in style_layers}
        self.tv_weight = tv_weight
        blend = list(style_blend) if style_blend is not None else [1.0] * len(style_images)
        total = sum(blend)
        with torch.no_grad():
            content_features = net(content_image)
            self.content_losses = nn.ModuleDict(
                {name: ContentLoss(content_features[name]) for name in self.content_weights}
            )
            grams: dict[str, torch.Tensor] = {}
            for image, b in zip(style_images, blend, strict=True):
                features = net(image)
                for name in self.style_weights:
                    gram = gram_matrix(features[name]) * (b / total)  # (1, C, C)
                    grams[name] = grams[name] + gram if name in grams else gram
        self.style_losses = nn.ModuleDict({name: StyleLoss(gram) for name, gram in grams.items()})
        self.tv_loss = TVLoss()

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its weighted parts for an (1, 3, H, W) image in [0, 1]."""
        features = self.net(image)
        parts: dict[str, torch.Tensor] = {}
        content = image.new_zeros(())
        for name, weight in self.content_weights.items():
            content = content + weight * self.content_losses[name](features[name])
        parts["content"] = content
        style = image.new_zeros(())
        for name, weight in self.style_weights.items():
            parts[f"style:{name}"] = weight * self.style_losses[name](features[name])
            style = style + parts[f"style:{name}"]
        parts["style"] = style
        parts["tv"] = self.tv_weight * self.tv_loss(image)
        total = content + style + parts["tv"]
        parts["total"] = total
        return total, parts


# Departure from neural-style: L-BFGS without line search, started from the content
# image, overshoots wildly in its first steps (the style loss grows 100-fold before it
# recovers, some 70 iterations later). A few Adam steps first give it a sane start.
LBFGS_WARMUP_STEPS = 10
LBFGS_WARMUP_LR = 0.02


def make_optimizer(name: str, image: torch.Tensor, learning_rate: float) -> torch.optim.Optimizer:
    """L-BFGS takes one iteration per ``step`` (no line search, history 100, as neural-style)."""
    if name == "lbfgs":
        return torch.optim.LBFGS(
            [image], lr=learning_rate, max_iter=1, history_size=100, tolerance_grad=-1, tolerance_change=-1
        )
    if name == "adam":
        return torch.optim.Adam([image], lr=learning_rate)
    raise ValueError(f"unknown optimizer {name!r}")


def optimize(
    objective: Objective,
    init: torch.Tensor,
    *,
    iterations: int,
    optimizer: str = "lbfgs",
    learning_rate: float = 1.0,
    callback: ProgressCallback | None = None,
) -> torch.Tensor:
    """Optimise an image from ``init`` and return it, (1, 3, H, W) RGB in [0, 1].

    ``lbfgs`` spends its first :data:`LBFGS_WARMUP_STEPS` iterations on Adam (see above).
    After every step the image is clamped to [0, 1] (the valid range) and ``callback``
    receives a :class:`Progress`. An exception raised by the callback (for example
    ``KeyboardInterrupt``) ends the run; the callback has already seen the last image.
    """
    image = init.detach().clone(memory_format=torch.contiguous_format).clamp_(0, 1).requires_grad_(True)
    warmup = min(LBFGS_WARMUP_STEPS, iterations - 1) if optimizer == "lbfgs" else 0
    opt = make_optimizer("adam", image, LBFGS_WARMUP_LR) if warmup else make_optimizer(optimizer, image, learning_rate)
    parts: dict[str, torch.Tensor] = {}

    def closure() -> torch.Tensor:
        nonlocal parts
        opt.zero_grad(set_to_none=True)
        result: tuple[torch.Tensor, dict[str, torch.Tensor]] = objective(image)
        total, parts = result
        total.backward()  # type: ignore[no-untyped-call]
        return total

    for step in range(1, iterations + 1):
        if warmup and step == warmup + 1:
            opt = make_optimizer(optimizer, image, learning_rate)
        opt.step(cast(Callable[[], float], closure))
        with torch.no_grad():
            image.clamp_(0, 1)
        if callback is not None:
            losses = {name: float(value.detach()) for name, value in parts.items()}
            callback(Progress(step, iterations, losses, image.detach().clone()))
    return image.detach()
