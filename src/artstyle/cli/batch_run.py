"""How ``artstyle batch`` runs (:mod:`artstyle.cli.batch`, which checked its flags and read
the pictures of the grid and the manifest): a progress bar over them, and the summary line.

Imported once the flags are parsed and checked: it imports the run frame, and PyTorch.
"""

from __future__ import annotations

import argparse
import os
import sys

from tqdm import tqdm

from artstyle.batch.jobs import Batch, Item
from artstyle.batch.run import SKIPPED, BatchOutcome, BatchReporter, Done, Executor, run_batch
from artstyle.cli.flags import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED
from artstyle.cli.report import guarded, print_warning
from artstyle.runs import TERMINATED, WRITTEN, Signals


def make_batch(args: argparse.Namespace, batch: Batch) -> int:
    """Make the pictures of ``batch`` (read from the checked flags ``args``),
    :func:`~artstyle.cli.report.guarded`; returns the exit code."""
    return guarded(lambda signals: _batch(args, batch, signals), args.max_pixels)


def _batch(args: argparse.Namespace, batch: Batch, signals: Signals) -> int:
    os.makedirs(args.output, exist_ok=True)
    executor: Executor | None = None
    if args.ray:
        from artstyle.batch.cluster import RayExecutor

        executor = RayExecutor(args.ray, args.cpus_per_job)
    outcome = run_batch(batch, JobBar(args.quiet), executor=executor, signals=signals)
    return report(outcome)


class JobBar(BatchReporter):
    """A tqdm bar over the pictures (done / total, ETA), the current one's iteration."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: tqdm | None = None
        self.seen: set[str] = set()

    def started(self, total: int, skipped: int) -> None:
        self.bar = tqdm(total=total, disable=self.quiet, unit="picture", dynamic_ncols=True, file=sys.stderr)

    def progress(self, item: Item, step: int, iterations: int) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{os.path.basename(item.output)} it {step}/{iterations}")

    def done(self, done: Done) -> None:
        if self.bar is not None:
            self.bar.update(1)
        if done.error is not None and not self.quiet:
            tqdm.write(f"artstyle: failed: {done.item.output}: {done.error}", file=sys.stderr)

    def warning(self, message: str) -> None:
        if message not in self.seen:
            self.seen.add(message)
            print_warning(message)


def report(outcome: BatchOutcome) -> int:
    """The summary line (and the failures, again, one per line) and the exit code."""
    failed = outcome.failed
    words = f"{outcome.count(WRITTEN)} written, {outcome.count(SKIPPED)} skipped, {len(failed)} failed"
    if outcome.interrupted is not None:
        stop = "stopped by SIGTERM" if outcome.interrupted == TERMINATED else "interrupted"
        print(f"artstyle: batch {stop}: {words} ({outcome.seconds:.0f} s)", file=sys.stderr)
        return EXIT_TERMINATED if outcome.interrupted == TERMINATED else EXIT_INTERRUPTED
    print(f"artstyle: batch: {words} ({outcome.seconds:.0f} s)", file=sys.stderr)
    for done in failed:
        print(f"artstyle:   failed: {done.item.output}: {done.error}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK
