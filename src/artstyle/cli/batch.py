"""``artstyle batch CONTENT... --styles STYLE... -o OUTDIR``: every photo with every painting.

The pictures come from the grid of CONTENT (files, directories, globs) and ``--styles``,
and from ``--manifest`` (:mod:`artstyle.batch.jobs`); :func:`artstyle.batch.run.run_batch`
makes them, in this process or on a Ray cluster (``--ray``, or ``RAY_ADDRESS``). This
module parses the flags, shows a progress bar over the pictures and ends with one
summary line (and one line per failed picture). Exit codes: 0 when every picture is
made, 1 when any failed, 2 for a bad command line, 130 / 143 when stopped by a signal.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tqdm import tqdm

from artstyle.batch.jobs import Batch, Item, expand, grid, read_manifest
from artstyle.batch.run import SKIPPED, BatchOutcome, BatchReporter, Done, Executor, run_batch
from artstyle.cli.flags import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    Parser,
    add_config_options,
    add_output_options,
    add_ray_options,
    cpus_per_job,
    given_config,
    speaks_flags,
)
from artstyle.cli.report import command, print_warning
from artstyle.errors import ConfigError
from artstyle.files.write import OUTPUT_FORMATS, check_bit_depth, check_jpeg_quality
from artstyle.runs import TERMINATED, WRITTEN, Signals


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="artstyle batch",
        description="Stylize every content image with every style image (or the pictures a manifest lists), "
        "skipping pictures already made; in this process, or as tasks on a Ray cluster.",
    )
    parser.add_argument("content", nargs="*", metavar="CONTENT", help="content images: files, directories or globs")
    parser.add_argument("--styles", nargs="+", default=[], metavar="STYLE", help="the style images of the grid")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="the directory of the pictures")
    parser.add_argument("--manifest", metavar="FILE", help="JSON Lines or CSV: content, styles, ... per picture")
    parser.add_argument(
        "--format", default="png", choices=sorted(ext.lstrip(".") for ext in OUTPUT_FORMATS), help="(default: png)"
    )
    parser.add_argument("--force", action="store_true", help="make again the pictures that are already made")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar (the summary line stays)")
    cluster = parser.add_argument_group("Ray cluster")
    add_ray_options(cluster, "pictures")
    files = parser.add_argument_group("output files")
    files.add_argument("--bit-depth", type=int, default=8, metavar="8|16", help="(default: 8)")
    files.add_argument("--jpeg-quality", type=int, default=95, metavar="Q", help="(default: 95)")
    add_output_options(files)
    add_config_options(parser.add_argument_group("style transfer options (for every picture)"))
    return parser


@speaks_flags
def main(argv: Sequence[str]) -> int:
    """``artstyle batch ...``; returns the exit code."""
    return command(build_parser(), argv, _batch)


def batch_from_args(args: argparse.Namespace) -> Batch:
    """The batch of the command line; ConfigError for a bad grid, manifest or option."""
    check_bit_depth(args.bit_depth, OUTPUT_FORMATS["." + args.format])
    check_jpeg_quality(args.jpeg_quality)
    cpus_per_job(args)
    items: list[Item] = []
    if args.content or args.styles:
        if not args.content or not args.styles:
            raise ConfigError("a grid needs CONTENT images and --styles", option="styles")
        items += grid(expand(args.content), list(args.styles), args.output, args.format)
    if args.manifest:
        items += read_manifest(args.manifest, args.output, args.format)
    if not items:
        raise ConfigError("nothing to do: give CONTENT images and --styles, or a --manifest", option="manifest")
    return Batch(items, given_config(args), args.bit_depth, args.jpeg_quality, args.force)


def _batch(args: argparse.Namespace, signals: Signals) -> int:
    batch = batch_from_args(args)
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
