"""Coarse to fine: :func:`optimize` over a pyramid of scales, each starting from the last.

Each scale's result is upsampled to start the next. A scale with no iterations of its
own (``--iterations 0``) gets the detail that upsampling cannot restore added back (the
content's own, as a Laplacian pyramid keeps it), so that it is not blurred; a scale
that is optimised starts from the upsampled picture, by default upsampled along the
content's edges (:func:`~artstyle.engine.images.guided_upsample`, ``guide_for``): the
photo's detail added there measured as grain and a photographic look that the
iterations did not remove (``benchmarks/quality.py``, The Scream: with it, 1.16x the
noise and 1.05x the style error), while the guided filter brings back only the edges
the picture already follows, and the full-size iterations start nearer the content. Like
:func:`~artstyle.engine.loop.optimize`, it does no I/O: progress and checkpoints are
callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from artstyle.engine.images import as_rgb, guided_upsample, resize_image
from artstyle.engine.loop import (
    ObjectiveFunction,
    ProgressCallback,
    Render,
    RunState,
    SelfDifferentiating,
    StateCallback,
    optimize,
)
from artstyle.engine.objective import Objective
from artstyle.engine.plan import Stage
from artstyle.engine.strength import LAST_SEGMENTS, Calibration, segments
from artstyle.errors import CheckpointError, DivergedError


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
    guide_for: Callable[[int, Stage], torch.Tensor] | None = None,
    resume: RunState | None = None,
    checkpoint: StateCallback | None = None,
    checkpoint_every: int = 0,
    calibration: Calibration | None = None,
    warmup: bool = True,
) -> torch.Tensor:
    """Optimise coarse to fine: ``init`` is resized to the first stage, each result is
    upsampled to start the next, and ``objective_for(index, stage)`` builds that stage's
    objective (targets re-computed at its size). ``detail_for(index, stage)``, when given,
    is added to the upsampled image of every later stage that has no iterations: the
    detail that upsampling cannot restore (for example the content's own, as a
    Laplacian pyramid keeps it). ``guide_for(index, stage)``, when given, is the
    (1, 1, H, W) guide at that stage's size along whose edges the picture is upsampled
    to start every later stage that has iterations (:func:`guided_upsample`); without
    it, the upsampling is bicubic.
    Only the first stage has the Adam warm-up (none with ``warmup`` false: a start that is
    already stylized, such as a video's previous frame warped): later ones start from a
    picture that is already stylized. Progress steps count over all stages. Returns the image at the last
    stage's size.

    Each stage's L-BFGS keeps ``stage.history_size`` steps of history; its tile size
    is for ``objective_for`` to honour.

    ``checkpoint`` and ``checkpoint_every`` are passed to :func:`optimize`; ``resume``,
    a :class:`RunState` from a run with the same stages and inputs, continues it: in
    the middle of its scale, or, after a scale's last iteration, with the next scale.
    A state that does not fit the stages raises :class:`~artstyle.errors.CheckpointError`.
    A :class:`~artstyle.errors.DivergedError` in the first iteration of a later scale
    carries the previous scale's result as the last finite image.

    ``calibration`` (``strength``, :mod:`~artstyle.engine.strength`) runs the first
    and the last scale in parts and moves the style weight's factor after each part but
    a scale's last; ``objective_for`` reads the factor. Checkpoints then carry it
    (``style_factor``).
    """
    if not stages:
        raise ValueError("at least one stage is needed")
    total = sum(stage.iterations for stage in stages)
    parts_of = _parts(stages, calibration)
    first, image, within = _resume_point(stages, resume, init, parts_of)
    if calibration is not None and resume is not None and resume.style_factor is not None:
        calibration.factor = resume.style_factor
    settings = _Settings(
        objective_for, optimizer, learning_rate, callback, render_for, checkpoint, checkpoint_every, calibration, warmup
    )
    done = sum(stage.iterations for stage in stages[:first])
    for index in range(first, len(stages)):
        stage = stages[index]
        previous = image
        if within is None:
            image = _upsample(image, index, stage, detail_for, guide_for)
        if not stage.iterations:  # nothing to optimise at this scale: upsampled, with detail
            continue
        run = _StageRun(stage, index, len(stages), done, total, settings)
        try:
            image = run.optimize(image, parts_of[index], within)
        except DivergedError as exc:
            if exc.image is None and index:  # the previous scale's result is the last finite image
                show = render_for(index - 1, stages[index - 1]) if render_for is not None else as_rgb
                with torch.no_grad():
                    exc.image = show(previous.detach()).clone()
            raise
        within = None
        done += stage.iterations
    return image


@dataclass(frozen=True)
class _Settings:
    """What every scale of :func:`optimize_stages` is run with."""

    objective_for: Callable[[int, Stage], ObjectiveFunction | SelfDifferentiating]
    optimizer: str
    learning_rate: float
    callback: ProgressCallback | None
    render_for: Callable[[int, Stage], Render] | None
    checkpoint: StateCallback | None
    checkpoint_every: int
    calibration: Calibration | None
    warmup: bool  # the first stage's first part begins with the Adam warm-up


@dataclass(frozen=True)
class _StageRun:
    """One scale of :func:`optimize_stages`: its iterations, in one part or, while the
    style weight is calibrated, in several (``objective_for`` asked again for each, with
    the weight moved, and L-BFGS started afresh)."""

    stage: Stage
    index: int
    scales: int
    done: int  # the iterations of the scales before it
    total: int
    settings: _Settings

    def optimize(self, image: torch.Tensor, parts: Sequence[int], within: RunState | None) -> torch.Tensor:
        """Run the parts in turn from ``image`` (or, given the state ``within``, from where it
        was kept); after every part but the last, the calibration observes the picture."""
        calibration, end = self.settings.calibration, self.done
        for number, length in enumerate(parts):
            first, end = end + 1, end + length
            if within is not None and within.step > end:
                continue  # finished before the state was kept: the state's factor has its move
            objective = self.settings.objective_for(self.index, self.stage)
            if within is None or within.step < end:
                warmup = self.settings.warmup and self.index == 0 and number == 0
                image = self._part(objective, image, length, first, warmup=warmup, resume=within)
            within = None  # (kept at the part's end: its image is the part's result)
            if calibration is not None and number < len(parts) - 1 and isinstance(objective, Objective):
                share = calibration.share(objective, image.detach())
                left = 1.0 - (end - self.done) / self.stage.iterations
                calibration.observe(share, left=left, last=self.index == self.scales - 1 > 0)
        return image

    def _part(
        self,
        objective: ObjectiveFunction | SelfDifferentiating,
        image: torch.Tensor,
        length: int,
        first: int,
        *,
        warmup: bool,
        resume: RunState | None,
    ) -> torch.Tensor:
        settings = self.settings
        return optimize(
            objective,
            image,
            iterations=length,
            optimizer=settings.optimizer,
            learning_rate=settings.learning_rate,
            callback=settings.callback,
            warmup=warmup,
            render=settings.render_for(self.index, self.stage) if settings.render_for is not None else None,
            first_step=first,
            total_iterations=self.total,
            scale=self.index + 1,
            scales=self.scales,
            resume=resume,
            checkpoint=self._checkpoint(),
            checkpoint_every=settings.checkpoint_every,
            history_size=self.stage.history_size,
        )

    def _checkpoint(self) -> StateCallback | None:
        """The checkpoint callback, with the style weight's factor in force added to each state."""
        checkpoint, calibration = self.settings.checkpoint, self.settings.calibration
        if checkpoint is None or calibration is None:
            return checkpoint
        return lambda state: checkpoint(replace(state, style_factor=calibration.factor))


def _parts(stages: Sequence[Stage], calibration: Calibration | None) -> list[tuple[int, ...]]:
    """Each scale's iterations in the parts it runs in: while calibrating, the first
    scale's in :data:`~artstyle.engine.strength.SEGMENTS` and the last's (unless it is
    tiled) in :data:`~artstyle.engine.strength.LAST_SEGMENTS`; all others in one."""
    parts: list[tuple[int, ...]] = [(stage.iterations,) for stage in stages]
    if calibration is None:
        return parts
    if stages[0].iterations:
        parts[0] = segments(stages[0].iterations)
    last = stages[-1]
    if len(stages) > 1 and last.iterations and not last.tile_size:
        parts[-1] = segments(last.iterations, LAST_SEGMENTS)
    return parts


def _upsample(
    image: torch.Tensor,
    index: int,
    stage: Stage,
    detail_for: Callable[[int, Stage], torch.Tensor] | None,
    guide_for: Callable[[int, Stage], torch.Tensor] | None,
) -> torch.Tensor:
    """The previous stage's result at this stage's size: along the guide's edges when this
    stage is optimised and a guide is given; else resized, with the detail added back when
    it is not optimised."""
    if index and stage.iterations and guide_for is not None:
        return guided_upsample(image, guide_for(index, stage))
    image = resize_image(image, stage.height, stage.width)
    if index and detail_for is not None and not stage.iterations:
        image = (image + detail_for(index, stage)).clamp(0, 1)
    return image


def _resume_point(
    stages: Sequence[Stage], resume: RunState | None, init: torch.Tensor, parts_of: Sequence[Sequence[int]]
) -> tuple[int, torch.Tensor, RunState | None]:
    """Where a run starts: the index of its first scale, the image it starts from, and the
    state to continue inside that scale (None: the scale starts afresh)."""
    if resume is None:
        return 0, init, None
    _check_resume(stages, resume, init, parts_of)
    image = resume.image.to(device=init.device, dtype=init.dtype)
    if resume.step == sum(stage.iterations for stage in stages[: resume.scale]):
        return resume.scale, image, None  # that scale is finished: the next one starts from its result
    return resume.scale - 1, image, resume


def _check_resume(
    stages: Sequence[Stage], resume: RunState, init: torch.Tensor, parts_of: Sequence[Sequence[int]]
) -> None:
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
    parts = parts_of[resume.scale - 1]
    part_ends = {end - stage.iterations + sum(parts[: i + 1]) for i in range(len(parts))}
    if resume.step not in part_ends and resume.optimizer_state is None:
        raise CheckpointError(f"the checkpoint of iteration {resume.step} holds no optimizer state")
