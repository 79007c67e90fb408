"""VGG19's 3x3 convolutions by Winograd's minimal filtering, F(4x4, 3x3) and F(6x6, 3x3), on
the CPU in float32.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016). The input is
cut into tiles that overlap by two pixels (6x6 for F4, 8x8 for F6); each tile and each 3x3
kernel is carried into the transform domain (``B^T d B`` and ``G g G^T``), where the
convolution becomes one matrix product of (tiles x C_in) by (C_in x C_out) per element of
the tile; the inverse transform ``A^T m A`` turns each product tile into 4x4 or 6x6 outputs.
That is 36 multiplications per 16 outputs and channel pair with F4 and 64 per 36 with F6,
against the direct method's 144: the layers with many channels, whose products are large
matrices, run in about half the time of oneDNN's direct convolution on a 2-core CPU.
The transforms themselves are memory traffic, so the tiles are taken a band of rows at a
time, which keeps the intermediate tensors some megabytes each; F6's larger tiles carry
less of it per output and pay on large maps (:func:`tiling_for`).

The result equals the direct convolution to about 1e-5 of its largest value in float32
(the interpolation points 0, +-1, +-2, then +-1/2 for F6, and infinity). The gradient with
respect to the input is the same computation on the upstream gradient with the kernel
turned by 180 degrees and its channels swapped; the weights are frozen and get no gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Tiling:
    """Winograd's F(m x m, 3x3): (m + 2) x (m + 2) input tiles that overlap by two pixels give
    m x m outputs each. ``bt``, ``g`` and ``at`` are B^T, G and A^T in float64."""

    step: int  # m: output tile side
    bt: torch.Tensor  # (m + 2, m + 2): input transform
    g: torch.Tensor  # (m + 2, 3): kernel transform
    at: torch.Tensor  # (m, m + 2): output transform

    @property
    def tile(self) -> int:
        return self.step + 2


def _tiling(points: tuple[float, ...]) -> Tiling:
    """Toom-Cook's construction from the finite interpolation points (the point at infinity is
    added): with V the Vandermonde matrix of all points (infinity's row picks the leading
    coefficient) and f_j the product of a_j - a_l over the other finite points (1 for
    infinity), B^T = diag(f) V^-T; G's rows are a_j^k / f_j and A^T's columns a_j^i, with the
    leading coefficient alone at infinity."""
    n = len(points) + 1
    step = n - 2
    a = torch.tensor(points, dtype=torch.float64)
    vander = torch.zeros(n, n, dtype=torch.float64)
    vander[:-1] = a[:, None] ** torch.arange(n, dtype=torch.float64)
    vander[-1, -1] = 1.0
    f = torch.ones(n, dtype=torch.float64)
    for j in range(n - 1):
        f[j] = torch.prod(torch.cat([a[j] - a[:j], a[j] - a[j + 1 :]]))
    g, at = vander[:, :3] / f[:, None], vander[:, :step].T.clone()
    g[-1, -1] = at[-1, -1] = 1.0  # infinity: the kernel's and the output's leading coefficients
    return Tiling(step, f[:, None] * torch.linalg.inv(vander).T, g, at)


#: F(4x4, 3x3) on the points 0, +-1, +-2 and infinity: 36 multiplications per 16 outputs.
F4 = _tiling((0.0, 1.0, -1.0, 2.0, -2.0))
#: F(6x6, 3x3), adding +-1/2: 64 per 36, and 64/36 the input's size in the transform domain
#: against F4's 36/16; its rounding is still that of the direct convolution in float32.
F6 = _tiling((0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5))
_BY_AREA = {F4.tile**2: F4, F6.tile**2: F6}
#: Maps of at least this many pixels take F6; smaller ones F4, whose tiles waste less of a small
#: map's edge and whose kernels are smaller to read for few tiles (a layer's forward and
#: backward on a 2-core EPYC in fp32: F6 took 0.72-0.98x F4's time on maps of 96x128 to
#: 192x256, 0.91-1.10x on 48x64, 1.02-1.42x on 24x32 and smaller).
LARGE_MAP = 8192
#: Elements of the transformed tiles of one band (tile area x tiles x channels), 16 MiB in
#: float32: on a 2-core EPYC, bands of 8 to 16 MiB made the pass some 10% faster than the
#: whole picture at once.
BAND_ELEMENTS = 1 << 22


def tiling_for(height: int, width: int) -> Tiling:
    """The tiling that runs a map of this size faster (see :data:`LARGE_MAP`)."""
    return F6 if height * width >= LARGE_MAP else F4


def transform_kernel(weight: torch.Tensor, tiling: Tiling = F4) -> torch.Tensor:
    """A (C_out, C_in, 3, 3) kernel -> its (tile area, C_in, C_out) transform ``G g G^T`` in
    float32, as one product with the Kronecker square of G (within 2e-7 of the same in float64,
    in a third of the time: some 20-40 ms for a 512x512 kernel)."""
    if weight.dim() != 4 or weight.shape[2:] != (3, 3):
        raise ValueError(f"expected a (C_out, C_in, 3, 3) kernel, got {tuple(weight.shape)}")
    c_out, c_in = weight.shape[:2]
    g = tiling.g.to(device=weight.device, dtype=torch.float32)
    flat = weight.detach().float().transpose(0, 1).reshape(c_in * c_out, 9)
    return (torch.kron(g, g) @ flat.T).reshape(tiling.tile**2, c_in, c_out)


def backward_kernel(weight: torch.Tensor, tiling: Tiling = F4) -> torch.Tensor:
    """The transform of the kernel that carries a gradient back through the convolution:
    turned by 180 degrees, input and output channels swapped."""
    return transform_kernel(weight.flip(2, 3).transpose(0, 1), tiling)


def conv3x3(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The 3x3 convolution (stride 1, zero padding 1) of an (N, C_in, H, W) float32 tensor
    with a kernel from :func:`transform_kernel` (whose size says its tiling), plus ``bias``
    (C_out) if given; returns (N, C_out, H, W), laid out channels last."""
    n, c_in, height, width = x.shape
    tiling = _BY_AREA[kernel.shape[0]]
    tile, step, c_out = tiling.tile, tiling.step, kernel.shape[2]
    rows, cols = -(-height // step), -(-width // step)
    padded = _padded(x, step * rows + 2, step * cols + 2)
    out = x.new_empty(n, height, width, c_out)
    bt, at = tiling.bt.to(x), tiling.at.to(x)
    band = max(1, BAND_ELEMENTS // (tile * tile * n * cols * max(c_in, c_out)))
    for first in range(0, rows, band):
        last = min(rows, first + band)
        tiles = padded[:, step * first : step * last + 2].unfold(1, tile, step).unfold(2, tile, step)
        # (N, band, cols, C_in, tile, tile) -> (tile, tile, N * band * cols * C_in): rows of the tile first.
        d = tiles.permute(4, 5, 0, 1, 2, 3).reshape(tile, tile, -1)
        v = _both_sides(bt, d).reshape(tile * tile, -1, c_in)
        m = torch.bmm(v, kernel).reshape(tile, tile, -1)
        y = _both_sides(at, m).reshape(step, step, n, last - first, cols, c_out)
        y = y.permute(2, 3, 0, 4, 1, 5).reshape(n, step * (last - first), step * cols, c_out)
        top = step * first
        rows_here = min(height, step * last) - top
        if bias is None:
            out[:, top : top + rows_here] = y[:, :rows_here, :width]
        else:
            torch.add(y[:, :rows_here, :width], bias, out=out[:, top : top + rows_here])
    return out.permute(0, 3, 1, 2)


def _padded(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, C, H, W) ``x`` laid out channels last, (N, height, width, C), at offset (1, 1) in zeros:
    only the border is written with zeros, not the whole, which ``x`` then overwrites."""
    n, channels, rows, cols = x.shape
    padded = x.new_empty(n, height, width, channels)
    padded[:, 1 : rows + 1, 1 : cols + 1] = x.permute(0, 2, 3, 1)
    padded[:, 0].zero_()
    padded[:, rows + 1 :].zero_()
    padded[:, 1 : rows + 1, 0].zero_()
    padded[:, 1 : rows + 1, cols + 1 :].zero_()
    return padded


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
