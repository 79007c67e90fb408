"""Host syncs per iteration: how often a run waits for the device to hand back a value.

On a GPU every read of a tensor's value (``float(t)``, ``bool(t)``, ``t.item()``,
``t.tolist()``) stops the host until the device's queue has drained: a round trip that,
at 512 px on a fast GPU, costs about as much as the network's own work per iteration.
The CPU has no queue, but the reads are the same calls, so they can be counted here:
``aten._local_scalar_dense`` (what ``float``, ``bool``, ``int`` and ``item`` become) at
PyTorch's dispatcher and ``Tensor.tolist``/``Tensor.numpy`` at its function layer.

One single-scale run at --size with the bundled weights (the default objective and
L-BFGS, its Adam warm-up first), counted iteration by iteration, beside the peer:
``torch.optim.LBFGS`` as pastiche runs it (``max_iter=1``, ``lr=1``, history 100) on the
same objective from the same start. Printed by phase and by the length of L-BFGS's
history, so that growth with the history shows.

    python benchmarks/syncs.py [--size 96] [--iterations 60] [--device cpu] [--write docs/tables/syncs.md]

``--write`` also writes the table (with the command and the machine) to that file, which
the documentation includes.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from artstyle import Stylizer
from artstyle.api import make_config, objective_options
from artstyle.engine import Objective
from artstyle.engine.loop import LBFGS_WARMUP_STEPS
from artstyle.engine.targets import target_key

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: Function-layer reads that reach no dispatcher op (they copy the data out directly).
READS = ("tolist", "numpy")


class SyncCounter:
    """Counts the host's reads of tensor values while it is entered (see the module)."""

    def __init__(self) -> None:
        self.count = 0
        counter = self

        class _Dispatch(TorchDispatchMode):
            def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                if func is torch.ops.aten._local_scalar_dense.default:
                    counter.count += 1
                return func(*args, **(kwargs or {}))

        class _Function(TorchFunctionMode):
            def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                if getattr(func, "__name__", "") in READS:
                    counter.count += 1
                return func(*args, **(kwargs or {}))

        self._modes = (_Function(), _Dispatch())

    def __enter__(self) -> SyncCounter:
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)


def per_iteration(run: Callable[[Callable[[], None]], None]) -> list[int]:
    """Syncs of each iteration of ``run``, which calls ``mark()`` after every iteration
    (the syncs before the first mark belong to the first iteration)."""
    counter, marks = SyncCounter(), [0]

    def mark() -> None:
        marks.append(counter.count)

    with counter:
        run(mark)
    return [after - before for before, after in itertools.pairwise(marks)]


def artstyle_counts(stylizer: Stylizer, plan: Any) -> list[int]:
    """artstyle's run of ``plan``, counted per iteration (the Progress callback marks them)."""

    def run(mark: Callable[[], None]) -> None:
        stylizer.run(plan, progress=lambda _progress: mark())

    return per_iteration(run)


def peer_counts(stylizer: Stylizer, plan: Any, iterations: int) -> list[int]:
    """torch.optim.LBFGS as pastiche runs it, on the plan's objective from the photo."""
    config, scale = plan.config, plan.scales[-1]
    net = stylizer.network(config.layers, config.pooling)
    stats = plan.style_targets.get(target_key(scale.styles, scale.stage.tile_size))
    objective = Objective(net, scale.content, scale.styles, **objective_options(config), style_stats=stats)
    image = scale.content.detach().clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], max_iter=1, lr=1.0, history_size=100)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss, _ = objective(image)
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    def run(mark: Callable[[], None]) -> None:
        for _ in range(iterations):
            optimizer.step(closure)
            with torch.no_grad():
                image.clamp_(0, 1)
            mark()

    return per_iteration(run)


def rows(name: str, counts: Sequence[int], first_lbfgs: int, bucket: int) -> list[list[str]]:
    """Table rows: the warm-up, then L-BFGS by history length in buckets of ``bucket``."""
    out = []
    if first_lbfgs > 0:
        out.append([name, "Adam warm-up", f"1-{first_lbfgs}", "-", *_figures(counts[:first_lbfgs])])
    lbfgs = counts[first_lbfgs:]
    for start in range(0, len(lbfgs), bucket):
        part = lbfgs[start : start + bucket]
        steps = f"{first_lbfgs + start + 1}-{first_lbfgs + start + len(part)}"
        history = f"{start}-{start + len(part) - 1}"
        out.append([name, "L-BFGS", steps, history, *_figures(part)])
    return out


def _figures(counts: Sequence[int]) -> list[str]:
    return [f"{statistics.mean(counts):.1f}", str(max(counts))]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--bucket", type=int, default=10, help="history lengths per row")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--content", default=str(EXAMPLES / "content" / "chelsea.png"))
    parser.add_argument("--style", default=str(EXAMPLES / "styles" / "starry_night.jpg"))
    parser.add_argument("--write", help="also write the table, in Markdown, to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # one thread: the counts do not depend on it, and the machine is shared
    stylizer = Stylizer(device=args.device)
    config = make_config(
        size=args.size, iterations=args.iterations, pyramid=False, seed=0, device=args.device, precision="fp32"
    )
    plan = stylizer.prepare(args.content, args.style, config)
    table = rows("artstyle BoxLBFGS", artstyle_counts(stylizer, plan), LBFGS_WARMUP_STEPS, args.bucket)
    table += rows("torch.optim.LBFGS (pastiche)", peer_counts(stylizer, plan, args.iterations), 0, args.bucket)
    lines = [
        "| optimizer | phase | iterations | L-BFGS history | syncs per iteration: mean | max |",
        "| --- | --- | --- | --- | --- | --- |",
        *(f"| {' | '.join(row)} |" for row in table),
        "",
        f"{args.size} px, one scale, {args.iterations} iterations, fp32, device {plan.device}; "
        f"{platform.machine()}, torch {torch.__version__}; the first iteration includes the run's set-up. "
        f"Made by `python benchmarks/syncs.py {' '.join(argv if argv is not None else sys.argv[1:])}`.".replace(
            " `", " `", 1
        ),
    ]
    print("\n".join(lines))
    if args.write:
        Path(args.write).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
