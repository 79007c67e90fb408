"""The optimisation: an objective that reports its parts, and loops that do no I/O.

Gatys et al. (2016) optimise the pixels of the generated image against
``content_weight * L_content + style_weight * sum_l w_l L_style,l + tv_weight * L_tv``.
:class:`Objective` computes that sum and its named breakdown, with the controls of
Gatys et al. (2017): style per region (guided Gram matrices), a content mask, and a
choice of style loss. :func:`optimize` runs L-BFGS or Adam on the image at one size;
:func:`optimize_stages` runs it coarse to fine over a pyramid of sizes
(:func:`plan_stages`). Both call back with a frozen :class:`Progress` after every step,
hand a :class:`RunState` to a checkpoint callback every N steps, continue from such a
state exactly as if they had not stopped, and raise
:class:`~artstyle.errors.DivergedError` when the loss, its gradient or the image stops
being finite. Nothing here reads or writes files or prints: progress bars, previews and
checkpoint files are consumers of :class:`Progress` and :class:`RunState`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

import torch
from torch import nn
from torch.nn import functional as F

from artstyle.errors import CheckpointError, DivergedError
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


@dataclass(frozen=True)
class RunState:
    """What a run needs to go on after iteration ``step`` exactly as if it had not stopped.

    ``scale`` (1-based) is the scale that iteration belongs to; ``image`` is a detached
    copy of the optimised tensor after it (before rendering: one channel for
    luminance-only transfer), at that scale's size. ``optimizer`` names the optimizer
    whose ``state_dict()`` is ``optimizer_state`` (``adam`` during L-BFGS's warm-up);
    both are None after the last iteration of a scale, since the next scale starts a
    fresh optimizer. The optimizer's tensors are its own, not copies: save or copy them
    during the checkpoint call. Nothing random happens after the starting image is made,
    so there is no random state to keep.
    """

    step: int
    scale: int
    image: torch.Tensor
    optimizer: str | None = None
    optimizer_state: dict[str, Any] | None = None


StateCallback = Callable[[RunState], None]


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
        blend = check_styles(style_images, style_blend, style_masks)
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
                masks = None if style_masks is None else [self._mask_at(m, shape) for m in style_masks]
                regions[name] = [
                    (StyleLoss(target, mask=mask, kind=style_loss), weight)
                    for target, mask, weight in style_targets([s[name] for s in stats], blend, masks)
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


def check_styles(
    style_images: Sequence[torch.Tensor],
    style_blend: Sequence[float] | None,
    style_masks: Sequence[torch.Tensor] | None,
) -> list[float]:
    """The blend weights (default: equal), after checking that there is one per style image,
    and one mask per style image when masks are given (ValueError otherwise)."""
    blend = list(style_blend) if style_blend is not None else [1.0] * len(style_images)
    if len(blend) != len(style_images):
        raise ValueError(f"{len(blend)} blend weights for {len(style_images)} style images")
    if style_masks is not None and len(style_masks) != len(style_images):
        raise ValueError(f"{len(style_masks)} style masks for {len(style_images)} style images")
    return blend


def style_targets(
    stats: Sequence[FeatureStats], blend: Sequence[float], masks: Sequence[torch.Tensor | None] | None
) -> list[tuple[FeatureStats, torch.Tensor | None, float]]:
    """The style targets of one layer as (target statistics, region mask, region weight):
    without ``masks`` (the style images' masks at the layer's resolution), one blend of
    all styles over the whole image; with them, style ``i`` in region ``i`` (see
    :class:`Objective`)."""
    total = sum(blend)
    if masks is None:
        return [(_blend(stats, [b / total for b in blend]), None, 1.0)]
    regions = normalised_masks(masks)
    return [(s, m, float(m.mean()) * b * len(blend) / total) for s, m, b in zip(stats, regions, blend, strict=True)]


def _blend(stats: Sequence[FeatureStats], weights: Sequence[float]) -> FeatureStats:
    result = stats[0].scaled(weights[0])
    for s, w in zip(stats[1:], weights[1:], strict=True):
        result = result + s.scaled(w)
    return result


def normalised_masks(masks: Sequence[torch.Tensor | None]) -> list[torch.Tensor]:
    """Masks divided by their sum where it exceeds 1 (overlaps share), unchanged elsewhere."""
    stack = torch.cat([cast(torch.Tensor, m).clamp(0, 1) for m in masks], dim=0)  # (S, 1, H, W)
    total = stack.sum(dim=0, keepdim=True).clamp_min(1.0)
    return list(torch.split(stack / total, 1, dim=0))


# Departure from neural-style: L-BFGS without line search, started from the content
# image, overshoots wildly in its first steps (the style loss grows 100-fold before it
# recovers, some 70 iterations later). A few Adam steps first give it a sane start.
LBFGS_WARMUP_STEPS = 10
LBFGS_WARMUP_LR = 0.02


#: L-BFGS's history, as neural-style's; large images may get less (see :mod:`artstyle.tiling`).
LBFGS_HISTORY = 100


def make_optimizer(
    name: str, image: torch.Tensor, learning_rate: float, history_size: int = LBFGS_HISTORY
) -> torch.optim.Optimizer:
    """L-BFGS takes one iteration per ``step`` (no line search, ``history_size`` steps of
    history, 100 by default as in neural-style)."""
    if name == "lbfgs":
        return torch.optim.LBFGS(
            [image], lr=learning_rate, max_iter=1, history_size=history_size, tolerance_grad=-1, tolerance_change=-1
        )
    if name == "adam":
        return torch.optim.Adam([image], lr=learning_rate)
    raise ValueError(f"unknown optimizer {name!r}")


Render = Callable[[torch.Tensor], torch.Tensor]

#: An objective as :func:`optimize` calls it: ``(total, parts)`` for an image, and the
#: gradient by ``total.backward()``.
ObjectiveFunction = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@runtime_checkable
class SelfDifferentiating(Protocol):
    """An objective that computes the gradient itself (for example tile by tile, to bound
    memory): ``loss_and_gradient(image)`` returns ``(total, parts)``, detached, and leaves
    the gradient of ``total`` in ``image.grad``. :func:`optimize` prefers it to calling
    the objective and back-propagating."""

    def loss_and_gradient(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...


class _NonFinite(Exception):
    """Raised inside the closure, before the optimizer can take a step from a bad value."""

    def __init__(self, term: str, value: torch.Tensor) -> None:
        super().__init__(term)
        self.term, self.value = term, value


_WEIGHT_FLAGS = {"content": "--content-weight", "style": "--style-weight", "tv": "--tv-weight"}


def _subject(term: str, phase: str) -> str:
    if term.startswith("style:"):
        return f"the style loss at {term.partition(':')[2]}"
    names = {"content": "the content loss", "style": "the style loss", "tv": "the total-variation loss"}
    step = f"the {'L-BFGS' if phase == 'lbfgs' else 'Adam'} step"
    names |= {"total": "the total loss", "gradient": "the gradient of the loss", "step": step}
    return names[term]


def _hints(term: str, *, fresh: bool, warmup: bool, optimizer: str, learning_rate: float) -> str:
    """What to try: from a starting image no step is to blame, only the weights; during the
    warm-up (a fixed step size) too; otherwise a smaller step first."""
    weight = _WEIGHT_FLAGS.get(term.partition(":")[0])
    weights = f"a smaller {weight}" if weight else "smaller --content-weight, --style-weight or --tv-weight"
    if fresh or warmup:
        return weights
    hints = [f"a lower --learning-rate (now {learning_rate:g})"]
    if optimizer == "lbfgs":
        hints.append("--optimizer adam")
    if term != "step":
        hints.append(weights)
    if len(hints) == 1:
        return hints[0]
    return f"{', '.join(hints[:-1])}{',' if len(hints) > 2 else ''} or {hints[-1]}"


def _first_non_finite(parts: Mapping[str, torch.Tensor], total: torch.Tensor) -> tuple[str, torch.Tensor]:
    """The first non-finite part of the objective, in its own order (the sums last)."""
    for name, value in parts.items():
        if name not in ("style", "total") and not bool(torch.isfinite(value).all()):
            return name, value
    for name in ("style", "total"):
        if name in parts and not bool(torch.isfinite(parts[name]).all()):
            return name, parts[name]
    return "total", total


def optimize(
    objective: ObjectiveFunction | SelfDifferentiating,
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
    resume: RunState | None = None,
    checkpoint: StateCallback | None = None,
    checkpoint_every: int = 0,
    history_size: int = LBFGS_HISTORY,
) -> torch.Tensor:
    """Optimise an image from ``init`` and return it, (1, C, H, W) in [0, 1].

    ``lbfgs`` spends its first :data:`LBFGS_WARMUP_STEPS` iterations on Adam (see above)
    unless ``warmup`` is false. After every step the image is clamped to [0, 1] (the
    valid range) and ``callback`` receives a :class:`Progress` whose image is
    ``render(image)`` (default: the image itself, as RGB). ``first_step``,
    ``total_iterations``, ``scale`` and ``scales`` place this run inside a multi-scale
    one. An exception raised by the callback (for example ``KeyboardInterrupt``) ends
    the run; the callback has already seen the last image.

    After every iteration whose overall number is a multiple of ``checkpoint_every``
    (except the run's last), ``checkpoint`` receives a :class:`RunState`, before
    ``callback`` sees that iteration. ``resume``, such a state from an iteration of this
    run's scale, continues from it instead of ``init`` (which is then ignored): image,
    optimizer state and iteration count, so that the result is the one an uninterrupted
    run gives.

    A loss part, gradient or updated image that is not finite stops the run before that
    iteration counts: :class:`~artstyle.errors.DivergedError` says what diverged and
    what to try, and carries the last finite image (None if this call finished no
    iteration).

    ``objective`` is called as ``objective(image) -> (total, parts)`` and its gradient
    taken by back-propagation, unless it is :class:`SelfDifferentiating`.
    ``history_size`` is L-BFGS's.
    """
    done, start = _starting_point(init, resume, first_step, iterations)
    image = start.detach().clone(memory_format=torch.contiguous_format).clamp_(0, 1).requires_grad_(True)
    adam_steps = min(LBFGS_WARMUP_STEPS, iterations - 1) if optimizer == "lbfgs" and warmup else 0
    make = _Optimizers(adam_steps, optimizer, image, learning_rate, history_size)
    phase, opt = make.taking(max(done, 1))  # the optimizer that took iteration ``done``
    if resume is not None:
        _load_optimizer_state(opt, phase, resume)
    parts: dict[str, torch.Tensor] = {}
    show = render if render is not None else as_rgb
    total = total_iterations if total_iterations is not None else first_step + iterations - 1

    def closure() -> torch.Tensor:
        nonlocal parts
        opt.zero_grad(set_to_none=True)
        if isinstance(objective, SelfDifferentiating):
            loss, parts = objective.loss_and_gradient(image)
            _check_loss(loss, parts)
        else:
            result: tuple[torch.Tensor, dict[str, torch.Tensor]] = objective(image)
            loss, parts = result
            _check_loss(loss, parts)
            loss.backward()  # type: ignore[no-untyped-call]
        _check_gradient(image)
        return loss

    for step in range(done + 1, iterations + 1):
        if adam_steps and step == adam_steps + 1:
            phase, opt = make.taking(step)
        try:
            _take_step(opt, closure, image)
        except _NonFinite as bad:
            where = _Where(first_step + step - 1, total, scale, scales, fresh=step == 1, phase=phase)
            raise _diverged(bad, where, optimizer, learning_rate, image, None if step == 1 else show) from None
        overall = first_step + step - 1
        if checkpoint is not None and checkpoint_every and overall % checkpoint_every == 0 and overall < total:
            # After a scale's last iteration the next scale starts a fresh optimizer.
            kept = (None, None) if step == iterations else (phase, opt.state_dict())
            checkpoint(RunState(overall, scale, image.detach().clone(), *kept))
        if callback is not None:
            losses = {name: float(value.detach()) for name, value in parts.items()}
            with torch.no_grad():
                shown = show(image.detach()).clone()
            callback(Progress(overall, total, losses, shown, scale, scales))
    return image.detach()


def _starting_point(
    init: torch.Tensor, resume: RunState | None, first_step: int, iterations: int
) -> tuple[int, torch.Tensor]:
    """The iterations of this scale already done, and the image to go on from."""
    if resume is None:
        return 0, init
    done = resume.step - first_step + 1
    if not 0 < done < iterations:
        raise ValueError(f"iteration {resume.step} is not inside this scale's iterations")
    return done, resume.image.to(device=init.device, dtype=init.dtype)


@dataclass(frozen=True)
class _Optimizers:
    """Makes the optimizers of one scale: Adam for the first ``adam_steps``, then ``optimizer``."""

    adam_steps: int
    optimizer: str
    image: torch.Tensor
    learning_rate: float
    history_size: int

    def taking(self, step: int) -> tuple[str, torch.optim.Optimizer]:
        """The optimizer that takes iteration ``step``, and its name: Adam during the warm-up."""
        if self.adam_steps and step <= self.adam_steps:
            return "adam", make_optimizer("adam", self.image, LBFGS_WARMUP_LR)
        return self.optimizer, make_optimizer(self.optimizer, self.image, self.learning_rate, self.history_size)


def _check_loss(loss: torch.Tensor, parts: Mapping[str, torch.Tensor]) -> None:
    if not bool(torch.isfinite(loss)):
        raise _NonFinite(*_first_non_finite(parts, loss))


def _check_gradient(image: torch.Tensor) -> None:
    if image.grad is not None and not bool(torch.isfinite(image.grad).all()):
        raise _NonFinite("gradient", image.grad)


def _take_step(opt: torch.optim.Optimizer, closure: Callable[[], torch.Tensor], image: torch.Tensor) -> None:
    """One optimizer step, then the clamp to [0, 1]. A non-finite loss or gradient stops it
    before the update (:class:`_NonFinite`); a non-finite update is undone, then reported."""
    previous = image.detach().clone()
    opt.step(cast(Callable[[], float], closure))
    with torch.no_grad():
        if not bool(torch.isfinite(image).all()):
            bad = image.detach().clone()
            image.copy_(previous)  # back to the last finite state
            raise _NonFinite("step", bad)
        image.clamp_(0, 1)


@dataclass(frozen=True)
class _Where:
    """Where a run diverged: the overall iteration, the scale, and the optimizer in charge."""

    step: int
    total: int
    scale: int
    scales: int
    fresh: bool  # the first iteration of its scale: the objective saw the starting image
    phase: str


def _diverged(
    bad: _NonFinite, where: _Where, optimizer: str, learning_rate: float, image: torch.Tensor, show: Render | None
) -> DivergedError:
    """The error for a non-finite value, with the last finite image (``show(image)``, given
    ``show`` when a previous iteration of this scale produced ``image``)."""
    what = "NaN" if bool(torch.isnan(bad.value).any()) else "infinite"
    warming = where.phase == "adam" and optimizer == "lbfgs"
    hints = _hints(bad.term, fresh=where.fresh, warmup=warming, optimizer=optimizer, learning_rate=learning_rate)
    scale = f" (scale {where.scale}/{where.scales})" if where.scales > 1 else ""
    last = None
    if show is not None:
        with torch.no_grad():
            last = show(image.detach()).clone()
    return DivergedError(
        f"the optimisation diverged at iteration {where.step}/{where.total}{scale}: "
        f"{_subject(bad.term, where.phase)} became {what}; try {hints}",
        step=where.step,
        iterations=where.total,
        term=bad.term,
        image=last,
    )


def _load_optimizer_state(opt: torch.optim.Optimizer, phase: str, resume: RunState) -> None:
    if resume.optimizer != phase or resume.optimizer_state is None:
        raise CheckpointError(
            f"the checkpoint holds the state of {resume.optimizer or 'no optimizer'}, "
            f"but iteration {resume.step} of this run was taken by {phase}"
        )
    try:
        opt.load_state_dict(resume.optimizer_state)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"the checkpoint's {phase} state does not fit this run ({exc})") from None


@dataclass(frozen=True)
class Stage:
    """One scale of a coarse-to-fine run: the image size and the iterations spent there.

    ``tile_size`` and ``history_size`` say how the scale fits in memory (see
    :func:`artstyle.tiling.plan_memory`): 0 evaluates the objective on the whole image
    at once, otherwise on tiles of at most ``tile_size`` px a side; L-BFGS keeps
    ``history_size`` steps of history.
    """

    height: int
    width: int
    iterations: int
    tile_size: int = 0
    history_size: int = LBFGS_HISTORY


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
    coarse_iterations: int | None = None,
) -> list[Stage]:
    """The stages of a coarse-to-fine run over :func:`stage_sizes` (a single stage when
    ``factor`` is 1): ``iterations`` at the full size, ``coarse_iterations`` (default:
    the same) at the coarsest scale, and a geometric in-between at the scales between
    (100 and 30 give 100, 55, 30 over three scales). ``iterations`` may be 0 when there
    are several scales: the full size is then the upsampled previous scale plus its
    detail (the scales between count as if it were 1)."""
    sizes = stage_sizes(height, width, min_size=min_size, factor=factor, min_side=min_side)
    coarse = iterations if coarse_iterations is None else coarse_iterations
    last = len(sizes) - 1
    ratio = max(iterations, 1) / max(coarse, 1)
    counts = [iterations if i == last else max(1, round(coarse * ratio ** (i / last))) for i in range(last + 1)]
    return [Stage(h, w, n) for (h, w), n in zip(sizes, counts, strict=True)]


def resize_image(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """An (N, C, H, W) image at a new size: area averaging down, bicubic up; in [0, 1]."""
    if image.shape[2:] == (height, width):
        return image
    if image.shape[2] >= height and image.shape[3] >= width:
        return F.interpolate(image, size=(height, width), mode="area")
    return F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)


def optimize_stages(
    stages: Sequence[Stage],
    objective_for: Callable[[int, Stage], ObjectiveFunction | SelfDifferentiating],
    init: torch.Tensor,
    *,
    optimizer: str = "lbfgs",
    learning_rate: float = 1.0,
    callback: ProgressCallback | None = None,
    render_for: Callable[[int, Stage], Render] | None = None,
    detail_for: Callable[[int, Stage], torch.Tensor] | None = None,
    resume: RunState | None = None,
    checkpoint: StateCallback | None = None,
    checkpoint_every: int = 0,
) -> torch.Tensor:
    """Optimise coarse to fine: ``init`` is resized to the first stage, each result is
    upsampled to start the next, and ``objective_for(index, stage)`` builds that stage's
    objective (targets re-computed at its size). ``detail_for(index, stage)``, when given,
    is added to the upsampled image of every later stage: the detail that upsampling
    cannot restore (for example the content's own, as a Laplacian pyramid keeps it).
    Only the first stage has the Adam warm-up: later ones start from a picture that is
    already stylized. Progress steps count over all stages. Returns the image at the last
    stage's size.

    Each stage's L-BFGS keeps ``stage.history_size`` steps of history; its tile size
    is for ``objective_for`` to honour.

    ``checkpoint`` and ``checkpoint_every`` are passed to :func:`optimize`; ``resume``,
    a :class:`RunState` from a run with the same stages and inputs, continues it: in
    the middle of its scale, or, after a scale's last iteration, with the next scale.
    A state that does not fit the stages raises :class:`~artstyle.errors.CheckpointError`.
    A :class:`~artstyle.errors.DivergedError` in the first iteration of a later scale
    carries the previous scale's result as the last finite image.
    """
    if not stages:
        raise ValueError("at least one stage is needed")
    total = sum(stage.iterations for stage in stages)
    image = init
    first, within = 0, None
    if resume is not None:
        _check_resume(stages, resume, init)
        first = resume.scale - 1
        image = resume.image.to(device=init.device, dtype=init.dtype)
        if resume.step == sum(stage.iterations for stage in stages[: resume.scale]):
            first += 1  # that scale is finished: the next one starts from its result
        else:
            within = resume
    done = sum(stage.iterations for stage in stages[:first])
    for index in range(first, len(stages)):
        stage = stages[index]
        previous = image
        if within is None:
            image = resize_image(image, stage.height, stage.width)
            if index and detail_for is not None:
                image = (image + detail_for(index, stage)).clamp(0, 1)
        if not stage.iterations:  # nothing to optimise at this scale: upsampled, with detail
            continue
        objective = objective_for(index, stage)
        try:
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
                resume=within,
                checkpoint=checkpoint,
                checkpoint_every=checkpoint_every,
                history_size=stage.history_size,
            )
        except DivergedError as exc:
            if exc.image is None and index:  # the previous scale's result is the last finite image
                show = render_for(index - 1, stages[index - 1]) if render_for is not None else as_rgb
                with torch.no_grad():
                    exc.image = show(previous.detach()).clone()
            raise
        within = None
        done += stage.iterations
        del objective
    return image


def _check_resume(stages: Sequence[Stage], resume: RunState, init: torch.Tensor) -> None:
    """Refuse a state that is not from a run with these stages (CheckpointError)."""
    total = sum(stage.iterations for stage in stages)
    if not 1 <= resume.scale <= len(stages) or not 1 <= resume.step < total:
        raise CheckpointError(
            f"the checkpoint is of iteration {resume.step} at scale {resume.scale}, "
            f"but this run has {total} iterations over {len(stages)} scales"
        )
    stage = stages[resume.scale - 1]
    end = sum(s.iterations for s in stages[: resume.scale])
    if not end - stage.iterations < resume.step <= end:
        raise CheckpointError(
            f"the checkpoint's iteration {resume.step} is not at scale {resume.scale} of this run "
            f"(iterations {end - stage.iterations + 1} to {end})"
        )
    expected = (1, init.shape[1], stage.height, stage.width)
    if tuple(resume.image.shape) != expected:
        shape = "x".join(str(n) for n in resume.image.shape)
        raise CheckpointError(
            f"the checkpoint's image ({shape}) does not fit scale {resume.scale} of this run "
            f"({'x'.join(str(n) for n in expected)})"
        )
    if resume.step < end and resume.optimizer_state is None:
        raise CheckpointError(f"the checkpoint of iteration {resume.step} holds no optimizer state")
