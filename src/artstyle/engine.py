"""The optimisation: an objective that reports its parts, and loops that do no I/O.

Gatys et al. (2016) optimise the pixels of the generated image against
``content_weight * L_content + style_weight * sum_l w_l L_style,l + tv_weight * L_tv``.
:class:`Objective` computes that sum and its named breakdown, with the controls of
Gatys et al. (2017): style per region (guided Gram matrices), a content mask, and a
choice of style loss. :func:`optimize` runs L-BFGS or Adam on the image at one size;
:func:`optimize_stages` runs it coarse to fine over a pyramid of sizes
(:func:`plan_stages`). Both call back with a frozen :class:`Progress` after every step.
Nothing here reads or writes files or prints: progress bars, previews and checkpoints
are consumers of :class:`Progress`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from artstyle.features.vgg import VGG19Features
from artstyle.losses import ContentLoss, FeatureStats, StyleLoss, TVLoss, feature_stats, resize_mask


@dataclass(frozen=True)
class Progress:
    """One step of a run, as seen by its consumers.

    ``losses`` holds the weighted terms of the objective at the image *before* the
    step: ``content``, ``style:<layer>`` for each style layer, ``style`` (their sum),
    ``tv`` and ``total``. ``image`` is a detached copy of the image after the step,
    (1, 3, H, W) RGB in [0, 1], safe to keep; during a multi-scale run it has the size
    of the current ``scale`` (1-based, of ``scales``). ``step`` counts over all scales,
    up to ``iterations``, the total.
    """

    step: int
    iterations: int
    losses: Mapping[str, float]
    image: torch.Tensor
    scale: int = 1
    scales: int = 1


ProgressCallback = Callable[[Progress], None]


def as_rgb(image: torch.Tensor) -> torch.Tensor:
    """A one-channel (luminance) image repeated into three channels; RGB unchanged."""
    return image.expand(-1, 3, -1, -1) if image.shape[1] == 1 else image


class Objective(nn.Module):
    """The weighted sum of content, style and total-variation losses for fixed targets.

    Targets are computed once, under ``no_grad``, when the objective is built. Images
    are (1, 3, H, W) RGB or (1, 1, H, W) luminance (repeated into RGB for the network),
    values in [0, 1].

    Without ``style_masks`` the style target is a blend of the style images' feature
    statistics with the blend weights ``b`` normalised to sum to 1 (neural-style's
    ``-style_blend_weights``; for the Gram loss that is the blend of the Gram matrices).

    With ``style_masks`` (one (1, 1, H, W) mask in [0, 1] per style image, at the
    image's size) style image ``i`` is the target of region ``i`` only (guided Gram
    matrices, Gatys et al. 2017). Where masks overlap they are divided by their sum, so
    the styles share the pixel; where they add up to less than 1 the style loss has
    less (or, for black everywhere, no) hold and the content dominates. The loss of
    region ``i`` is weighted by its area (the mean of its mask) and by ``b_i`` scaled
    so that equal blend weights are 1 each: full coverage weighs like the unmasked loss.

    ``content_mask`` (1, 1, H, W) weights the content loss per position.
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
        style_loss: str = "gram",
        style_masks: Sequence[torch.Tensor] | None = None,
        content_mask: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.content_weights = {name: content_weight * w for name, w in content_layers}
        self.style_weights = {name: style_weight * w for name, w in style_layers}
        self.tv_weight = tv_weight
        blend = list(style_blend) if style_blend is not None else [1.0] * len(style_images)
        if len(blend) != len(style_images):
            raise ValueError(f"{len(blend)} blend weights for {len(style_images)} style images")
        if style_masks is not None and len(style_masks) != len(style_images):
            raise ValueError(f"{len(style_masks)} style masks for {len(style_images)} style images")
        total = sum(blend)
        with torch.no_grad():
            content_features = net(as_rgb(content_image))
            self.content_losses = nn.ModuleDict(
                {
                    name: ContentLoss(content_features[name], self._mask_at(content_mask, content_features[name]))
                    for name in self.content_weights
                }
            )
            stats = [{name: feature_stats(f) for name, f in net(as_rgb(image)).items()} for image in style_images]
            # One list of (loss, weight) per style layer: a single blended target, or one per region.
            regions: dict[str, list[tuple[StyleLoss, float]]] = {}
            for name in self.style_weights:
                shape = content_features[name] if name in content_features else net(as_rgb(content_image))[name]
                if style_masks is None:
                    blended = _blend([s[name] for s in stats], [b / total for b in blend])
                    regions[name] = [(StyleLoss(blended, kind=style_loss), 1.0)]
                else:
                    masks = _normalised_masks([self._mask_at(m, shape) for m in style_masks])
                    regions[name] = [
                        (StyleLoss(s[name], mask=m, kind=style_loss), float(m.mean()) * b * len(blend) / total)
                        for s, m, b in zip(stats, masks, blend, strict=True)
                    ]
        self.style_losses = nn.ModuleDict(
            {name: nn.ModuleList([loss for loss, _ in pairs]) for name, pairs in regions.items()}
        )
        self.region_weights = {name: [w for _, w in pairs] for name, pairs in regions.items()}
        self.tv_loss = TVLoss()

    @staticmethod
    def _mask_at(mask: torch.Tensor | None, features: torch.Tensor) -> torch.Tensor | None:
        if mask is None:
            return None
        return resize_mask(mask.to(features.dtype).to(features.device), features.shape[2], features.shape[3])

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its weighted parts for an (1, 3|1, H, W) image in [0, 1]."""
        features = self.net(as_rgb(image))
        parts: dict[str, torch.Tensor] = {}
        content = image.new_zeros(())
        for name, weight in self.content_weights.items():
            content = content + weight * self.content_losses[name](features[name])
        parts["content"] = content
        style = image.new_zeros(())
        for name, weight in self.style_weights.items():
            losses = cast(nn.ModuleList, self.style_losses[name])
            layer = image.new_zeros(())
            for loss, region_weight in zip(losses, self.region_weights[name], strict=True):
                if region_weight:
                    layer = layer + region_weight * loss(features[name])
            parts[f"style:{name}"] = weight * layer
            style = style + parts[f"style:{name}"]
        parts["style"] = style
        parts["tv"] = self.tv_weight * self.tv_loss(image)
        total = content + style + parts["tv"]
        parts["total"] = total
        return total, parts


def _blend(stats: Sequence[FeatureStats], weights: Sequence[float]) -> FeatureStats:
    result = stats[0].scaled(weights[0])
    for s, w in zip(stats[1:], weights[1:], strict=True):
        result = result + s.scaled(w)
    return result


def _normalised_masks(masks: Sequence[torch.Tensor | None]) -> list[torch.Tensor]:
    """Masks divided by their sum where it exceeds 1 (overlaps share), unchanged elsewhere."""
    stack = torch.cat([cast(torch.Tensor, m).clamp(0, 1) for m in masks], dim=0)  # (S, 1, H, W)
    total = stack.sum(dim=0, keepdim=True).clamp_min(1.0)
    return list(torch.split(stack / total, 1, dim=0))


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


Render = Callable[[torch.Tensor], torch.Tensor]


def optimize(
    objective: Objective,
    init: torch.Tensor,
    *,
    iterations: int,
    optimizer: str = "lbfgs",
    learning_rate: float = 1.0,
    callback: ProgressCallback | None = None,
    warmup: bool = True,
    render: Render | None = None,
    first_step: int = 1,
    total_iterations: int | None = None,
    scale: int = 1,
    scales: int = 1,
) -> torch.Tensor:
    """Optimise an image from ``init`` and return it, (1, C, H, W) in [0, 1].

    ``lbfgs`` spends its first :data:`LBFGS_WARMUP_STEPS` iterations on Adam (see above)
    unless ``warmup`` is false. After every step the image is clamped to [0, 1] (the
    valid range) and ``callback`` receives a :class:`Progress` whose image is
    ``render(image)`` (default: the image itself, as RGB). ``first_step``,
    ``total_iterations``, ``scale`` and ``scales`` place this run inside a multi-scale
    one. An exception raised by the callback (for example ``KeyboardInterrupt``) ends
    the run; the callback has already seen the last image.
    """
    image = init.detach().clone(memory_format=torch.contiguous_format).clamp_(0, 1).requires_grad_(True)
    adam_steps = min(LBFGS_WARMUP_STEPS, iterations - 1) if optimizer == "lbfgs" and warmup else 0
    if adam_steps:
        opt = make_optimizer("adam", image, LBFGS_WARMUP_LR)
    else:
        opt = make_optimizer(optimizer, image, learning_rate)
    parts: dict[str, torch.Tensor] = {}
    show = render if render is not None else as_rgb
    total = total_iterations if total_iterations is not None else first_step + iterations - 1

    def closure() -> torch.Tensor:
        nonlocal parts
        opt.zero_grad(set_to_none=True)
        result: tuple[torch.Tensor, dict[str, torch.Tensor]] = objective(image)
        loss, parts = result
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    for step in range(1, iterations + 1):
        if adam_steps and step == adam_steps + 1:
            opt = make_optimizer(optimizer, image, learning_rate)
        opt.step(cast(Callable[[], float], closure))
        with torch.no_grad():
            image.clamp_(0, 1)
        if callback is not None:
            losses = {name: float(value.detach()) for name, value in parts.items()}
            with torch.no_grad():
                shown = show(image.detach()).clone()
            callback(Progress(first_step + step - 1, total, losses, shown, scale, scales))
    return image.detach()


@dataclass(frozen=True)
class Stage:
    """One scale of a coarse-to-fine run: the image size and the iterations spent there."""

    height: int
    width: int
    iterations: int


def stage_sizes(height: int, width: int, *, min_size: int, factor: float, min_side: int = 1) -> list[tuple[int, int]]:
    """Sizes from coarse to fine: the full size divided by ``factor`` again and again while
    the long side stays at least ``min_size`` and the short side at least ``min_side``."""
    long = max(height, width)
    sizes = [(height, width)]
    k = 1
    while factor > 1:
        side = long / factor**k
        h, w = round(height * side / long), round(width * side / long)
        if round(side) < min_size or min(h, w) < min_side or (h, w) == sizes[-1]:
            break
        sizes.append((h, w))
        k += 1
    return sizes[::-1]


def plan_stages(
    height: int,
    width: int,
    *,
    iterations: int,
    min_size: int,
    factor: float,
    min_side: int = 1,
) -> list[Stage]:
    """The stages of a coarse-to-fine run over :func:`stage_sizes` (a single stage when
    ``factor`` is 1), with ``iterations`` at each."""
    sizes = stage_sizes(height, width, min_size=min_size, factor=factor, min_side=min_side)
    return [Stage(h, w, iterations) for h, w in sizes]


def resize_image(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """An (N, C, H, W) image at a new size: area averaging down, bicubic up; in [0, 1]."""
    if image.shape[2:] == (height, width):
        return image
    if image.shape[2] >= height and image.shape[3] >= width:
        return F.interpolate(image, size=(height, width), mode="area")
    return F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)


def optimize_stages(
    stages: Sequence[Stage],
    objective_for: Callable[[int, Stage], Objective],
    init: torch.Tensor,
    *,
    optimizer: str = "lbfgs",
    learning_rate: float = 1.0,
    callback: ProgressCallback | None = None,
    render_for: Callable[[int, Stage], Render] | None = None,
    detail_for: Callable[[int, Stage], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Optimise coarse to fine: ``init`` is resized to the first stage, each result is
    upsampled to start the next, and ``objective_for(index, stage)`` builds that stage's
    objective (targets re-computed at its size). ``detail_for(index, stage)``, when given,
    is added to the upsampled image of every later stage: the detail that upsampling
    cannot restore (for example the content's own, as a Laplacian pyramid keeps it).
    Only the first stage has the Adam warm-up: later ones start from a picture that is
    already stylized. Progress steps count over all stages. Returns the image at the last
    stage's size.
    """
    if not stages:
        raise ValueError("at least one stage is needed")
    total = sum(stage.iterations for stage in stages)
    image = init
    done = 0
    for index, stage in enumerate(stages):
        image = resize_image(image, stage.height, stage.width)
        if index and detail_for is not None:
            image = (image + detail_for(index, stage)).clamp(0, 1)
        objective = objective_for(index, stage)
        image = optimize(
            objective,
            image,
            iterations=stage.iterations,
            optimizer=optimizer,
            learning_rate=learning_rate,
            callback=callback,
            warmup=index == 0,
            render=render_for(index, stage) if render_for is not None else None,
            first_step=done + 1,
            total_iterations=total,
            scale=index + 1,
            scales=len(stages),
        )
        done += stage.iterations
        del objective
    return image
