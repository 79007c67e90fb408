"""Temporal consistency of ``artstyle video``: the warping error, per-frame quality, time.

For each clip the benchmark stylizes the same excerpt with ``--temporal-weight 0`` (every
frame on its own, the baseline) and with the default (or the weights given), writing PNG
frame directories under ``benchmarks/out/video/``, and prints for each:

* ``E_warp``: the warping error of Lai et al. 2018, "Learning Blind Video Temporal
  Consistency": the mean over consecutive frame pairs of sum(M |O_t - W(O_t-1)|^2) / sum(M),
  pixels in [0, 1], squared differences summed over the channels, W warping by the
  backward flow and M the occlusion mask. The input clip's own is the floor;
* the per-frame quality of the fixed evaluation (benchmarks/evaluation.py: relative
  content and style errors, neighbour-difference noise), averaged over the frames, each
  frame scored against its own input frame;
* seconds per frame: of the first (a still image's whole run) and the median of the later
  ones (each tied to the one before), also in passes: the seconds of one plain fp32 VGG19
  forward and backward pass to relu5_1 at 512x384 (``speed.py``'s unit, measured in the same
  invocation, before the allocator is set as ``artstyle video`` sets it), so that machines
  compare.

Clips: ``bunny``, an excerpt of ../shared/video/bigbuckbunny.mp4 (CC BY 3.0, (c) 2008
Blender Foundation, www.bigbuckbunny.org; its flow and mask are DIS-medium's with the
consistency check, the same for every variant), and ``synthetic``, a pan and zoom across
a photo with a disc moving over it, rendered here with its exact flow and occlusion mask
(the flow's own error, DIS against the truth, is printed too).

    python benchmarks/video.py                       # both clips, 2 s at 256 px
    python benchmarks/video.py --clips synthetic --weights 0 20 50 200
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from artstyle import Stylizer
from artstyle.allocator import keep_freed_memory
from artstyle.api import make_config
from artstyle.choices import PRECISIONS
from artstyle.files.video import even_size, probe_video, read_frame_png, read_frames
from artstyle.video.flow import certainty, grey, optical_flow, warp, warping_error
from artstyle.video.job import FLOWS, FRAME_ITERATIONS, TEMPORAL_WEIGHT, VideoJob
from artstyle.video.run import VideoReporter, run_video
from evaluation import Evaluator
from speed import PASS_SHAPE, pass_seconds

ROOT = Path(__file__).resolve().parent.parent
BUNNY = ROOT.parent / "shared" / "video" / "bigbuckbunny.mp4"
STYLES = {"starry": ROOT / "examples/styles/starry_night.jpg", "scream": ROOT / "examples/styles/the_scream.jpg"}
OUT = Path(__file__).resolve().parent / "out" / "video"


@dataclass(frozen=True)
class Clip:
    """An input clip with the flow and mask its warping error is measured with."""

    name: str
    path: Path
    frames: list[np.ndarray]  # the input frames at the processing size, RGB uint8
    flows: list[np.ndarray]  # backward flow of frame t (t >= 1) to frame t-1
    masks: list[np.ndarray]  # where that flow holds
    flow_error: str = ""


# --------------------------------------------------------------------------- #
# The synthetic clip: a pan and zoom across a photo, a disc moving over it
# --------------------------------------------------------------------------- #


def _camera(t: int, size: tuple[int, int], photo: tuple[int, int]) -> np.ndarray:
    """The 3x3 map from photo pixels to frame t's pixels: a slow zoom in and a pan."""
    width = size[0]
    scale = width / (0.8 * photo[0]) * (1.0 + 0.006 * t)
    tx, ty = -0.05 * photo[0] * scale - 1.5 * t, -0.05 * photo[1] * scale - 0.6 * t
    return np.array([[scale, 0, tx], [0, scale, ty], [0, 0, 1]], dtype=np.float64)


def synthetic_clip(path: Path, size: tuple[int, int], count: int, rate: int = 25) -> Clip:
    """Render the clip (lossless FFV1 in Matkroska) and its exact backward flows and masks."""
    photo = np.asarray(Image.open(ROOT / "examples/content/rocket.jpg").convert("RGB"))
    disc_src = np.asarray(Image.open(ROOT / "examples/content/chelsea.png").convert("RGB").resize((48, 48)))
    width, height = size
    radius, start, velocity = 20.0, np.array([0.75 * width, 0.35 * height]), np.array([-3.0, 1.2])
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    frames, flows, masks = [], [], []
    for t in range(count):
        camera = _camera(t, size, (photo.shape[1], photo.shape[0]))
        frame = cv2.warpAffine(photo, camera[:2], size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
        centre = start + velocity * t
        inside = (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius**2
        shift = np.array([[1, 0, centre[0] - 24], [0, 1, centre[1] - 24]], dtype=np.float64)
        disc = cv2.warpAffine(disc_src, shift, size, flags=cv2.INTER_LINEAR)
        frame = np.where(inside[..., None], disc, frame).astype(np.uint8)
        frames.append(frame)
        if t:
            flow, mask = _truth(t, size, (photo.shape[1], photo.shape[0]), inside, (centre, centre - velocity), radius)
            flows.append(flow)
            masks.append(mask)
    _write_lossless(path, frames, rate)
    return Clip("synthetic", path, frames, flows, masks)


def _truth(
    t: int,
    size: tuple[int, int],
    photo: tuple[int, int],
    inside: np.ndarray,
    centres: tuple[np.ndarray, np.ndarray],
    radius: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Frame t's exact backward flow and where it holds (not revealed, not out of frame)."""
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    back = _camera(t - 1, size, photo) @ np.linalg.inv(_camera(t, size, photo))
    px = back[0, 0] * xs + back[0, 1] * ys + back[0, 2]
    py = back[1, 0] * xs + back[1, 1] * ys + back[1, 2]
    centre_now, before = centres  # the disc's centre at t and at t - 1
    flow = np.stack([px - xs, py - ys], -1)
    flow[inside] = before - centre_now
    revealed = ~inside & ((px - before[0]) ** 2 + (py - before[1]) ** 2 <= (radius + 1.5) ** 2)
    rim = np.abs(np.hypot(xs - centre_now[0], ys - centre_now[1]) - radius) < 1.5
    sx, sy = xs + flow[..., 0], ys + flow[..., 1]
    outside = (sx < 0) | (sx > width - 1) | (sy < 0) | (sy > height - 1)
    return flow.astype(np.float32), (~(revealed | rim | outside)).astype(np.float32)


def _write_lossless(path: Path, frames: list[np.ndarray], rate: int) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=rate)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "bgr0"
        for pixels in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def flow_error(clip: Clip, method: str) -> str:
    """The end-point error of ``method``'s backward flow against the truth, where it holds."""
    errors = []
    for t in range(1, len(clip.frames)):
        flow = optical_flow(grey(clip.frames[t]), grey(clip.frames[t - 1]), method)
        mask = clip.masks[t - 1] > 0.5
        errors.append(float(np.linalg.norm(flow - clip.flows[t - 1], axis=-1)[mask].mean()))
    return f"{method} {np.mean(errors):.3f} px"


# --------------------------------------------------------------------------- #
# The bunny, its flow estimated
# --------------------------------------------------------------------------- #


def bunny_clip(seconds: float, long_side: int, start: float) -> Clip:
    info = probe_video(str(BUNNY))
    size = even_size(info.width, info.height, long_side)
    frames = [frame.pixels for frame in read_frames(info, start, start + seconds, size)]
    flows, masks = [], []
    for t in range(1, len(frames)):
        now, before = grey(frames[t]), grey(frames[t - 1])
        backward, forward = optical_flow(now, before, "dis-medium"), optical_flow(before, now, "dis-medium")
        flows.append(backward)
        masks.append(certainty(backward, forward))
    return Clip("bunny", BUNNY, frames, flows, masks)


# --------------------------------------------------------------------------- #
# Measuring
# --------------------------------------------------------------------------- #


def _tensor(pixels: np.ndarray) -> torch.Tensor:
    array = pixels.astype(np.float32) / 255.0 if pixels.dtype == np.uint8 else pixels
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None]


def e_warp(frames: list[np.ndarray], clip: Clip) -> float:
    pairs = [
        warping_error(_tensor(frames[t]), warp(_tensor(frames[t - 1]), clip.flows[t - 1]), clip.masks[t - 1])
        for t in range(1, len(frames))
    ]
    return float(np.mean(pairs))


def quality(frames: list[np.ndarray], clip: Clip, style: Path, long_side: int) -> tuple[float, float, float]:
    """Mean relative content error, style error and noise of the frames, each against its input."""
    scores = []
    evaluator = Evaluator(Image.fromarray(clip.frames[0]), Image.open(style).convert("RGB"), size=long_side)
    for output, source in zip(frames, clip.frames, strict=True):
        evaluator = evaluator.with_content(Image.fromarray(source))
        picture = Image.fromarray(np.clip(np.rint(output * 255), 0, 255).astype(np.uint8))
        scores.append(evaluator.score(picture))
    return (
        float(np.mean([s.content_rel for s in scores])),
        float(np.mean([s.style_rel for s in scores])),
        float(np.mean([s.noise for s in scores])),
    )


class _Clock(VideoReporter):
    """Each frame's wall seconds, from its start to its file."""

    def __init__(self) -> None:
        self.began: dict[int, float] = {}
        self.seconds: dict[int, float] = {}

    def frame_started(self, index: int, fresh: str | None) -> None:
        self.began[index] = time.perf_counter()

    def frame_done(self, index: int) -> None:
        self.seconds[index] = time.perf_counter() - self.began[index]


@dataclass(frozen=True)
class Variant:
    """One way of stylizing a clip: the temporal weight and the iterations of a tied frame."""

    weight: float
    frame_iterations: int

    def describe(self) -> str:
        if not self.weight:
            return "each frame on its own (`--temporal-weight 0`)"
        return f"`--temporal-weight {self.weight:g} --frame-iterations {self.frame_iterations}`"


@dataclass(frozen=True)
class Measured:
    variant: Variant
    e_warp: float
    quality: tuple[float, float, float]
    first: float  # seconds of the first frame
    later: float  # median seconds of the frames after the first


def stylize(clip: Clip, style: Path, variant: Variant, args: argparse.Namespace, stylizer: Stylizer) -> Measured:
    out = OUT / f"{clip.name}-{style.stem}-w{variant.weight:g}-i{variant.frame_iterations}"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out.with_name(out.name + ".work"), ignore_errors=True)
    config = make_config(size=args.size, seed=0, precision=args.precision)
    job = VideoJob(
        input=str(clip.path),
        styles=[str(style)],
        output=str(out),
        config=config,
        start=args.start if clip.name == "bunny" else 0.0,
        duration=args.seconds,
        temporal_weight=variant.weight,
        frame_iterations=variant.frame_iterations,
        flow=args.flow,
    )
    clock = _Clock()
    outcome = run_video(job, clock, stylizer=stylizer)
    if not outcome.ok:
        raise SystemExit(f"{clip.name} {variant}: {outcome.kind} {outcome.error}")
    frames = [read_frame_png(path) for path in sorted(out.glob("frame_*.png"))]
    later = statistics.median(clock.seconds[i] for i in sorted(clock.seconds)[1:])
    measured = Measured(variant, e_warp(frames, clip), quality(frames, clip, style, args.size), clock.seconds[0], later)
    content, style_error, noise = measured.quality
    print(
        f"    E_warp {measured.e_warp:.5f}   content {content:.3f}  style {style_error:.3f}  noise {noise:.4f}"
        f"   first frame {measured.first:.1f} s, later frames {later:.2f} s (median)   ({out.relative_to(ROOT)})",
        flush=True,
    )
    return measured


def variants(args: argparse.Namespace) -> list[Variant]:
    """Every weight with every frame-iterations count (once for weight 0, where there is no tie)."""
    found = []
    for weight in args.weights:
        for count in args.frame_iterations if weight else args.frame_iterations[:1]:
            found.append(Variant(weight, count))
    return found


def table_rows(name: str, floor: float, rows: list[Measured], baseline: float | None, unit: float) -> list[str]:
    lines = [f"| {name} | input clip (floor) | {floor:.5f} | | | | | | |"]
    for row in rows:
        ratio = f" ({row.e_warp / baseline:.2f}x)" if baseline and row.variant.weight else ""
        content, style, noise = row.quality
        later = f"{row.later:.2f}" if row.variant.weight else f"{row.later:.2f} (every frame)"
        lines.append(
            f"| | {row.variant.describe()} | {row.e_warp:.5f}{ratio} | {content:.3f} | {style:.3f} | {noise:.4f}"
            f" | {row.first:.1f} | {later} | {row.later / unit:.1f} |"
        )
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", nargs="+", default=["synthetic", "bunny"], choices=["synthetic", "bunny"])
    parser.add_argument("--styles", nargs="+", default=["starry"], choices=sorted(STYLES))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--start", type=float, default=0.0, help="start of the bunny excerpt")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, TEMPORAL_WEIGHT])
    parser.add_argument("--frame-iterations", type=int, nargs="+", default=[FRAME_ITERATIONS])
    parser.add_argument("--flow", choices=FLOWS, default="dis-medium")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--table", type=Path, help="also write the results as a markdown table to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    stylizer = Stylizer()
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, precision {args.precision}")
    unit = pass_seconds(3)
    print(f"one plain fp32 VGG19 pass (forward + backward to relu5_1) at {PASS_SHAPE[1]}x{PASS_SHAPE[0]}: {unit:.3f} s")
    keep_freed_memory()  # the clips run as `artstyle video` runs them (the unit in a plain process)
    table = ["| clip | run | E_warp | content | style | noise | first frame, s | later frames, s | later, passes |"]
    table.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.clips:
        clip = _clip(name, args)
        print(f"{name}: {len(clip.frames)} frames at {clip.frames[0].shape[1]}x{clip.frames[0].shape[0]}")
        if clip.flow_error:
            print(f"  flow end-point error against the truth: {clip.flow_error}")
        floor = e_warp([frame.astype(np.float32) / 255.0 for frame in clip.frames], clip)
        print(f"  input clip itself: E_warp {floor:.5f}")
        for style in args.styles:
            rows = []
            for variant in variants(args):
                print(f"  {style}, {variant.describe()}:")
                rows.append(stylize(clip, STYLES[style], variant, args, stylizer))
            alone = next((row.e_warp for row in rows if not row.variant.weight), None)
            title = clip.name if len(args.styles) == 1 else f"{clip.name}, {style}"
            title += " (exact flow)" if clip.flow_error else " (DIS flow)"
            table += table_rows(title, floor, rows, alone, unit)
    if args.table is not None:
        command = " ".join(["python benchmarks/video.py", *(argv if argv is not None else sys.argv[1:])])
        note = (
            f"Made by `{command}` on {datetime.date.today()} ({platform.machine()}, torch {torch.__version__}, "
            f"precision {args.precision})."
        )
        args.table.write_text("\n".join(table) + "\n\n" + note + "\n")
    return 0


def _clip(name: str, args: argparse.Namespace) -> Clip:
    if name == "bunny":
        return bunny_clip(args.seconds, args.size, args.start)
    width, height = 256 * args.size // 256, 144 * args.size // 256
    clip = synthetic_clip(OUT / "synthetic.mkv", (width - width % 2, height - height % 2), round(args.seconds * 25))
    errors = ", ".join(flow_error(clip, method) for method in FLOWS)
    return Clip(clip.name, clip.path, clip.frames, clip.flows, clip.masks, errors)


if __name__ == "__main__":
    sys.exit(main())
