"""How ``artstyle video`` runs a checked job (:mod:`artstyle.cli.video`): a progress bar over
the frames, and the outcome as a line and an exit code.

Imported once the flags are parsed and checked: it imports the run frame, and PyTorch.
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from artstyle.cli.flags import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE
from artstyle.cli.report import guarded, print_warning
from artstyle.engine import Progress
from artstyle.errors import ConfigError, flag
from artstyle.runs import INTERRUPTED, TERMINATED, WRITTEN, Signals
from artstyle.runs.execute import error_message
from artstyle.video.job import VideoJob
from artstyle.video.run import FrameExecutor, VideoOutcome, VideoReporter, run_video


def stylize_video(job: VideoJob, chunking: tuple[int, int] | None, args: argparse.Namespace) -> int:
    """Run ``job`` :func:`~artstyle.cli.report.guarded`, here or in chunks of ``chunking``
    (frames, overlap) on the Ray cluster of ``--ray``; returns the exit code."""

    def body(signals: Signals) -> int:
        executor: FrameExecutor | None = None
        if chunking is not None:
            from artstyle.video.cluster import RayChunks

            executor = RayChunks(args.ray, args.cpus_per_job, *chunking)
        return report(run_video(job, FrameBar(args.quiet), signals=signals, executor=executor), args.quiet)

    return guarded(body, args.max_pixels)


class FrameBar(VideoReporter):
    """A tqdm bar over the frames (with ETA), the current frame's iteration and losses."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: tqdm | None = None
        self.seen: set[str] = set()
        self.label = ""

    def started(self, frames: int, done: int) -> None:
        self.bar = tqdm(
            total=frames, initial=done, disable=self.quiet, unit="frame", dynamic_ncols=True, file=sys.stderr
        )

    def frame_started(self, index: int, fresh: str | None) -> None:
        self.label = f"frame {index + 1}" + (f" ({fresh})" if fresh and fresh != "independent" else "")

    def progress(self, progress: Progress) -> None:
        if self.bar is None:
            return
        losses = progress.losses
        parts = [f"{self.label} it {progress.step}/{progress.iterations}"]
        parts += [f"{name} {losses[name]:.3g}" for name in ("content", "style", "temporal") if name in losses]
        self.bar.set_postfix_str(" ".join(parts))

    def frame_done(self, index: int) -> None:
        if self.bar is not None:
            if self.bar.total is not None and index + 1 > self.bar.total:
                self.bar.total = index + 1
            self.bar.update(1)

    def scene_cut(self, index: int, reliable: float) -> None:
        if not self.quiet:
            tqdm.write(
                f"artstyle: scene cut at frame {index + 1} (flow trusted on {reliable:.0%} of it): started afresh",
                file=sys.stderr,
            )

    def encoding(self, frames: int) -> None:
        if self.bar is not None:
            self.bar.total = frames
            self.bar.set_postfix_str("writing the video")
            self.bar.refresh()

    def warning(self, message: str) -> None:
        if message not in self.seen:  # every frame would repeat it
            self.seen.add(message)
            print_warning(message)

    def ended(self) -> None:
        if self.bar is not None:
            self.bar.close()


def report(outcome: VideoOutcome, quiet: bool) -> int:
    """The outcome of a video job as lines on stderr, and its exit code."""
    job = outcome.job
    if outcome.kind == WRITTEN:
        cuts = f", scene cuts at frames {', '.join(str(i + 1) for i in outcome.cuts)}" if outcome.cuts else ""
        if not quiet:
            print(
                f"artstyle: wrote {job.output} ({outcome.total} frames, {outcome.seconds:.0f} s{cuts})", file=sys.stderr
            )
        return EXIT_OK
    kept = ""
    if outcome.work is not None:
        kept = f"; {outcome.frames} finished frames kept in {outcome.work}, {flag('resume')} continues"
    if outcome.kind in (INTERRUPTED, TERMINATED):
        word = "stopped by SIGTERM" if outcome.kind == TERMINATED else "interrupted"
        where = "" if outcome.seams else f" at frame {outcome.frames + 1}"  # a cluster's chunks end in any order
        print(f"artstyle: {word}{where}{kept}", file=sys.stderr)
        return EXIT_TERMINATED if outcome.kind == TERMINATED else EXIT_INTERRUPTED
    error = outcome.error
    text = error_message(error) if error is not None else f"the job {outcome.kind}"
    if outcome.failed_frame is not None:
        text = f"frame {outcome.failed_frame + 1}: {text}"
    print(f"artstyle: error: {text}{kept}", file=sys.stderr)
    return EXIT_USAGE if isinstance(error, ConfigError) else EXIT_FAILED
