"""How the command line shows a run: a progress bar, warnings and errors as one line each,
and the run frame's :class:`~artstyle.runs.Outcome` as a line and an exit code.

Exit codes: 0 success, 1 a run that failed (unreadable or unusable input or output file,
weights, device, disk, out of memory, a diverging optimisation, a missing or mismatching
checkpoint), 2 a bad command line or option value, 130 interrupted by Ctrl-C and 143
stopped by SIGTERM (in both cases the current image is written to the output first).

The commands import this module (and with it the run frame and PyTorch) only once their
flags are parsed and checked (see :mod:`artstyle.cli.flags`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from tqdm import tqdm

from artstyle.allocator import keep_freed_memory
from artstyle.cli.flags import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE
from artstyle.engine import Progress
from artstyle.errors import ArtstyleError, ConfigError, flag
from artstyle.files.limits import check_max_pixels, pixel_limit
from artstyle.runs import (
    DIVERGED,
    INTERRUPTED,
    OUT_OF_MEMORY,
    STOPPED,
    TERMINATED,
    WRITTEN,
    Job,
    Outcome,
    Reporter,
    Signals,
    Terminated,
    execute,
)
from artstyle.runs.execute import error_message, warnings_to


def print_error(message: str) -> None:
    tqdm.write(f"artstyle: error: {message}", file=sys.stderr)


def print_warning(message: str) -> None:
    tqdm.write(f"artstyle: warning: {message}", file=sys.stderr)


def _stop_word(kind: str) -> str:
    return "stopped by SIGTERM" if kind == TERMINATED else "interrupted"


def guarded(body: Callable[[Signals], int], max_pixels: object) -> int:
    """Run a command's ``body`` with signal handling, one-line warnings and the pixel limit,
    turning every expected failure outside a job into a one-line message and an exit code;
    the process's allocator keeps the memory it frees (:mod:`artstyle.allocator`)."""
    keep_freed_memory()
    signals = Signals()
    try:
        with warnings_to(print_warning), signals.installed():
            limit = check_max_pixels(max_pixels)
            with pixel_limit(limit):
                return body(signals)
    except ConfigError as exc:
        print_error(str(exc))
        return EXIT_USAGE
    except (ArtstyleError, OSError) as exc:  # OSError: a file vanished or became unreadable
        print_error(error_message(exc))
        return EXIT_FAILED
    except (KeyboardInterrupt, Terminated) as stop:
        kind = TERMINATED if isinstance(stop, Terminated) else INTERRUPTED
        print(f"artstyle: {_stop_word(kind)}; nothing written", file=sys.stderr)
        return EXIT_TERMINATED if kind == TERMINATED else EXIT_INTERRUPTED


class ProgressBar(Reporter):
    """The run frame's reporter on a terminal: a tqdm bar with the losses, warnings as lines."""

    def __init__(self, quiet: bool, stop_at: int | None = None) -> None:
        self.quiet, self.stop_at = quiet, stop_at
        self.bar: tqdm | None = None

    def started(self, iterations: int, initial: int) -> None:
        total = self.stop_at or iterations
        self.bar = tqdm(
            total=total, initial=initial, disable=self.quiet, unit="it", dynamic_ncols=True, file=sys.stderr
        )

    def progress(self, progress: Progress) -> None:
        if self.bar is None:
            return
        losses = progress.losses
        scale = f"scale {progress.scale}/{progress.scales} " if progress.scales > 1 else ""
        self.bar.set_postfix_str(
            f"{scale}content {losses['content']:.3g} style {losses['style']:.3g} tv {losses['tv']:.3g}", refresh=False
        )
        self.bar.update(1)

    def warning(self, message: str) -> None:
        print_warning(message)

    def ended(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_job(job: Job, signals: Signals, quiet: bool) -> int:
    """Run one job in the run frame and report its outcome; returns the exit code."""
    return report(execute(job, ProgressBar(quiet, job.stop_at), signals=signals), quiet)


def report(outcome: Outcome, quiet: bool) -> int:
    """The outcome of a job as lines on stderr, and its exit code."""
    job = outcome.job
    resumable = _resumable(outcome)
    if outcome.kind == WRITTEN and outcome.result is not None:
        image = outcome.result.image
        seed, seconds = outcome.result.seed, outcome.seconds
        _say(quiet, f"wrote {job.output} ({image.width}x{image.height}, seed {seed}, {seconds:.0f} s)")
        return EXIT_OK
    if outcome.kind == STOPPED:
        _say(quiet, f"wrote {job.output} (stopped at iteration {outcome.step}, as the original)")
        return EXIT_OK
    if outcome.kind in (INTERRUPTED, TERMINATED):
        print(f"artstyle: {_stopped_line(outcome)}{resumable}", file=sys.stderr)
        return EXIT_TERMINATED if outcome.kind == TERMINATED else EXIT_INTERRUPTED
    if outcome.kind in (DIVERGED, OUT_OF_MEMORY):
        print_error(f"{outcome.error}{_partial(outcome)}{resumable}")
        return EXIT_FAILED
    error = outcome.error if outcome.error is not None else ArtstyleError("the run failed")
    print_error(error_message(error))
    return EXIT_USAGE if isinstance(error, ConfigError) else EXIT_FAILED


def _resumable(outcome: Outcome) -> str:
    if outcome.resumable_from is None:
        return ""
    return f"; {flag('resume')} continues from iteration {outcome.resumable_from}"


def _stopped_line(outcome: Outcome) -> str:
    word = _stop_word(outcome.kind)
    if not outcome.began:
        return f"{word}; nothing written"
    if outcome.written is None:
        return f"{word} before the first iteration; nothing written"
    return f"{word} at iteration {outcome.step}/{outcome.iterations}; wrote the current image to {outcome.written}"


def _partial(outcome: Outcome) -> str:
    """What became of the output of a run that diverged or ran out of memory."""
    keep = flag("keep_partial")
    if not outcome.job.keep_partial:
        return f"; nothing written ({keep} writes the last good image)" if outcome.kind == DIVERGED else ""
    if outcome.written is None:
        return "; no iteration had finished, nothing written"
    last = "the last good image" if outcome.kind == DIVERGED else "the last image"
    return f"; wrote {last} (iteration {outcome.step}) to {outcome.written}"


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(f"artstyle: {message}", file=sys.stderr)
