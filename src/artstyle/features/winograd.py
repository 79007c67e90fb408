"""VGG19's 3x3 convolutions by Winograd's minimal filtering, F(4x4, 3x3), on the CPU in float32.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016). The input is
cut into 6x6 tiles that overlap by two pixels; each tile and each 3x3 kernel is carried
into a 6x6 transform domain (``B^T d B`` and ``G g G^T``), where the convolution becomes
36 matrix products of (tiles x C_in) by (C_in x C_out); the inverse transform ``A^T m A``
turns each product tile into 4x4 outputs. That is 36 multiplications per 16 outputs and
channel pair against the direct method's 144: the deep layers, whose products are large
matrices, run in about half the time of oneDNN's direct convolution on a 2-core CPU.
The transforms themselves are memory traffic, so the tiles are taken a band of rows at a
time, which keeps the intermediate tensors some megabytes each.

The result equals the direct convolution to about 1e-5 of its largest value in float32
(the interpolation points 0, +-1, +-2 and infinity). The gradient with respect to the
input is the same computation on the upstream gradient with the kernel turned by 180
degrees and its channels swapped; the weights are frozen and get no gradient.
"""

from __future__ import annotations

from typing import Any

import torch

#: Input transform B^T (6x6), kernel transform G (6x3), output transform A^T (4x6).
_BT = (
    (4.0, 0.0, -5.0, 0.0, 1.0, 0.0),
    (0.0, -4.0, -4.0, 1.0, 1.0, 0.0),
    (0.0, 4.0, -4.0, -1.0, 1.0, 0.0),
    (0.0, -2.0, -1.0, 2.0, 1.0, 0.0),
    (0.0, 2.0, -1.0, -2.0, 1.0, 0.0),
    (0.0, 4.0, 0.0, -5.0, 0.0, 1.0),
)
_G = (
    (1 / 4, 0.0, 0.0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0.0, 0.0, 1.0),
)
_AT = (
    (1.0, 1.0, 1.0, 1.0, 1.0, 0.0),
    (0.0, 1.0, -1.0, 2.0, -2.0, 0.0),
    (0.0, 1.0, 1.0, 4.0, 4.0, 0.0),
    (0.0, 1.0, -1.0, 8.0, -8.0, 1.0),
)
TILE = 6  # input tile side
STEP = 4  # output tile side: tiles overlap by TILE - STEP = 2
#: Elements of the transformed tiles of one band (36 x tiles x channels), 16 MiB in float32:
#: on a 2-core EPYC, bands of 8 to 16 MiB made the pass some 10% faster than the whole picture at once.
BAND_ELEMENTS = 1 << 22


def transform_kernel(weight: torch.Tensor) -> torch.Tensor:
    """A (C_out, C_in, 3, 3) kernel -> its (36, C_in, C_out) Winograd transform, float32
    (computed in float64)."""
    if weight.dim() != 4 or weight.shape[2:] != (3, 3):
        raise ValueError(f"expected a (C_out, C_in, 3, 3) kernel, got {tuple(weight.shape)}")
    g = torch.tensor(_G, dtype=torch.float64, device=weight.device)
    u = g @ weight.detach().double() @ g.T  # (C_out, C_in, 6, 6)
    c_out, c_in = weight.shape[:2]
    return u.permute(2, 3, 1, 0).reshape(TILE * TILE, c_in, c_out).float().contiguous()


def backward_kernel(weight: torch.Tensor) -> torch.Tensor:
    """The transform of the kernel that carries a gradient back through the convolution:
    turned by 180 degrees, input and output channels swapped."""
    return transform_kernel(weight.flip(2, 3).transpose(0, 1))


def conv3x3(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The 3x3 convolution (stride 1, zero padding 1) of an (N, C_in, H, W) float32 tensor
    with a kernel from :func:`transform_kernel`, plus ``bias`` (C_out) if given; returns
    (N, C_out, H, W), laid out channels last."""
    n, c_in, height, width = x.shape
    c_out = kernel.shape[2]
    rows, cols = -(-height // STEP), -(-width // STEP)
    padded = x.new_zeros(n, STEP * rows + 2, STEP * cols + 2, c_in)
    padded[:, 1 : height + 1, 1 : width + 1] = x.permute(0, 2, 3, 1)
    out = x.new_empty(n, height, width, c_out)
    bt, at = _matrix(_BT, x), _matrix(_AT, x)
    band = max(1, BAND_ELEMENTS // (TILE * TILE * n * cols * max(c_in, c_out)))
    for first in range(0, rows, band):
        last = min(rows, first + band)
        tiles = padded[:, STEP * first : STEP * last + 2].unfold(1, TILE, STEP).unfold(2, TILE, STEP)
        # (N, band, cols, C_in, 6, 6) -> (6, 6, N * band * cols * C_in): rows of the tile first.
        d = tiles.permute(4, 5, 0, 1, 2, 3).reshape(TILE, TILE, -1)
        v = _both_sides(bt, d).reshape(TILE * TILE, -1, c_in)
        m = torch.bmm(v, kernel).reshape(TILE, TILE, -1)
        y = _both_sides(at, m).reshape(STEP, STEP, n, last - first, cols, c_out)
        y = y.permute(2, 3, 0, 4, 1, 5).reshape(n, STEP * (last - first), STEP * cols, c_out)
        top = STEP * first
        rows_here = min(height, STEP * last) - top
        if bias is None:
            out[:, top : top + rows_here] = y[:, :rows_here, :width]
        else:
            torch.add(y[:, :rows_here, :width], bias, out=out[:, top : top + rows_here])
    return out.permute(0, 3, 1, 2)


def _matrix(rows: tuple[tuple[float, ...], ...], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def _both_sides(matrix: torch.Tensor, tiles: torch.Tensor) -> torch.Tensor:
    """``matrix @ t @ matrix^T`` for every tile ``t = tiles[:, :, k]`` of (a, a, L) ``tiles``,
    with a (b, a) ``matrix``: the (b, b, L) result, two products over all tiles at once."""
    side, inner = matrix.shape
    return (matrix @ torch.matmul(matrix, tiles).reshape(inner, -1)).reshape(side, side, -1)


class _Conv3x3(torch.autograd.Function):
    """:func:`conv3x3` with its input gradient (the weights are frozen)."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, kernel: torch.Tensor, back: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        ctx.back = back
        return conv3x3(x, kernel, bias)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        return conv3x3(grad, ctx.back), None, None, None


def conv3x3_with_grad(
    x: torch.Tensor, kernels: tuple[torch.Tensor, torch.Tensor], bias: torch.Tensor | None = None
) -> torch.Tensor:
    """:func:`conv3x3` that autograd differentiates with respect to ``x``; ``kernels`` are
    :func:`transform_kernel` and :func:`backward_kernel` of one weight (frozen, as ``bias``)."""
    out: torch.Tensor = _Conv3x3.apply(x, *kernels, bias)  # type: ignore[no-untyped-call]
    return out
