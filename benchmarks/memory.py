"""Peak memory and time of one evaluation of the objective, whole or in tiles.

    python benchmarks/memory.py --sizes 256 512 --tiles 0
    python benchmarks/memory.py --sizes 1024 --tiles 0 512 768

Each measurement runs in a fresh process: the default layers (relu1_1 ... relu5_1,
relu4_2) with random weights (time and memory do not depend on their values), a 4:3
picture whose long side is SIZE, one style image of the same size, and one evaluation
of the loss and its gradient, as one L-BFGS iteration does. TILE 0 is the untiled
objective, otherwise artstyle.tiling.TiledObjective with that tile size. Printed: the
number of tiles, the crops' total area over the picture's, the peak resident memory
above what the process held before the evaluation (Linux: VmHWM after resetting it
through /proc/self/clear_refs; elsewhere getrusage's peak), artstyle.tiling's estimate
for one pass (of the whole picture, or of the largest crop), and the seconds taken.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

import torch

from artstyle.api import objective_options
from artstyle.config import Config
from artstyle.engine import Objective
from artstyle.engine.plan import pass_bytes
from artstyle.engine.tiled import TiledObjective
from artstyle.features.vgg import VGG19Features


def _status(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def measure(size: int, tile: int) -> dict[str, Any]:
    """One evaluation at this size and tile size (in this process)."""
    config = Config()
    height, width = size * 3 // 4, size
    generator = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, height, width, generator=generator)
    style = torch.rand(1, 3, height, width, generator=generator)
    net = VGG19Features(config.layers)
    options = objective_options(config)
    image = content.clone().requires_grad_(True)
    if tile:
        tiled = TiledObjective(net, content, [style], tile_size=tile, **options)
        crops = [(t.bottom - t.top) * (t.right - t.left) for t in tiled.tiles]
        largest = max(tiled.tiles, key=lambda t: (t.bottom - t.top) * (t.right - t.left))
        estimate = pass_bytes(largest.bottom - largest.top, largest.right - largest.left, config.layers)
    else:
        untiled = Objective(net, content, [style], **options)
        crops = [height * width]
        estimate = pass_bytes(height, width, config.layers)
    del style
    exact = _reset_peak()
    before = _status("VmRSS") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    if tile:
        tiled.loss_and_gradient(image)
    else:
        total, _ = untiled(image)
        total.backward()  # type: ignore[no-untyped-call]
    seconds = time.perf_counter() - started
    peak = _status("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "size": f"{width}x{height}",
        "tile": tile,
        "tiles": len(crops),
        "area": sum(crops) / (height * width),
        "peak_mb": ((peak or 0) - (before or 0)) / 2**20,
        "estimate_mb": estimate / 2**20,
        "seconds": seconds,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--tiles", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--child", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(measure(*args.child)))
        return
    print("| size | tile | tiles | crop area | peak above start | estimate (one pass) | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        for tile in args.tiles:
            command = [sys.executable, __file__, "--threads", str(args.threads), "--child", str(size), str(tile)]
            row = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            print(
                f"| {row['size']} | {row['tile'] or 'whole'} | {row['tiles']} | {row['area']:.2f}x "
                f"| {row['peak_mb']:.0f} MB | {row['estimate_mb']:.0f} MB | {row['seconds']:.1f} s |",
                flush=True,
            )


if __name__ == "__main__":
    main()
