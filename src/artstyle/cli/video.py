"""``artstyle video INPUT STYLE [STYLE ...] -o OUTPUT``: a clip stylized with temporal consistency.

Every still-image option applies to each frame; the video options are below. The job
runs in :func:`artstyle.video.run.run_video`; this module parses and checks the flags
(without importing PyTorch: a bad option is answered at once) and
:mod:`~artstyle.cli.video_run` shows a progress bar over the frames and turns the outcome
into a line and an exit code (those of ``artstyle``: 0, 1 failed, 2 bad options, 130
Ctrl-C, 143 SIGTERM). Needs the ``[video]`` extra (PyAV and OpenCV).
"""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Sequence

from artstyle.cli.flags import (
    Parser,
    add_config_options,
    add_output_options,
    add_ray_options,
    check_ray_options,
    given_config,
    parse_checked,
    speaks_flags,
)
from artstyle.config import check_style_inputs
from artstyle.errors import ConfigError
from artstyle.files.options import check_max_pixels
from artstyle.video.job import (
    CHUNK_FRAMES,
    CRF,
    FLOWS,
    FRAME_ITERATIONS,
    OVERLAP,
    TEMPORAL_WEIGHT,
    VideoJob,
    check_chunking,
)


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
    parsed = parse_checked(build_parser(), argv, _checked)
    if isinstance(parsed, int):
        return parsed
    args, (job, chunking) = parsed
    from artstyle.cli.video_run import stylize_video  # PyTorch from here on

    return stylize_video(job, chunking, args)


def _checked(args: argparse.Namespace) -> tuple[VideoJob, tuple[int, int] | None]:
    """The video job and its chunking, checked (ConfigError) before PyTorch is imported."""
    check_max_pixels(args.max_pixels)
    return job_from_args(args), chunking_from_args(args)


def chunking_from_args(args: argparse.Namespace) -> tuple[int, int] | None:
    """The chunks' frames and overlap of ``--ray`` (the defaults where not given), checked;
    None without ``--ray`` (this process), where the chunking options are a ConfigError."""
    check_ray_options(args)
    if not args.ray:
        for option in ("chunk_frames", "overlap", "cpus_per_job"):
            if getattr(args, option) is not None:
                raise ConfigError("only applies on a Ray cluster: give --ray too", option=option)
        return None
    chunk_frames = CHUNK_FRAMES if args.chunk_frames is None else args.chunk_frames
    overlap = min(OVERLAP, chunk_frames - 1) if args.overlap is None else args.overlap  # the default fits short chunks
    check_chunking(chunk_frames, overlap)
    return chunk_frames, overlap


def job_from_args(args: argparse.Namespace) -> VideoJob:
    """The video job of the command line (the seed drawn now, or the resumed job's)."""
    config = given_config(args)
    check_style_inputs(config, len(args.styles))
    if config.seed is None:
        seed = None
        if args.resume:
            from artstyle.video.work import recorded_seed  # the work folder's (numpy)

            seed = recorded_seed(args.output)
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
