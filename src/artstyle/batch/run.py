"""``artstyle batch``: many pictures, each a job of the run frame, in one process or on Ray.

:func:`run_batch` checks every picture first (its options; whether it is already made:
a picture whose embedded parameters and input sha256 match is skipped unless ``force``),
then hands the rest to an executor and follows what comes back, in completion order:

* :class:`InProcess` (the default) runs them one after another with one
  :class:`~artstyle.api.Stylizer`: the network is loaded once, and the pictures with the
  same paintings run together so that their style targets are computed once;
* :class:`artstyle.batch.cluster.RayExecutor` runs them as Ray tasks (``--ray``).

A picture that fails is reported and the others go on. Nothing here prints: a
:class:`BatchReporter` is told what happens and a :class:`BatchOutcome` is returned.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from artstyle.api import Stylizer
from artstyle.batch.jobs import Batch, Item
from artstyle.config import Config
from artstyle.errors import ArtstyleError, ConfigError
from artstyle.files.metadata import read_metadata
from artstyle.runs import (
    FAILED,
    INTERRUPTED,
    STOPPED_KEY,
    TERMINATED,
    WRITTEN,
    Job,
    Outcome,
    Reporter,
    Signals,
    Terminated,
    execute,
)
from artstyle.runs.checkpoint import fingerprint
from artstyle.runs.execute import error_message, stop_kind, stylizer_for
from artstyle.runs.job import LEGACY_STOPPED_KEY, InputImage, describe, read_input

SKIPPED = "skipped"
#: A painting as read once for a batch, or why it cannot be.
Painting = InputImage | ArtstyleError | OSError


@dataclass(frozen=True)
class Done:
    """How one picture ended: ``kind`` as a run frame :class:`~artstyle.runs.Outcome`'s
    (or SKIPPED), the error's one line when it failed, and its seconds."""

    item: Item
    kind: str
    error: str | None = None
    seconds: float = 0.0
    usage: bool = False  # the failure was a bad option (ConfigError)

    @property
    def ok(self) -> bool:
        return self.kind in (WRITTEN, SKIPPED)


class BatchReporter:
    """How a front end follows a batch; every method does nothing unless overridden."""

    def started(self, total: int, skipped: int) -> None:
        """``total`` pictures, ``skipped`` of them already made."""

    def picture_started(self, item: Item) -> None:
        """A picture begins (in-process only: on Ray they start on the workers)."""

    def progress(self, item: Item, step: int, iterations: int) -> None:
        """An iteration of the current picture (in-process only)."""

    def done(self, done: Done) -> None:
        """A picture is finished, skipped or failed."""

    def warning(self, message: str) -> None:
        """Something handled that the user should know."""


@dataclass(frozen=True)
class BatchOutcome:
    """The batch's pictures as they ended, in the order they ended, and its seconds."""

    done: tuple[Done, ...]
    seconds: float
    interrupted: str | None = None  # INTERRUPTED or TERMINATED when stopped by a signal

    def count(self, kind: str) -> int:
        return sum(1 for done in self.done if done.kind == kind)

    @property
    def failed(self) -> list[Done]:
        return [done for done in self.done if not done.ok]


class Executor(Protocol):
    """Runs jobs, yielding each one's :class:`Done` as it ends."""

    def run(self, jobs: Sequence[tuple[Item, Job]], reporter: BatchReporter, signals: Signals) -> Iterator[Done]: ...


def run_batch(
    batch: Batch,
    reporter: BatchReporter | None = None,
    *,
    executor: Executor | None = None,
    signals: Signals | None = None,
) -> BatchOutcome:
    """Make the batch's pictures; raises only for a signal (KeyboardInterrupt, Terminated)
    after recording what was done, which the returned outcome then says."""
    reporter = reporter if reporter is not None else BatchReporter()
    signals = signals if signals is not None else Signals()
    began = time.perf_counter()
    finished: list[Done] = []
    jobs: list[tuple[Item, Job]] = []
    paintings: dict[str, Painting] = {}
    for item in sorted(batch.items, key=lambda item: item.style_key):  # same paintings together
        job_or_done = _job(item, batch, paintings)
        if isinstance(job_or_done, Done):
            finished.append(job_or_done)
        else:
            jobs.append((item, job_or_done))
    reporter.started(len(batch.items), sum(1 for done in finished if done.kind == SKIPPED))
    for done in finished:
        reporter.done(done)
    runner = executor if executor is not None else InProcess()
    try:
        for done in runner.run(jobs, reporter, signals):
            finished.append(done)
            reporter.done(done)
    except (KeyboardInterrupt, Terminated) as stop:
        return BatchOutcome(tuple(finished), time.perf_counter() - began, stop_kind(stop))
    return BatchOutcome(tuple(finished), time.perf_counter() - began)


def _job(item: Item, batch: Batch, paintings: dict[str, Painting]) -> Job | Done:
    """The run frame's job of a picture, or its Done: skipped (already made) or failed (bad
    options, an unreadable painting). Each painting is read and hashed once for the batch
    (``paintings``), not once per picture."""
    try:
        config = item.config(batch.config)
    except ConfigError as exc:
        return Done(item, FAILED, f"{item.source}: {exc}", usage=True)
    styles = [_painting(path, paintings) for path in item.styles]
    for style in styles:
        if not isinstance(style, InputImage):
            return Done(item, FAILED, error_message(style))
    job = Job(
        content=item.content,
        styles=[style for style in styles if isinstance(style, InputImage)],
        output=item.output,
        config=config,
        bit_depth=batch.bit_depth,
        jpeg_quality=batch.jpeg_quality,
    )
    if not batch.force and _already_made(job):
        return Done(item, SKIPPED)
    return job


def _painting(path: str, paintings: dict[str, Painting]) -> Painting:
    """A painting read once for the whole batch (or why it cannot be)."""
    if path not in paintings:
        try:
            paintings[path] = read_input(path)
        except (ArtstyleError, OSError) as exc:
            paintings[path] = exc
    return paintings[path]


def _already_made(job: Job) -> bool:
    """Whether the job's output is a finished picture of the same inputs and options (the
    seed too when one is asked for; without, any seed's picture counts)."""
    try:
        metadata = read_metadata(job.output)
        if not isinstance(metadata, dict) or STOPPED_KEY in metadata or LEGACY_STOPPED_KEY in metadata:
            return False
        parameters = metadata["parameters"]
        if not isinstance(parameters, dict):
            return False
        recorded = dict(parameters)
        seed = recorded.pop("seed", None)
        recorded_config = Config(**recorded)
        inputs = {"content": describe(job.content), "styles": [describe(style) for style in job.styles]}
    except (OSError, KeyError, TypeError, ValueError, ArtstyleError):
        return False
    if job.config.seed is not None and seed != job.config.seed:
        return False
    mine = fingerprint(job.config.replace(seed=None), inputs)
    recorded_inputs = metadata.get("inputs")
    if not isinstance(recorded_inputs, dict):
        return False
    theirs = fingerprint(recorded_config.replace(seed=None), recorded_inputs)
    return mine == theirs


class InProcess:
    """Runs the jobs here, one after another, with one Stylizer (loaded once; its latest
    style targets reused by the next picture with the same paintings)."""

    def run(self, jobs: Sequence[tuple[Item, Job]], reporter: BatchReporter, signals: Signals) -> Iterator[Done]:
        stylizers: dict[tuple[str, str], Stylizer] = {}
        for item, job in jobs:
            reporter.picture_started(item)
            stylizer = stylizer_for(job.config, stylizers)
            outcome = execute(job, _PictureReporter(item, reporter), stylizer=stylizer, signals=signals)
            yield done_of(item, outcome)


def done_of(item: Item, outcome: Outcome) -> Done:
    """A picture's Done from its job's outcome; a signal that stopped it is raised again."""
    if outcome.kind == INTERRUPTED:
        raise KeyboardInterrupt
    if outcome.kind == TERMINATED:
        raise Terminated
    error = None if outcome.ok else (error_message(outcome.error) if outcome.error is not None else outcome.kind)
    return Done(item, outcome.kind, error, outcome.seconds, isinstance(outcome.error, ConfigError))


class _PictureReporter(Reporter):
    def __init__(self, item: Item, batch: BatchReporter) -> None:
        self.item, self.batch = item, batch

    def progress(self, progress: Any) -> None:
        self.batch.progress(self.item, progress.step, progress.iterations)

    def warning(self, message: str) -> None:
        self.batch.warning(message)
