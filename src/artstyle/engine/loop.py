"""The optimisation loop at one scale: L-BFGS or Adam on the pixels, and nothing else.

:func:`optimize` calls back with a frozen :class:`Progress` after every step, hands a
:class:`RunState` to a checkpoint callback every N steps, continues from such a state
exactly as if it had not stopped, and raises :class:`~artstyle.errors.DivergedError`
when the loss, its gradient or the image stops being finite. It reads and writes no
files and prints nothing: progress bars, previews and checkpoint files are consumers of
:class:`Progress` and :class:`RunState`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

import torch

from artstyle.engine.images import as_rgb
from artstyle.engine.optimizers import BoxLBFGS, Closure, ImageOptimizer, make_optimizer
from artstyle.engine.plan import LBFGS_HISTORY
from artstyle.errors import CheckpointError, DivergedError, option_name, option_value


@dataclass(frozen=True)
class Progress:
    """One step of a run, as seen by its consumers.

    ``losses`` holds the weighted terms of the objective at the image *before* the
    step: ``content``, ``style:<layer>`` for each style layer, ``style`` (their sum),
    ``tv``, any extra terms by their names, and ``total``. ``image`` is a detached copy of the image after the step,
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
    so there is no random state to keep. With ``strength``, ``style_factor`` is the
    style weight's multiplier in force (:class:`~artstyle.engine.strength.Calibration`).
    """

    step: int
    scale: int
    image: torch.Tensor
    optimizer: str | None = None
    optimizer_state: dict[str, Any] | None = None
    style_factor: float | None = None  # the style weight's calibrated factor (``strength``), if any


StateCallback = Callable[[RunState], None]

# Departure from neural-style: L-BFGS without line search, started from the content
# image, overshoots wildly in its first steps (the style loss grows 100-fold before it
# recovers, some 70 iterations later). A few Adam steps first give it a sane start.
LBFGS_WARMUP_STEPS = 10
LBFGS_WARMUP_LR = 0.02


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


_WEIGHT_OPTIONS = {"content": "content_weight", "style": "style_weight", "tv": "tv_weight"}


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
    weight = _WEIGHT_OPTIONS.get(term.partition(":")[0])
    every = ", ".join(option_name(name) for name in _WEIGHT_OPTIONS.values()).rsplit(", ", 1)
    weights = f"a smaller {option_name(weight)}" if weight else f"smaller {' or '.join(every)}"
    if fresh or warmup:
        return weights
    hints = [f"a lower {option_name('learning_rate')} (now {learning_rate:g})"]
    if optimizer == "lbfgs":
        hints.append(option_value("optimizer", "adam"))
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
    total = total_iterations if total_iterations is not None else first_step + iterations - 1
    run = _ScaleRun(
        objective,
        image,
        _Optimizers(adam_steps, optimizer, image, learning_rate, history_size),
        _Place(first_step, total, scale, scales, iterations),
        show=render if render is not None else as_rgb,
        callback=callback,
        checkpoint=checkpoint if checkpoint_every else None,
        checkpoint_every=checkpoint_every,
    )
    run.begin(max(done, 1), resume)
    for step in range(done + 1, iterations + 1):
        run.take(step)
    return image.detach()


@dataclass(frozen=True)
class _Place:
    """Where one scale's run sits in the whole: its first overall iteration, the total over
    all scales, the scale (1-based, of ``scales``) and this scale's iterations."""

    first_step: int
    total: int
    scale: int
    scales: int
    iterations: int


class _ScaleRun:
    """The state of :func:`optimize` at one scale: the image, the optimizer in charge
    (Adam during L-BFGS's warm-up), and the latest parts of the objective."""

    def __init__(
        self,
        objective: ObjectiveFunction | SelfDifferentiating,
        image: torch.Tensor,
        make: _Optimizers,
        place: _Place,
        *,
        show: Render,
        callback: ProgressCallback | None,
        checkpoint: StateCallback | None,
        checkpoint_every: int,
    ) -> None:
        self.objective, self.image, self.make, self.place, self.show = objective, image, make, place, show
        self.callback, self.checkpoint, self.checkpoint_every = callback, checkpoint, checkpoint_every
        self.parts: dict[str, torch.Tensor] = {}
        self.losses: dict[str, float] = {}
        self.phase, self.opt = "", cast(ImageOptimizer, None)

    def begin(self, step: int, resume: RunState | None) -> None:
        """Make the optimizer that took iteration ``step`` and, resuming, give it its state."""
        self.phase, self.opt = self.make.taking(step)
        if resume is not None:
            _load_optimizer_state(self.opt, self.phase, resume)

    def closure(self) -> float:
        """The loss at the image, its gradient left in ``image.grad``, and the parts read
        back as floats with one transfer (:func:`_read_back`)."""
        if isinstance(self.objective, SelfDifferentiating):
            loss, self.parts = self.objective.loss_and_gradient(self.image)
        else:
            result: tuple[torch.Tensor, dict[str, torch.Tensor]] = self.objective(self.image)
            loss, self.parts = result
            loss.backward()  # type: ignore[no-untyped-call]  # a non-finite loss fails below, unused
        total, self.losses = _read_back(loss, self.parts, self.image.grad)
        return total

    def take(self, step: int) -> None:
        """Iteration ``step`` of this scale (1-based), then its checkpoint and progress."""
        make, place = self.make, self.place
        if make.adam_steps and step == make.adam_steps + 1:
            self.phase, self.opt = make.taking(step)
        try:
            _take_step(self.opt, self.closure, self.image, last=step == place.iterations)
        except _NonFinite as bad:
            where = _Where(place.first_step + step - 1, place.total, place.scale, place.scales, step == 1, self.phase)
            show = None if step == 1 else self.show
            raise _diverged(bad, where, make.optimizer, make.learning_rate, self.image, show) from None
        overall = place.first_step + step - 1
        if self.checkpoint is not None and overall % self.checkpoint_every == 0 and overall < place.total:
            # After a scale's last iteration the next scale starts a fresh optimizer.
            kept = (None, None) if step == place.iterations else (self.phase, self.opt.state_dict())
            self.checkpoint(RunState(overall, place.scale, self.image.detach().clone(), *kept))
        if self.callback is not None:
            with torch.no_grad():
                shown = self.show(self.image.detach()).clone()
            self.callback(Progress(overall, place.total, dict(self.losses), shown, place.scale, place.scales))


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

    def taking(self, step: int) -> tuple[str, ImageOptimizer]:
        """The optimizer that takes iteration ``step``, and its name: Adam during the warm-up."""
        if self.adam_steps and step <= self.adam_steps:
            return "adam", make_optimizer("adam", self.image, LBFGS_WARMUP_LR)
        return self.optimizer, make_optimizer(self.optimizer, self.image, self.learning_rate, self.history_size)


def _read_back(
    loss: torch.Tensor, parts: Mapping[str, torch.Tensor], gradient: torch.Tensor | None
) -> tuple[float, dict[str, float]]:
    """The total and the parts as floats, read from the device in one transfer (with
    whether the gradient is finite): an iteration's one look at values (on a GPU each
    read waits for the queue). A non-finite loss or gradient raises :class:`_NonFinite`."""
    flags = [torch.isfinite(gradient).all()] if gradient is not None else []
    values = torch.stack([value.detach().float().reshape(()) for value in (loss, *parts.values(), *flags)])
    read = values.tolist()
    total, losses = read[0], dict(zip(parts, read[1 : 1 + len(parts)], strict=True))
    if not math.isfinite(total):
        raise _NonFinite(*_first_non_finite(parts, loss))
    if flags and not read[-1]:
        raise _NonFinite("gradient", cast(torch.Tensor, gradient))
    return total, losses


def _take_step(opt: ImageOptimizer, closure: Closure, image: torch.Tensor, *, last: bool) -> None:
    """One optimizer step, then the clamp to [0, 1]; the ``last`` of a scale, with L-BFGS,
    only settles on the best point evaluated (:meth:`BoxLBFGS.settle`). A non-finite loss
    or gradient stops it before the update (:class:`_NonFinite`); a non-finite update is
    undone, then reported."""
    previous = image.detach().clone()
    if last and isinstance(opt, BoxLBFGS):
        opt.settle(closure)
    else:
        opt.step(closure)
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


def _load_optimizer_state(opt: ImageOptimizer, phase: str, resume: RunState) -> None:
    if resume.optimizer != phase or resume.optimizer_state is None:
        raise CheckpointError(
            f"the checkpoint holds the state of {resume.optimizer or 'no optimizer'}, "
            f"but iteration {resume.step} of this run was taken by {phase}"
        )
    try:
        opt.load_state_dict(resume.optimizer_state)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"the checkpoint's {phase} state does not fit this run ({exc})") from None
