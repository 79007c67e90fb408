"""A video in chunks on a Ray cluster: what the seams cost in temporal consistency, and
what the overlap buys.

The benchmark starts a real two-node Ray cluster on this machine (head and worker, one CPU
each, on 127.0.0.2: benchmarks/batch.py's) and stylizes one excerpt four ways, writing PNG
frame directories under ``benchmarks/out/video_ray/``:

* ``one chain``: the whole excerpt in this process, each frame tied to the one before (the
  reference: no seams);
* ``chunks, no overlap``: chunks of ``--chunk-frames`` on the cluster, each starting afresh;
* ``chunks, warm-up only``: each chunk after the first starts ``--overlap`` frames early
  (its chain warmed up on them), the overlap's frames kept from the chunk before;
* ``chunks, cross-fade`` (the default): the same, the overlap's frames cross-faded.

For each it prints the seconds, the warping error (benchmarks/video.py's E_warp, Lai et
al. 2018) over all frame steps, inside chunks and around the seams: the ``overlap + 1``
steps into each chunk's first own frame, the same steps for every variant (for ``one
chain`` too, at the same frames), with the worst single step there; and the mean per-frame
quality of the fixed evaluation. The clip is benchmarks/video.py's Big Buck Bunny excerpt
(CC BY 3.0, (c) 2008 Blender Foundation, www.bigbuckbunny.org).

    python benchmarks/video_ray.py                    # 2 s at 256 px, chunks of 10, overlap 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from artstyle.api import make_config
from artstyle.files.video import read_frame_png
from artstyle.video.flow import warp, warping_error
from artstyle.video.job import VideoJob
from artstyle.video.run import FrameExecutor, run_video
from artstyle.video.work import work_path
from batch import RAY_ENV, Cluster
from video import STYLES, Clip, bunny_clip, quality
from video import _tensor as tensor

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "out" / "video_ray"


def steps(frames: list[np.ndarray], clip: Clip) -> list[float]:
    """The warping error of every frame step t-1 -> t (index t - 1)."""
    return [
        warping_error(tensor(frames[t]), warp(tensor(frames[t - 1]), clip.flows[t - 1]), clip.masks[t - 1])
        for t in range(1, len(frames))
    ]


def stylize(clip: Clip, name: str, args: argparse.Namespace, executor: FrameExecutor | None) -> list[np.ndarray]:
    out = OUT / name
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(work_path(str(out)), ignore_errors=True)
    job = VideoJob(input=str(clip.path), styles=[str(STYLES[args.style])], output=str(out),
                   config=make_config(size=args.size, seed=0), start=args.start, duration=args.seconds)  # fmt: skip
    began = time.perf_counter()
    outcome = run_video(job, executor=executor)
    if not outcome.ok:
        raise SystemExit(f"{name}: {outcome.kind} {outcome.error}")
    seconds = time.perf_counter() - began
    frames = [read_frame_png(path) for path in sorted(out.glob("frame_*.png"))]
    print(f"  {name}: {seconds:.1f} s ({seconds / len(frames):.2f} s per frame), seams at {list(outcome.seams)}")
    return frames


def report(name: str, frames: list[np.ndarray], clip: Clip, seams: list[int], overlap: int, style: Path) -> None:
    errors = steps(frames, clip)
    around = {step for seam in seams for step in range(seam - overlap - 1, seam) if step >= 0}
    inside = [error for step, error in enumerate(errors) if step not in around]
    near = [errors[step] for step in sorted(around)]
    content, style_error, noise = quality(frames, clip, style, frames[0].shape[1])
    print(f"    {name:24s} E_warp all {np.mean(errors):.5f}  inside chunks {np.mean(inside):.5f}  "
          f"around seams {np.mean(near):.5f} (worst step {max(near):.5f})  "
          f"content {content:.3f}  style {style_error:.3f}  noise {noise:.4f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--style", default="starry", choices=sorted(STYLES))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--start", type=float, default=0.0)
    parser.add_argument("--chunk-frames", type=int, default=10)
    parser.add_argument("--overlap", type=int, default=4)
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    os.environ.update(RAY_ENV)
    import ray

    from artstyle.video.cluster import RayChunks

    clip = bunny_clip(args.seconds, args.size, args.start)
    print(f"bunny: {len(clip.frames)} frames at {clip.frames[0].shape[1]}x{clip.frames[0].shape[0]}, "
          f"chunks of {args.chunk_frames}, overlap {args.overlap}; this machine: {os.cpu_count()} CPUs")  # fmt: skip
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = {"one chain (this process)": stylize(clip, "chain", args, None)}
    cluster = Cluster()
    try:
        print(f"  Ray cluster (head + worker, 1 CPU each) up in {cluster.start_seconds:.1f} s")
        ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
        variants = {"chunks, no overlap": (0, True), "chunks, warm-up only": (args.overlap, False),
                    "chunks, cross-fade": (args.overlap, True)}  # fmt: skip
        for name, (overlap, crossfade) in variants.items():
            executor = RayChunks(cluster.address, 1, args.chunk_frames, overlap, crossfade)
            results[name] = stylize(clip, name.replace(", ", "-").replace(" ", "-"), args, executor)
    finally:
        ray.shutdown()
        cluster.close()
    seams = list(range(args.chunk_frames, len(clip.frames), args.chunk_frames))
    print(f"  frame steps around the seams: the {args.overlap + 1} into each of frames {seams} (from 0)")
    for name, frames in results.items():
        report(name, frames, clip, seams, args.overlap, STYLES[args.style])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
