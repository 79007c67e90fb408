"""VGG19 feature extractor addressed by layer name.

The network is the convolutional part of VGG19 (Simonyan & Zisserman, "Very Deep
Convolutional Networks for Large-Scale Image Recognition", 2014), which Gatys et al.
(2016) use for style transfer. Layers are named as in the paper's style-transfer
literature (``conv1_1``, ``relu1_1`` ... ``relu5_4``, ``pool1`` ... ``pool5``) and the
whole table is generated from one list of block sizes. The module only holds the
architecture; weights and their preprocessing come from :mod:`artstyle.features.weights`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from artstyle.errors import ImageTooSmallError, LayerNameError, WeightsError
from artstyle.features.weights import Preprocessing, VGGWeights

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
_INDEX = {name: i for i, name in enumerate(LAYER_NAMES)}


def check_layer_names(names: Iterable[str], option: str = "layer") -> None:
    """Raise :class:`LayerNameError` with a "did you mean" hint for an unknown name."""
    for name in names:
        if name not in _INDEX:
            close = difflib.get_close_matches(name, LAYER_NAMES, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else "; e.g. relu1_1 ... relu5_4"
            raise LayerNameError(f"{option}: unknown VGG19 layer '{name}'{hint}")


def pools_before(name: str) -> int:
    """How many 2x2 poolings lie before (and including) layer ``name``."""
    return sum(1 for layer in LAYER_NAMES[: _INDEX[name] + 1] if layer.startswith("pool"))


def min_image_side(names: Iterable[str]) -> int:
    """Smallest image side (px) for which every named layer has at least one pixel."""
    deepest = max((pools_before(name) for name in names), default=0)
    return 1 << deepest


def receptive_field(name: str) -> tuple[int, int, int]:
    """Where the features of layer ``name`` look: ``(lo, hi, stride)`` such that feature
    ``k`` (along either axis) depends only on input pixels ``stride*k + lo`` to
    ``stride*k + hi``, inclusive (relu5_1: -70, 85, 16).

    A 3x3 convolution reaches one step further on each side, a 2x2 pooling one step
    further on the high side and doubles the step.
    """
    check_layer_names([name])
    lo = hi = 0
    stride = 1
    for _, kind, *_ in LAYERS[: _INDEX[name] + 1]:
        if kind == "conv":
            lo, hi = lo - stride, hi + stride
        elif kind == "pool":
            hi += stride
            stride *= 2
    return lo, hi, stride


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
        lo, hi, stride = receptive_field(name)
        need = max(need, -lo, hi - stride + 1)
    return -(-need // align) * align


class VGG19Features(nn.Module):
    """Frozen VGG19 convolutional trunk that returns the activations of named layers.

    Args:
        layers: names of the layers whose activations :meth:`forward` returns; the
            network is truncated after the deepest of them.
        weights: trained weights with their preprocessing, or ``None`` for a randomly
            initialised network (for tests), which uses ImageNet mean/std preprocessing.
        pooling: ``"max"`` (as trained) or ``"avg"`` (Gatys et al. found it smoother).

    ``forward`` takes RGB images in [0, 1] of shape (N, 3, H, W) and returns a dict
    mapping each requested name to a (N, C, H', W') tensor.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        layers: Sequence[str],
        weights: VGGWeights | None = None,
        pooling: str = "max",
    ) -> None:
        super().__init__()
        if not layers:
            raise LayerNameError("at least one layer must be requested")
        check_layer_names(layers)
        if pooling not in ("max", "avg"):
            raise LayerNameError(f"pooling: expected 'max' or 'avg', got '{pooling}'")
        self.layers = tuple(dict.fromkeys(layers))
        self.pooling = pooling
        self.preprocessing = weights.preprocessing if weights else Preprocessing.imagenet()
        last = max(_INDEX[name] for name in self.layers)
        self.convs = nn.ModuleDict()
        self._order: list[tuple[str, str]] = []
        for name, kind, c_in, c_out in LAYERS[: last + 1]:
            if kind == "conv":
                self.convs[name] = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
            self._order.append((name, kind))
        if weights is not None:
            self._load(weights)
        self.requires_grad_(False)
        self.eval()
        mean, std = self.preprocessing.tensors()
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def _load(self, weights: VGGWeights) -> None:
        for name, module in self.convs.items():
            conv = cast(nn.Conv2d, module)
            weight = weights.state_dict.get(f"{name}.weight")
            bias = weights.state_dict.get(f"{name}.bias")
            if weight is None or bias is None:
                raise WeightsError(f"{weights.source}: no weights for {name}")
            conv_bias = cast(torch.Tensor, conv.bias)
            for what, got, expected in (("weight", weight, conv.weight), ("bias", bias, conv_bias)):
                if got.shape != expected.shape:
                    raise WeightsError(
                        f"{weights.source}: {name} {what} has shape {tuple(got.shape)}, "
                        f"expected {tuple(expected.shape)}"
                    )
            with torch.no_grad():
                conv.weight.copy_(weight)
                conv_bias.copy_(bias)

    @property
    def min_side(self) -> int:
        """Smallest input side (px) the requested layers accept."""
        return min_image_side(self.layers)

    def check_size(self, height: int, width: int, what: str = "image") -> None:
        """Raise :class:`ImageTooSmallError` if an input of this size is too small."""
        if min(height, width) < self.min_side:
            deepest = max(self.layers, key=LAYER_NAMES.index)
            raise ImageTooSmallError(
                f"{what} is {width}x{height} px; layer {deepest} needs at least {self.min_side} px on each side"
            )

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> the input space of the weights (channel order, scale, mean)."""
        if self.preprocessing.bgr:
            image = image.flip(1)
        return (image * self.preprocessing.scale - self.mean) / self.std

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an (N, 3, H, W) image, got {tuple(image.shape)}")
        self.check_size(image.shape[2], image.shape[3])
        x = self.normalize(image)
        wanted = set(self.layers)
        out: dict[str, torch.Tensor] = {}
        for name, kind in self._order:
            if kind == "conv":
                x = self.convs[name](x)
            elif kind == "relu":
                x = F.relu(x)
            elif self.pooling == "max":
                x = F.max_pool2d(x, 2)
            else:
                x = F.avg_pool2d(x, 2)
            if name in wanted:
                out[name] = x
        return out
