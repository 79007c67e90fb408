"""VGG19 feature extractor addressed by layer name.

The network is the convolutional part of VGG19 (Simonyan & Zisserman, "Very Deep
Convolutional Networks for Large-Scale Image Recognition", 2014), which Gatys et al.
(2016) use for style transfer, built from the one layer table of
:mod:`artstyle.features.layers` (``conv1_1``, ``relu1_1`` ... ``relu5_4``, ``pool1`` ...
``pool5``). The module only holds the architecture; weights and their preprocessing
come from :mod:`artstyle.features.weights`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from artstyle.errors import ImageTooSmallError, LayerNameError, WeightsError
from artstyle.features import winograd
from artstyle.features.layers import (
    CONV_NAMES,
    INDEX,
    LAYER_NAMES,
    LAYERS,
    check_layer_names,
    context_margin,
    deepest,
    min_image_side,
    pools_before,
    receptive_field,
)
from artstyle.features.weights import Preprocessing, VGGWeights

# The layer table lives in artstyle.features.layers; these names stay importable from here.
__all__ = [
    "CONV_NAMES",
    "LAYERS",
    "LAYER_NAMES",
    "VGG19Features",
    "check_layer_names",
    "context_margin",
    "min_image_side",
    "pools_before",
    "receptive_field",
]

#: The convolutions that run by Winograd's algorithm on the CPU in float32 (see
#: :mod:`artstyle.features.winograd`): conv2_2 and deeper, whose input channels are 128 or
#: more. The three with 64 or 3 stay with PyTorch's direct convolution, which is faster there:
#: their transforms would be mostly memory traffic for few multiplications saved.
WINOGRAD_CONVS = frozenset(CONV_NAMES[CONV_NAMES.index("conv2_2") :])


class VGG19Features(nn.Module):
    """Frozen VGG19 convolutional trunk that returns the activations of named layers.

    Args:
        layers: names of the layers whose activations :meth:`forward` returns; the
            network is truncated after the deepest of them.
        weights: trained weights with their preprocessing, or ``None`` for a randomly
            initialised network (for tests), which uses ImageNet mean/std preprocessing.
        pooling: ``"max"`` (as trained) or ``"avg"`` (Gatys et al. found it smoother).
        device: where the network lives. With ``weights``, the layers are laid out
            without memory (on PyTorch's ``meta`` device) and take copies of the weights
            made straight on ``device``: nothing is initialised at random only to be
            overwritten, and nothing is moved afterwards.
        fast: where an input is float32 on the CPU outside autocast, lay the activations
            out channels last and run :data:`WINOGRAD_CONVS` by Winograd's algorithm (equal
            to the direct convolution to about 1e-5; a layer's transformed kernels, both
            directions of the tiling its map size takes, are made at its first such input:
            some 530 MB for a default 512-px run, 1 GB once a 1024-px scale has run; the
            memory plan does not count them). The default fp32 run takes some 0.65x the
            time. ``False``: PyTorch's direct convolutions in its
            default layout everywhere, the plain network the speed benchmarks count in.

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
        device: torch.device | str = "cpu",
        fast: bool = True,
    ) -> None:
        super().__init__()
        if not layers:
            raise LayerNameError("at least one layer must be requested")
        check_layer_names(layers)
        if pooling not in ("max", "avg"):
            raise LayerNameError(f"pooling: expected 'max' or 'avg', got '{pooling}'")
        self.layers = tuple(dict.fromkeys(layers))
        self.pooling = pooling
        self.fast = fast
        self._kernels: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self.preprocessing = weights.preprocessing if weights else Preprocessing.imagenet()
        last = INDEX[deepest(self.layers)]
        self.convs = nn.ModuleDict()
        self._order: list[tuple[str, str]] = []
        with torch.device("meta" if weights is not None else device):
            for name, kind, c_in, c_out in LAYERS[: last + 1]:
                if kind == "conv":
                    self.convs[name] = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
                self._order.append((name, kind))
        if weights is not None:
            self._load(weights, torch.device(device))
        self.requires_grad_(False)
        self.eval()
        mean, std = self.preprocessing.tensors()
        self.register_buffer("mean", mean.to(device), persistent=False)
        self.register_buffer("std", std.to(device), persistent=False)

    def _load(self, weights: VGGWeights, device: torch.device) -> None:
        """Each layer's weight and bias, checked, copied onto ``device`` in float32."""
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
            conv.weight = nn.Parameter(_copy_to(weight, device), requires_grad=False)
            conv.bias = nn.Parameter(_copy_to(bias, device), requires_grad=False)

    @property
    def min_side(self) -> int:
        """Smallest input side (px) the requested layers accept."""
        return min_image_side(self.layers)

    def check_size(self, height: int, width: int, what: str = "image") -> None:
        """Raise :class:`ImageTooSmallError` if an input of this size is too small."""
        if min(height, width) < self.min_side:
            raise ImageTooSmallError(
                f"{what} is {width}x{height} px; layer {deepest(self.layers)} needs at least {self.min_side} px "
                "on each side"
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
        fast = self.fast and _cpu_fp32(x)
        if fast:
            x = x.contiguous(memory_format=torch.channels_last)
        wanted = set(self.layers)
        out: dict[str, torch.Tensor] = {}
        for name, kind in self._order:
            if kind == "conv":
                x = self._convolve(name, x) if fast else self.convs[name](x)
            elif kind == "relu":
                x = F.relu(x)
            elif self.pooling == "max":
                x = F.max_pool2d(x, 2)
            else:
                x = F.avg_pool2d(x, 2)
            if name in wanted:
                out[name] = x
        return out

    def _convolve(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """One convolution of a fast pass: by Winograd's algorithm where it applies, else
        PyTorch's own."""
        conv = cast(nn.Conv2d, self.convs[name])
        if name not in WINOGRAD_CONVS:
            return cast(torch.Tensor, conv(x))
        tiling = winograd.tiling_for(x.shape[2], x.shape[3])
        kernels = self._kernels.get((name, tiling.step))
        if kernels is None:
            weight = conv.weight
            kernels = (winograd.transform_kernel(weight, tiling), winograd.backward_kernel(weight, tiling))
            self._kernels[(name, tiling.step)] = kernels
        return winograd.conv3x3_with_grad(x, kernels, conv.bias)


def _cpu_fp32(x: torch.Tensor) -> bool:
    """Whether ``x`` is float32 on the CPU outside autocast: where the fast pass applies."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and not _autocast_on_cpu()


def _autocast_on_cpu() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # PyTorch before 2.4 takes no device type
        return torch.is_autocast_cpu_enabled()


def _copy_to(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A contiguous float32 copy of ``tensor`` on ``device`` (never the caller's own storage)."""
    return tensor.detach().to(device=device, dtype=torch.float32).clone(memory_format=torch.contiguous_format)
