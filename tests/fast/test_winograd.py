"""Winograd's F(4x4, 3x3) and F(6x6, 3x3) convolutions equal PyTorch's, forward and backward,
and the network uses them only where they apply (float32 on the CPU, outside autocast)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from artstyle.features import winograd
from artstyle.features.vgg import WINOGRAD_CONVS, VGG19Features


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs().max() / b.abs().max()).detach())


TILINGS = pytest.mark.parametrize("tiling", [winograd.F4, winograd.F6], ids=["F4", "F6"])


@TILINGS
def test_the_transforms_compute_a_correlation_exactly(tiling: winograd.Tiling) -> None:
    """A^T [(G g) * (B^T d)] is the 1-D correlation of any d with any g, to float64 rounding."""
    generator = torch.Generator().manual_seed(tiling.step)
    d = torch.randn(tiling.tile, dtype=torch.float64, generator=generator)
    g = torch.randn(3, dtype=torch.float64, generator=generator)
    expected = torch.stack([d[i : i + 3] @ g for i in range(tiling.step)])
    assert torch.allclose(tiling.at @ ((tiling.g @ g) * (tiling.bt @ d)), expected, atol=1e-12)


@TILINGS
@pytest.mark.parametrize(
    ("n", "c_in", "c_out", "height", "width"),
    [(1, 8, 16, 16, 16), (2, 5, 3, 13, 22), (1, 4, 4, 1, 1), (1, 3, 7, 3, 5), (1, 16, 8, 9, 4)],
)
def test_the_convolution_equals_pytorchs(
    tiling: winograd.Tiling, n: int, c_in: int, c_out: int, height: int, width: int
) -> None:
    generator = torch.Generator().manual_seed(n + c_in + height)
    x = torch.randn(n, c_in, height, width, generator=generator)
    weight = torch.randn(c_out, c_in, 3, 3, generator=generator)
    bias = torch.randn(c_out, generator=generator)
    got = winograd.conv3x3(x, winograd.transform_kernel(weight, tiling), bias)
    assert got.shape == (n, c_out, height, width)
    assert _relative(got, F.conv2d(x, weight, bias, padding=1)) < 1e-5


@TILINGS
def test_bands_of_tile_rows_give_the_same_result_as_one(
    tiling: winograd.Tiling, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = torch.randn(1, 6, 37, 29, generator=torch.Generator().manual_seed(1))
    kernel = winograd.transform_kernel(torch.randn(5, 6, 3, 3, generator=torch.Generator().manual_seed(2)), tiling)
    whole = winograd.conv3x3(x, kernel)
    monkeypatch.setattr(winograd, "BAND_ELEMENTS", 1)  # one row of tiles a band: 7 or 10 bands
    assert torch.equal(winograd.conv3x3(x, kernel), whole)


def test_large_maps_take_the_larger_tiles() -> None:
    assert winograd.tiling_for(96, 128) is winograd.F6  # conv3_x of a 512x384 picture
    assert winograd.tiling_for(48, 64) is winograd.F4  # conv4_x of it
    assert winograd.F6.tile**2 == 64 and winograd.F4.tile**2 == 36


@TILINGS
def test_the_input_gradient_equals_pytorchs(tiling: winograd.Tiling) -> None:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(2, 6, 11, 14, generator=generator)
    weight, bias = torch.randn(9, 6, 3, 3, generator=generator), torch.randn(9, generator=generator)
    upstream = torch.randn(2, 9, 11, 14, generator=generator)  # not symmetric in anything
    ours = x.clone().requires_grad_(True)
    kernels = (winograd.transform_kernel(weight, tiling), winograd.backward_kernel(weight, tiling))
    (winograd.conv3x3_with_grad(ours, kernels, bias) * upstream).sum().backward()
    theirs = x.clone().requires_grad_(True)
    (F.conv2d(theirs, weight, bias, padding=1) * upstream).sum().backward()
    assert ours.grad is not None and theirs.grad is not None
    assert _relative(ours.grad, theirs.grad) < 1e-5


def test_a_kernel_that_is_not_3x3_is_refused() -> None:
    with pytest.raises(ValueError, match="3, 3"):
        winograd.transform_kernel(torch.zeros(4, 4, 5, 5))


LAYERS = ["relu1_1", "relu3_1", "relu4_2", "relu5_1"]


def _pair() -> tuple[VGG19Features, VGG19Features]:
    torch.manual_seed(0)
    fast = VGG19Features(LAYERS)
    plain = VGG19Features(LAYERS, fast=False)
    plain.load_state_dict(fast.state_dict())
    return fast, plain


@pytest.mark.parametrize("side", [48, 200])  # 200: conv2_2 (100x96) takes F6, the deeper F4
def test_the_network_with_winograd_gives_the_plain_networks_features_and_gradient(side: int) -> None:
    fast, plain = _pair()
    image = torch.rand(1, 3, side, side - 8, generator=torch.Generator().manual_seed(4))
    grads = []
    for net in (fast, plain):
        x = image.clone().requires_grad_(True)
        features = net(x)
        sum((value**2).mean() for value in features.values()).backward()
        grads.append(x.grad)
        if net is fast:
            kept = features
    for name in LAYERS:
        assert _relative(kept[name], plain(image)[name]) < 1e-4
    assert grads[0] is not None and grads[1] is not None
    # in norm: where two pooled values nearly tie, rounding may send a pixel's gradient elsewhere
    assert float((grads[0] - grads[1]).norm() / grads[1].norm()) < 1e-4
    steps = {winograd.tiling_for(side >> level, (side - 8) >> level).step for level in (1, 2, 3, 4)}
    assert {name for name, _ in fast._kernels} == WINOGRAD_CONVS & set(fast.convs)
    assert {step for _, step in fast._kernels} == steps


def test_winograd_is_left_out_under_autocast_and_when_switched_off() -> None:
    fast, plain = _pair()
    image = torch.rand(1, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast(image)
    plain(image)
    assert fast._kernels == {} and plain._kernels == {}


def test_a_fast_pass_lays_the_features_out_channels_last_and_a_plain_one_does_not() -> None:
    fast, plain = _pair()
    image = torch.rand(1, 3, 32, 32)
    assert fast(image)["relu1_1"].is_contiguous(memory_format=torch.channels_last)
    assert plain(image)["relu1_1"].is_contiguous()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fast(image)["relu1_1"].is_contiguous()
