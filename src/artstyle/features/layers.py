"""The one table of VGG19's layers: names, kinds, channels, strides and receptive fields.

Layers are named as in the style-transfer literature (``conv1_1``, ``relu1_1`` ...
``relu5_4``, ``pool1`` ... ``pool5``), generated from one list of block sizes. The
architecture (:mod:`artstyle.features.vgg`), the weight adapters
(:mod:`artstyle.features.weights`), the configuration and the tiled objective all read
this table; nothing here needs a network or weights.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from artstyle.errors import LayerNameError

# (number of conv layers, output channels) for each of the five blocks.
BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))


def _layer_table() -> tuple[tuple[str, str, int, int], ...]:
    """Every layer as (name, kind, in_channels, out_channels), in network order."""
    table: list[tuple[str, str, int, int]] = []
    channels = 3
    for block, (n_convs, width) in enumerate(BLOCKS, start=1):
        for i in range(1, n_convs + 1):
            table.append((f"conv{block}_{i}", "conv", channels, width))
            table.append((f"relu{block}_{i}", "relu", width, width))
            channels = width
        table.append((f"pool{block}", "pool", width, width))
    return tuple(table)


LAYERS = _layer_table()
LAYER_NAMES: tuple[str, ...] = tuple(name for name, *_ in LAYERS)
CONV_NAMES: tuple[str, ...] = tuple(name for name, kind, *_ in LAYERS if kind == "conv")
INDEX = {name: i for i, name in enumerate(LAYER_NAMES)}


def check_layer_names(names: Iterable[str], option: str | None = None) -> None:
    """Raise :class:`LayerNameError` (for ``option``) with a "did you mean" hint for an unknown name."""
    for name in names:
        if name not in INDEX:
            close = difflib.get_close_matches(name, LAYER_NAMES, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else "; e.g. relu1_1 ... relu5_4"
            problem = f"unknown VGG19 layer '{name}'{hint}"
            raise LayerNameError(problem, option=option) if option else LayerNameError(f"layer: {problem}")


def deepest(names: Iterable[str]) -> str:
    """The deepest of the named layers."""
    return max(names, key=INDEX.__getitem__)


def pools_before(name: str) -> int:
    """How many 2x2 poolings lie before (and including) layer ``name``."""
    return sum(1 for layer in LAYER_NAMES[: INDEX[name] + 1] if layer.startswith("pool"))


def stride(name: str) -> int:
    """Input pixels per feature position at layer ``name`` (relu5_1: 16)."""
    return 1 << pools_before(name)


def feature_size(name: str, height: int, width: int) -> tuple[int, int]:
    """The size of layer ``name``'s features for an image of this size (poolings round down)."""
    step = stride(name)
    return height // step, width // step


def min_image_side(names: Iterable[str]) -> int:
    """Smallest image side (px) for which every named layer has at least one pixel."""
    most = max((pools_before(name) for name in names), default=0)
    return 1 << most


def receptive_field(name: str) -> tuple[int, int, int]:
    """Where the features of layer ``name`` look: ``(lo, hi, stride)`` such that feature
    ``k`` (along either axis) depends only on input pixels ``stride*k + lo`` to
    ``stride*k + hi``, inclusive (relu5_1: -70, 85, 16).

    A 3x3 convolution reaches one step further on each side, a 2x2 pooling one step
    further on the high side and doubles the step.
    """
    check_layer_names([name])
    lo = hi = 0
    step = 1
    for _, kind, *_ in LAYERS[: INDEX[name] + 1]:
        if kind == "conv":
            lo, hi = lo - step, hi + step
        elif kind == "pool":
            hi += step
            step *= 2
    return lo, hi, step


def context_margin(names: Iterable[str]) -> int:
    """Pixels of context a crop needs around a region so that, for every named layer, the
    features of the region computed from the crop are exactly those of the whole image.

    The region's edges must lie on multiples of :func:`min_image_side` (so that the crop's
    poolings line up with the whole image's); the margin is a multiple of it too (relu5_1:
    80 px).
    """
    names = list(names)
    align = min_image_side(names)
    need = 0
    for name in names:
        lo, hi, step = receptive_field(name)
        need = max(need, -lo, hi - step + 1)
    return -(-need // align) * align


def min_tile_size(layers: Iterable[str]) -> int:
    """The smallest tile worth having: the smallest core plus its context on both sides."""
    layers = list(layers)
    return min_image_side(layers) + 2 * context_margin(layers)
