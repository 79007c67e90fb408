"""The run frame: one job from its inputs to a written file, as an :class:`Outcome`.

Every front end (the CLI, ``artstyle reproduce``, the web page; batches and video next)
runs its jobs here. :func:`execute` reads the inputs, prepares and runs the
:class:`~artstyle.api.Stylizer`, keeps checkpoints, saves intermediate images, stops
when asked (an iteration to stop at, or the front end's :meth:`Reporter.stop_requested`),
and handles what can go wrong: SIGINT and SIGTERM (the current image is written),
divergence and running out of memory (the last good image with ``keep_partial``), bad
input. It never prints and never exits: it reports progress and warnings to a
:class:`Reporter` and returns what happened; the front end turns that into lines,
exit codes or page updates.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import torch
from PIL import Image

from artstyle.api import Plan, Result, Stylizer
from artstyle.config import Config
from artstyle.engine import Progress, RunState
from artstyle.errors import (
    ArtstyleError,
    ArtstyleWarning,
    ConfigError,
    DivergedError,
    OutOfMemoryError,
    option_name,
    option_value,
)
from artstyle.features.layers import min_tile_size
from artstyle.files.read import read_image
from artstyle.files.write import check_bit_depth, check_jpeg_quality, check_output_path
from artstyle.runs.checkpoint import Checkpoints
from artstyle.runs.job import Input, InputImage, Job
from artstyle.runs.signals import Signals, Terminated
from artstyle.runs.writer import Writer

#: How a job ended (:attr:`Outcome.kind`).
WRITTEN = "written"  # the finished picture was written
STOPPED = "stopped"  # stopped early as asked (stop_at, or the front end); the current picture written
INTERRUPTED = "interrupted"  # Ctrl-C (SIGINT)
TERMINATED = "terminated"  # SIGTERM
DIVERGED = "diverged"  # a non-finite loss, gradient or image
OUT_OF_MEMORY = "out of memory"
FAILED = "failed"  # bad input or options, weights, device, disk, checkpoint: anything else


class Reporter:
    """How a front end follows a job; every method does nothing unless overridden."""

    def started(self, iterations: int, initial: int) -> None:
        """The run begins: ``iterations`` over all scales, ``initial`` of them already done (resumed)."""

    def progress(self, progress: Progress) -> None:
        """After every iteration."""

    def warning(self, message: str) -> None:
        """Something handled that the user should know (a :class:`~artstyle.errors.ArtstyleWarning`)."""

    def stop_requested(self) -> bool:
        """Asked after every iteration: True stops the job, writing the current picture."""
        return False

    def ended(self) -> None:
        """The run is over, however it ended (before the outcome is returned)."""


@dataclass(frozen=True)
class Outcome:
    """What became of a job.

    ``step`` is the iteration of the picture written before the end (stopped,
    interrupted, the last good one of a diverged run), or the last one reached;
    ``iterations`` the run's total; ``written`` the path written, if any; ``began``
    whether the optimisation had started; ``resumable_from`` the iteration the job's
    checkpoint holds; ``error`` what failed (a typed error or an ``OSError``).
    """

    kind: str
    job: Job
    step: int | None = None
    iterations: int | None = None
    written: str | None = None
    result: Result | None = None
    error: BaseException | None = None
    seconds: float = 0.0
    began: bool = False
    resumable_from: int | None = None

    @property
    def ok(self) -> bool:
        """The job did what it was asked: the finished picture, or the one it was to stop at."""
        return self.kind in (WRITTEN, STOPPED)


def execute(
    job: Job, reporter: Reporter | None = None, *, stylizer: Stylizer | None = None, signals: Signals | None = None
) -> Outcome:
    """Run ``job`` and say how it ended. ``stylizer`` (default: a new one for the job's
    weights and device) keeps the network loaded across jobs; ``signals``, installed by
    the caller in the main thread, makes SIGINT and SIGTERM stop the job (default: not
    installed, file writes are still shielded)."""
    reporter = reporter if reporter is not None else Reporter()
    frame = _Frame(job, reporter, signals if signals is not None else Signals(), stylizer)
    try:
        with warnings_to(reporter.warning):
            return frame.run()
    except (KeyboardInterrupt, Terminated) as stop:
        return Outcome(stop_kind(stop), job, seconds=frame.seconds())
    except (ArtstyleError, OSError) as exc:
        return Outcome(FAILED, job, error=exc, seconds=frame.seconds())


def error_message(exc: BaseException) -> str:
    """The one line of a failure: a typed error's message, or a file system error's."""
    if isinstance(exc, OSError) and not isinstance(exc, ArtstyleError):
        name = f"'{exc.filename}'" if exc.filename else ""
        return f"{name} {exc.strerror or exc}".strip()
    return str(exc)


def stop_kind(stop: BaseException) -> str:
    """INTERRUPTED for Ctrl-C, TERMINATED for SIGTERM."""
    return TERMINATED if isinstance(stop, Terminated) else INTERRUPTED


@contextlib.contextmanager
def warnings_to(report: Callable[[str], None]) -> Iterator[None]:
    """Inside, in the main thread, every ArtstyleWarning goes to ``report`` as its first
    line (Python's warning filters are process-wide: other threads keep the usual handling)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        text = str(message).strip().splitlines()
        report(text[0] if text else category.__name__)

    with warnings.catch_warnings():
        warnings.simplefilter("always", ArtstyleWarning)
        warnings.showwarning = show
        yield


class _Stop(BaseException):
    """Raised by the progress follower when the job reaches its stop."""


@dataclass(frozen=True)
class _Inputs:
    """The job's images, read (or taken from memory) before the network is loaded."""

    content: Image.Image
    styles: list[Image.Image]
    style_masks: list[Image.Image] | None
    content_mask: Image.Image | None


class _Follower:
    """The run's progress callback: reports, stops when asked, saves intermediate images,
    keeps the latest step, and acts on a signal that came while a file was written."""

    def __init__(self, job: Job, writer: Writer, signals: Signals, reporter: Reporter) -> None:
        self.job, self.writer, self.signals, self.reporter = job, writer, signals, reporter
        self.latest: Progress | None = None

    def __call__(self, progress: Progress) -> None:
        self.latest = progress
        self.reporter.progress(progress)
        if (self.job.stop_at is not None and progress.step >= self.job.stop_at) or self.reporter.stop_requested():
            raise _Stop
        every = self.job.save_every
        if every and progress.step % every == 0 and progress.step < progress.iterations:
            self.writer.write(progress.image, self.job.intermediate(progress.step), {"step": progress.step})
        self.signals.raise_pending()  # a signal that came while a file was written


class _Frame:
    """One job's run, step by step (:meth:`run`), and how each way of ending is handled."""

    def __init__(self, job: Job, reporter: Reporter, signals: Signals, stylizer: Stylizer | None) -> None:
        self.job, self.reporter, self.signals, self.stylizer = job, reporter, signals, stylizer
        self.started = time.perf_counter()
        self.checkpoints = Checkpoints(job, signals)

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def run(self) -> Outcome:
        job = self.job
        _check_outputs(job)
        self.checkpoints.check()
        images = _read_inputs(job)
        inputs = job.inputs()
        resume = self.checkpoints.load(inputs)
        stylizer = self.stylizer or Stylizer(weights=job.config.weights, device=job.config.device)
        device = str(stylizer.device)
        seed = job.config.seed or 0
        writer = Writer(job, self.signals, Result(images.content, job.config, seed, device), inputs)
        follower = _Follower(job, writer, self.signals, self.reporter)
        try:
            plan, result = self._optimise(stylizer, images, follower, resume)
        except (KeyboardInterrupt, Terminated, _Stop) as stop:
            return self._stopped(writer, follower.latest, stop)
        except DivergedError as exc:
            return self._diverged(writer, exc)
        except (MemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc):
                raise
            return self._out_of_memory(writer, follower.latest, images.content.size, device)
        finally:
            self.reporter.ended()
        writer.write(result, job.output)
        self.checkpoints.remove()
        return Outcome(
            WRITTEN,
            job,
            step=plan.iterations,
            iterations=plan.iterations,
            written=job.output,
            result=result,
            seconds=self.seconds(),
            began=True,
        )

    def _optimise(
        self, stylizer: Stylizer, images: _Inputs, follower: _Follower, resume: RunState | None
    ) -> tuple[Plan, Result]:
        """Prepare the job's run and run it: its plan and its result."""
        job = self.job
        plan = stylizer.prepare(
            images.content,
            images.styles,
            job.config,
            style_masks=images.style_masks,
            content_mask=images.content_mask,
            style_targets=job.style_targets,
        )
        self.reporter.started(plan.iterations, resume.step if resume is not None else 0)
        result = stylizer.run(
            plan,
            init=job.init_tensor,
            warmup=job.warmup,
            extra_terms=job.extra_terms,
            progress=follower,
            checkpoint=self.checkpoints.save if job.checkpoint_every else None,
            checkpoint_every=job.checkpoint_every,
            resume=resume,
        )
        return plan, result

    def _outcome(self, kind: str, latest: Progress | None, **fields: Any) -> Outcome:
        values: dict[str, Any] = {
            "step": latest.step if latest is not None else None,
            "iterations": latest.iterations if latest is not None else None,
            **fields,
        }
        return Outcome(
            kind, self.job, seconds=self.seconds(), began=True, resumable_from=self.checkpoints.step, **values
        )

    def _stopped(self, writer: Writer, latest: Progress | None, stop: BaseException) -> Outcome:
        kind = STOPPED if isinstance(stop, _Stop) else stop_kind(stop)
        if latest is None or not self.job.write_stopped:
            return self._outcome(kind, None)
        return self._outcome(kind, latest, written=writer.write_stopped(latest.image, latest.step))

    def _diverged(self, writer: Writer, exc: DivergedError) -> Outcome:
        last = exc.step - 1
        written = None
        if self.job.keep_partial and exc.image is not None:
            written = writer.write_stopped(exc.image, last, {"diverged_at": exc.step})
        return self._outcome(DIVERGED, None, step=last, iterations=exc.iterations, written=written, error=exc)

    def _out_of_memory(
        self, writer: Writer, latest: Progress | None, content_size: tuple[int, int], device: str
    ) -> Outcome:
        error = OutOfMemoryError(out_of_memory_message(self.job, content_size, device))
        written = None
        if self.job.keep_partial and latest is not None:
            written = writer.write_stopped(latest.image, latest.step)
        return self._outcome(OUT_OF_MEMORY, latest, written=written, error=error)


def _check_outputs(job: Job) -> None:
    check_bit_depth(job.bit_depth)
    check_jpeg_quality(job.jpeg_quality)
    check_output_path(job.output, bit_depth=job.bit_depth, overwrite=job.overwrite)
    if not job.overwrite and job.save_every:
        for step in range(job.save_every, job.config.iterations, job.save_every):
            check_output_path(job.intermediate(step), bit_depth=job.bit_depth, overwrite=False)


def _read_inputs(job: Job) -> _Inputs:
    """Every input image, read now (with the pixel limit, before the network is loaded)."""
    content = _read(job.content)
    styles = [_read(source) for source in job.styles]
    if job.init_file is not None:
        read_image(job.init_file)  # fail early, before loading the network
    if job.style_masks and len(job.style_masks) != len(job.styles):
        problem = f"{len(job.style_masks)} masks for {len(job.styles)} style images"
        raise ConfigError(problem, option="style_masks")
    style_masks = [_read(source) for source in job.style_masks] if job.style_masks else None
    content_mask = _read(job.content_mask) if job.content_mask is not None else None
    return _Inputs(content, styles, style_masks, content_mask)


def _read(source: Input) -> Image.Image:
    return source.image if isinstance(source, InputImage) else read_image(source)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an exception is the device (or the host) running out of memory."""
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    patterns = ("out of memory", "can't allocate memory", "not enough memory")
    return isinstance(exc, RuntimeError) and any(pattern in text for pattern in patterns)


#: The tile size an out-of-memory message suggests: at 1024x768 px such tiles took a third of the
#: untiled pass's memory and 1.9 times its time (docs/guide/large-pictures.md).
SUGGESTED_TILE = 512


def out_of_memory_message(job: Job, content_size: tuple[int, int], device: str) -> str:
    """What ran out of memory, and the options that would need less."""
    config = job.config
    width, height = _scaled_size(content_size, config.size)
    hints = [f"a smaller {option_name('size')} (now {config.size})"]
    if config.optimizer == "lbfgs":
        hints.append(f"{option_value('optimizer', 'adam')} (L-BFGS keeps 100 steps of history)")
    smallest = max(min_tile_size(config.layers), SUGGESTED_TILE)
    if config.tile_size > smallest:
        hints.append(f"a smaller {option_name('tile_size')} (now {config.tile_size})")
    elif not config.tile_size and config.size > smallest:
        hints.append(option_value("tile_size", smallest))
    if device != "cpu":
        hints.append(option_value("device", "cpu"))
    return f"out of memory stylizing at {width}x{height} px on {device}; try {', or '.join(hints)}"


def _scaled_size(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    width, height = size
    if width >= height:
        return long_side, max(1, round(height * long_side / width))
    return max(1, round(width * long_side / height)), long_side


def stylizer_for(config: Config, stylizers: dict[tuple[str, str], Stylizer]) -> Stylizer:
    """The Stylizer of ``config``'s weights and device from ``stylizers``, made on first use
    (the network is loaded once per process, its latest style targets reused)."""
    key = (config.weights, config.device)
    if key not in stylizers:
        stylizers[key] = Stylizer(weights=config.weights, device=config.device)
    return stylizers[key]
