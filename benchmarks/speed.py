"""Speed benchmark: seconds per iteration, artstyle next to pastiche, in one invocation.

For each size, both tools stylize the same content and style image with L-BFGS for the
same number of iterations, one after the other (never in parallel: they would share the
cores), and we report the mean per-iteration time of each (the first iterations,
which include start-up, are left out) and the ratio. Then it times one default
512-px ``artstyle`` run from process start to the written file.

    python benchmarks/speed.py [--sizes 256 512] [--iterations 20] [--no-default-run]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from artstyle import Stylizer
from artstyle.api import make_config
from artstyle.engine import Progress

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "content" / "rocket.jpg"
STYLE = ROOT / "examples" / "styles" / "starry_night.jpg"
SKIP = 3  # leading iterations left out of the steady-state figure


def _steady_step(stamps: list[float]) -> float:
    """Mean time per step after the first SKIP steps (robust to a coarse clock)."""
    steady = stamps[SKIP:]
    return (steady[-1] - steady[0]) / (len(steady) - 1)


def ours_per_iteration(size: int, iterations: int) -> float:
    """Mean seconds per iteration of artstyle's L-BFGS run, in this process."""
    stamps: list[float] = []

    def record(_: Progress) -> None:
        stamps.append(time.perf_counter())

    Stylizer().run(CONTENT, STYLE, make_config(size=size, iterations=iterations, seed=0), progress=record)
    return _steady_step(stamps)


def pastiche_per_iteration(size: int, iterations: int) -> float:
    """Mean seconds per iteration of ``python -m pastiche`` (its own per-step clock)."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, "-m", "pastiche", "--device", "cpu", "--optimizer", "lbfgs",
            "--size", str(size), "--num-steps", str(iterations), "--info-step", "1", "--seed", "0",
            "-c", str(CONTENT), "-s", str(STYLE), "-o", str(Path(tmp) / "out.png"),
        ]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    # Lines "<step> <elapsed seconds> <loss>" after a header.
    elapsed = [float(m.group(2)) for m in re.finditer(r"^\s*(\d+)\s+([\d.]+)\s+\S+\s*$", output, re.MULTILINE)]
    if len(elapsed) < SKIP + 2:
        raise RuntimeError(f"could not read pastiche's timings from:\n{output}")
    return _steady_step(elapsed)


def default_run_wall_time(size: int) -> float:
    """Wall time of ``artstyle CONTENT STYLE -o OUT --size SIZE`` with default settings."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "artstyle", str(CONTENT), str(STYLE), "-o", str(Path(tmp) / "out.png"),
             "--size", str(size), "-q"],
            check=True,
        )  # fmt: skip
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--no-default-run", action="store_true", help="skip the default 512-px wall-time run")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {CONTENT.name} + {STYLE.name}")
    print(f"{'size':>6}{'artstyle s/it':>15}{'pastiche s/it':>15}{'speed-up':>10}")
    for size in args.sizes:
        ours = ours_per_iteration(size, args.iterations)
        theirs = pastiche_per_iteration(size, args.iterations)
        print(f"{size:>6}{ours:>15.3f}{theirs:>15.3f}{theirs / ours:>9.2f}x", flush=True)
    if not args.no_default_run:
        config = make_config()
        seconds = default_run_wall_time(config.size)
        print(f"default run ({config.size} px, {config.iterations} iterations), process start to file: {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
