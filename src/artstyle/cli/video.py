"""``artstyle video INPUT STYLE [STYLE ...] -o OUTPUT``: a clip stylized with temporal consistency.

Every still-image option applies to each frame; the video options are below. The job
runs in :func:`artstyle.video.run.run_video`; this module parses the flags, shows a
progress bar over the frames and turns the outcome into a line and an exit code (those
of ``artstyle``: 0, 1 failed, 2 bad options, 130 Ctrl-C, 143 SIGTERM). Needs the
``[video]`` extra (PyAV and OpenCV).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence

from tqdm import tqdm

from artstyle.cli.flags import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    Parser,
    add_config_options,
    add_output_options,
    add_ray_options,
    cpus_per_job,
    given_config,
    speaks_flags,
)
from artstyle.cli.report import command, print_warning
from artstyle.engine import Progress
from artstyle.errors import ConfigError, flag
from artstyle.runs import INTERRUPTED, TERMINATED, WRITTEN, Signals
from artstyle.runs.execute import error_message
from artstyle.video.job import CHUNK_FRAMES, CRF, FLOWS, FRAME_ITERATIONS, OVERLAP, TEMPORAL_WEIGHT, VideoJob
from artstyle.video.run import FrameExecutor, VideoOutcome, VideoReporter, run_video
from artstyle.video.work import recorded_seed


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="artstyle video",
        description="Stylize a video frame by frame, each frame tied to the previous one by optical flow "
        "(Ruder et al. 2016). Every still-image option applies to each frame.",
    )
    parser.add_argument("input", metavar="INPUT", help="the video (any format FFmpeg reads)")
    parser.add_argument("styles", nargs="+", metavar="STYLE", help="one or more style images (artworks)")
    parser.add_argument(
        "-o", "--output", required=True, help="the output: .mp4, .mkv, .mov (H.264), .webm (VP9), or a directory (PNGs)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    video = parser.add_argument_group("video options")
    video.add_argument("--start", type=float, default=0.0, metavar="S", help="start of the excerpt in seconds")
    video.add_argument("--duration", type=float, metavar="S", help="length of the excerpt in seconds (default: all)")
    video.add_argument(
        "--temporal-weight",
        type=float,
        default=TEMPORAL_WEIGHT,
        metavar="W",
        help=f"weight of the temporal term; 0 stylizes each frame on its own (default: {TEMPORAL_WEIGHT:g})",
    )
    video.add_argument(
        "--frame-iterations",
        type=int,
        default=FRAME_ITERATIONS,
        metavar="N",
        help=f"full-size iterations of each frame after the first (default: {FRAME_ITERATIONS})",
    )
    video.add_argument("--flow", choices=FLOWS, default="dis-medium", help="optical flow (default: dis-medium)")
    video.add_argument("--crf", type=int, default=CRF, metavar="Q", help=f"H.264/VP9 quality, 0-51 (default: {CRF})")
    video.add_argument(
        "--resume", action="store_true", help="continue the job whose work folder OUTPUT.work is beside the output"
    )
    video.add_argument("--no-clobber", action="store_true", help="never overwrite an existing output file")
    add_output_options(video)
    _add_cluster_options(parser.add_argument_group("Ray cluster"))
    add_config_options(parser.add_argument_group("style transfer options (for every frame)"))
    return parser


def _add_cluster_options(cluster: argparse._ArgumentGroup) -> None:
    """``--ray``, ``--cpus-per-job`` and the chunking: a video in chunks on a Ray cluster."""
    add_ray_options(cluster, "video in chunks")
    cluster.add_argument(
        "--chunk-frames",
        type=int,
        metavar="N",
        help=f"frames of each chunk, split at scene cuts too (default: {CHUNK_FRAMES}; with --ray only)",
    )
    cluster.add_argument(
        "--overlap",
        type=int,
        metavar="K",
        help=f"frames a chunk starts early, cross-faded with the one before (default: {OVERLAP}; with --ray only)",
    )


@speaks_flags
def main(argv: Sequence[str]) -> int:
    """``artstyle video ...``; returns the exit code."""
    return command(build_parser(), argv, _video)


def _video(args: argparse.Namespace, signals: Signals) -> int:
    job = job_from_args(args)
    executor = executor_from_args(args)
    return report(run_video(job, FrameBar(args.quiet), signals=signals, executor=executor), args.quiet)


def executor_from_args(args: argparse.Namespace) -> FrameExecutor | None:
    """The Ray executor of ``--ray`` (None: this process); ConfigError for chunking without it."""
    cpus = cpus_per_job(args)
    if not args.ray:
        for option in ("chunk_frames", "overlap", "cpus_per_job"):
            if getattr(args, option) is not None:
                raise ConfigError("only applies on a Ray cluster: give --ray too", option=option)
        return None
    from artstyle.video.cluster import RayChunks

    chunk_frames = CHUNK_FRAMES if args.chunk_frames is None else args.chunk_frames
    overlap = min(OVERLAP, chunk_frames - 1) if args.overlap is None else args.overlap  # the default fits short chunks
    return RayChunks(args.ray, cpus, chunk_frames, overlap)


def job_from_args(args: argparse.Namespace) -> VideoJob:
    """The video job of the command line (the seed drawn now, or the resumed job's)."""
    config = given_config(args)
    if config.seed is None:
        seed = recorded_seed(args.output) if args.resume else None
        config = config.replace(seed=seed if seed is not None else secrets.randbelow(2**31))
    return VideoJob(
        input=args.input,
        styles=list(args.styles),
        output=args.output,
        config=config,
        start=args.start,
        duration=args.duration,
        temporal_weight=args.temporal_weight,
        frame_iterations=args.frame_iterations,
        flow=args.flow,
        crf=args.crf,
        resume=args.resume,
        overwrite=not args.no_clobber,
    )


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
