"""The arithmetic of the speed benchmark (speed.py), kept apart so tests can check it.

Nothing here times or runs anything: FLOP counts of a VGG19 pass, steady-state step
times from a list of clock readings, pastiche's printed clock and workspace file names,
the first point of a loss curve that reaches a reference, and L-BFGS history sizes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from artstyle.features.vgg import LAYERS

#: The deepest layer artstyle's default objective reads is relu5_1, so its pass ends at conv5_1.
DEEPEST_CONV = "conv5_1"
FLOAT32_BYTES = 4


@dataclass(frozen=True)
class ConvShape:
    """One 3x3, stride 1, padding 1 convolution of VGG19 at a given input size."""

    name: str
    c_in: int
    c_out: int
    height: int
    width: int

    @property
    def forward_flops(self) -> int:
        """Multiply-adds counted as two FLOPs: 2 * Cin * Cout * 9 * H * W."""
        return 2 * self.c_in * self.c_out * 9 * self.height * self.width


def conv_shapes(height: int, width: int, deepest: str = DEEPEST_CONV) -> list[ConvShape]:
    """The convolutions of VGG19 up to ``deepest`` for an (height, width) image; every
    2x2 pooling floors the size, as ``max_pool2d`` does."""
    shapes: list[ConvShape] = []
    for name, kind, c_in, c_out in LAYERS:
        if kind == "pool":
            height, width = height // 2, width // 2
        elif kind == "conv":
            shapes.append(ConvShape(name, c_in, c_out, height, width))
            if name == deepest:
                return shapes
    raise ValueError(f"no convolution named {deepest!r}")


def forward_flops(height: int, width: int, deepest: str = DEEPEST_CONV) -> int:
    """FLOPs of the convolutions of one forward pass to ``deepest``."""
    return sum(shape.forward_flops for shape in conv_shapes(height, width, deepest))


def iteration_flops(height: int, width: int, deepest: str = DEEPEST_CONV) -> int:
    """FLOPs of the convolutions of one style-transfer iteration: the forward pass and the
    gradient with respect to each convolution's input, which costs as much again (the
    weights are frozen, so no weight gradient is computed)."""
    return 2 * forward_flops(height, width, deepest)


def distinct_shapes(shapes: Iterable[ConvShape]) -> list[tuple[ConvShape, int]]:
    """Shapes with equal (Cin, Cout, H, W) merged: the first of each, and how many there are."""
    merged: dict[tuple[int, int, int, int], list[ConvShape]] = {}
    for shape in shapes:
        merged.setdefault((shape.c_in, shape.c_out, shape.height, shape.width), []).append(shape)
    return [(group[0], len(group)) for group in merged.values()]


def steady_seconds(stamps: Sequence[float], skip: int) -> float:
    """Mean seconds per step from clock readings taken after each step, leaving out the
    first ``skip`` readings (start-up, warm-up). Robust to a coarse clock: only the first
    and the last kept readings are used."""
    kept = stamps[skip:]
    if len(kept) < 2:
        raise ValueError(f"{len(stamps)} clock readings are too few to leave out {skip} and time a step")
    return (kept[-1] - kept[0]) / (len(kept) - 1)


_PASTICHE_CLOCK = re.compile(r"^(\d+)\s+(\d+(?:\.\d+)?)\s+\S+\s*$", re.MULTILINE)


def pastiche_clock(output: str) -> list[tuple[int, float]]:
    """(step, seconds since pastiche's ``main`` started) from its ``step elapsed loss`` lines."""
    return [(int(m.group(1)), float(m.group(2))) for m in _PASTICHE_CLOCK.finditer(output)]


def workspace_step(file_name: str, prefix: str = "") -> int | None:
    """The step of a pastiche workspace image (``<prefix><zero-padded step>.png``), else None."""
    match = re.fullmatch(re.escape(prefix) + r"(\d+)\.png", file_name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class CurvePoint:
    """One scored snapshot of a run: wall seconds since the process started, the step, the losses."""

    seconds: float
    step: int
    content: float
    style: float

    def reaches(self, content: float, style: float) -> bool:
        """Both numbers no worse (no higher) than the reference's."""
        return self.content <= content and self.style <= style


def first_reached(curve: Iterable[CurvePoint], content: float, style: float) -> CurvePoint | None:
    """The earliest point (by time) whose content and style losses are both no higher than
    ``content`` and ``style``; None if no point gets there."""
    reached = [point for point in curve if point.reaches(content, style)]
    return min(reached, key=lambda point: point.seconds) if reached else None


def history_bytes(entries: int, numel: int) -> int:
    """Memory of an L-BFGS history of ``entries`` pairs of float32 vectors of ``numel`` values."""
    return 2 * entries * numel * FLOAT32_BYTES


def lbfgs_history_entries(iterations: int, history_size: int, warmup: int) -> int:
    """History pairs L-BFGS holds after ``iterations`` at one scale, the first ``warmup`` of
    which (at most all but one) are Adam's: each L-BFGS step after its first adds a pair."""
    lbfgs_steps = iterations - min(warmup, iterations - 1)
    return min(history_size, max(0, lbfgs_steps - 1))
