"""The plan of a run: its scales (coarse to fine), their iterations, and how each fits in memory.

:func:`plan_stages` lays out the pyramid of sizes; :func:`plan_memory` chooses, per
scale, whether the objective is evaluated tile by tile (see
:mod:`artstyle.engine.tiled`) and how long L-BFGS's history may be, for a budget of
:data:`MEMORY_FRACTION` of the memory available when the run starts
(:func:`available_memory`). One forward and backward pass of VGG19 up to relu5_1 keeps
2.2-2.9 KB of activations per pixel (``benchmarks/memory.py``; :data:`PASS_OVERHEAD`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from artstyle.allocator import free_heap_bytes
from artstyle.features.layers import INDEX, LAYERS, feature_size, min_image_side, min_tile_size

#: L-BFGS's history, as neural-style's; large images may get less (see :func:`plan_memory`).
LBFGS_HISTORY = 100

MEMORY_FRACTION = 0.8
#: The share of that budget L-BFGS's history may take, and the shortest history it is cut to.
HISTORY_SHARE = 0.25
MIN_HISTORY = 5
#: Peak memory of a forward and backward pass, as a multiple of one float32 per output
#: element of every layer up to the deepest (measured on CPU: 0.97 with one thread,
#: 1.17 with two; ``benchmarks/memory.py``).
PASS_OVERHEAD = 1.25
#: Image-sized float32 RGB tensors besides the pass and the history: the optimizer's
#: own vectors, the gradient, copies for the progress and the clamp, the inputs at every
#: scale, the stored content targets.
IMAGE_COPIES = 20
#: The budget when the available memory cannot be read (no /proc/meminfo, no sysconf).
FALLBACK_MEMORY = 8 << 30


@dataclass(frozen=True)
class Stage:
    """One scale of a coarse-to-fine run: the image size and the iterations spent there.

    ``tile_size`` and ``history_size`` say how the scale fits in memory (see
    :func:`plan_memory`): 0 evaluates the objective on the whole image
    at once, otherwise on tiles of at most ``tile_size`` px a side; L-BFGS keeps
    ``history_size`` steps of history.
    """

    height: int
    width: int
    iterations: int
    tile_size: int = 0
    history_size: int = LBFGS_HISTORY


def stage_sizes(height: int, width: int, *, min_size: int, factor: float, min_side: int = 1) -> list[tuple[int, int]]:
    """Sizes from coarse to fine: the full size divided by ``factor`` again and again while
    the long side stays at least ``min_size`` and the short side at least ``min_side``."""
    long = max(height, width)
    sizes = [(height, width)]
    k = 1
    while factor > 1:
        side = long / factor**k
        h, w = round(height * side / long), round(width * side / long)
        if round(side) < min_size or min(h, w) < min_side or (h, w) == sizes[-1]:
            break
        sizes.append((h, w))
        k += 1
    return sizes[::-1]


def plan_stages(
    height: int,
    width: int,
    *,
    iterations: int,
    min_size: int,
    factor: float,
    min_side: int = 1,
    coarse_iterations: int | None = None,
) -> list[Stage]:
    """The stages of a coarse-to-fine run over :func:`stage_sizes` (a single stage when
    ``factor`` is 1): ``iterations`` at the full size, ``coarse_iterations`` (default:
    the same) at the coarsest scale, and a geometric in-between at the scales between
    (100 and 30 give 100, 55, 30 over three scales). ``iterations`` may be 0: the full
    size is then the upsampled previous scale plus its detail (the scales between count
    as if it were 1). When there is only one scale (a picture smaller than twice
    ``min_size``, or no pyramid) it is the coarsest too, and with ``iterations`` 0, with
    nothing to upsample, it gets ``coarse_iterations``: a short run at the full size (so
    ``--preset draft`` works at every size)."""
    sizes = stage_sizes(height, width, min_size=min_size, factor=factor, min_side=min_side)
    coarse = iterations if coarse_iterations is None else coarse_iterations
    last = len(sizes) - 1
    if last == 0 and iterations == 0:
        return [Stage(*sizes[0], max(coarse, 1))]
    ratio = max(iterations, 1) / max(coarse, 1)
    counts = [iterations if i == last else max(1, round(coarse * ratio ** (i / last))) for i in range(last + 1)]
    return [Stage(h, w, n) for (h, w), n in zip(sizes, counts, strict=True)]


def available_memory(device: torch.device, meminfo: str = "/proc/meminfo") -> int:
    """Bytes the run may count on: on a CUDA device its free memory plus what PyTorch's
    cache holds without using it (reserved but not allocated: an earlier run's, which
    the next one reuses); on Linux the kernel's
    estimate of memory available without swapping (``MemAvailable`` in ``meminfo``) plus
    what this process's allocator holds freed (an earlier run's, likewise: see
    :mod:`artstyle.allocator`); elsewhere half of the physical memory, or
    :data:`FALLBACK_MEMORY` when even that is unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free) + max(0, int(cached))
    try:
        with open(meminfo, encoding="ascii") as lines:
            for line in lines:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 + free_heap_bytes()
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, ValueError, OSError):
        return FALLBACK_MEMORY


def pass_bytes(height: int, width: int, layers: Iterable[str]) -> int:
    """Estimated peak memory of one forward and backward pass of the network up to the
    deepest of ``layers`` on an image of this size: every layer's output, one float32
    each, times :data:`PASS_OVERHEAD`."""
    deepest = max(INDEX[name] for name in layers)
    floats = 6 * height * width  # the image and its normalised copy
    for name, _, _, channels in LAYERS[: deepest + 1]:
        h, w = feature_size(name, height, width)
        floats += channels * h * w
    return round(4 * floats * PASS_OVERHEAD)


def _largest_tile(height: int, width: int, layers: Sequence[str], room: int) -> int:
    """The largest tile side (a multiple of the alignment) whose pass fits in ``room``
    bytes, at least :func:`min_tile_size`; 0 when the whole image fits."""
    if pass_bytes(height, width, layers) <= room:
        return 0
    align = min_image_side(layers)
    smallest = min_tile_size(layers)
    side = max(height, width) // align * align
    while side > smallest and pass_bytes(min(side, height), min(side, width), layers) > room:
        side -= align
    return max(side, smallest)


def plan_memory(
    stages: Sequence[Stage],
    *,
    layers: Sequence[str],
    channels: int,
    optimizer: str,
    tile_size: int,
    available: int,
) -> list[Stage]:
    """Each stage with its tile size and L-BFGS history for a memory budget of
    :data:`MEMORY_FRACTION` of ``available`` bytes.

    The history (two float32 vectors of the image's ``channels * H * W`` per step) may
    take :data:`HISTORY_SHARE` of the budget: at most 100 steps, at least
    :data:`MIN_HISTORY`. ``tile_size`` 0 tiles a scale only when one pass of the network
    on the whole of it does not fit beside the history and :data:`IMAGE_COPIES`
    image-sized tensors, with the largest tiles that do; otherwise scales larger than
    ``tile_size`` are tiled with it. A tile as large as the scale means no tiling.
    """
    budget = int(available * MEMORY_FRACTION)
    planned = []
    for stage in stages:
        numel = channels * stage.height * stage.width
        history = LBFGS_HISTORY
        if optimizer == "lbfgs":
            history = max(MIN_HISTORY, min(LBFGS_HISTORY, int(budget * HISTORY_SHARE) // (8 * numel)))
        kept = 8 * numel * (history if optimizer == "lbfgs" else 1) + IMAGE_COPIES * 12 * stage.height * stage.width
        tile = tile_size or _largest_tile(stage.height, stage.width, layers, budget - kept)
        if tile >= max(stage.height, stage.width):
            tile = 0
        planned.append(dataclasses.replace(stage, tile_size=tile, history_size=history))
    return planned
