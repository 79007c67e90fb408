"""Matrix square roots of symmetric positive semi-definite matrices, with gradients.

Used by the mean-and-covariance style loss (:mod:`artstyle.losses`) and by colour
histogram matching (:mod:`artstyle.color`). Both work in float64 through an
eigendecomposition ``A = V diag(s) V^T``: eigenvalues below ``eps * max(s)`` or 1e-12 (and all
negative ones, which are round-off in a covariance) are clamped to that floor, so the
roots and their gradients stay finite for singular and near-singular matrices.

Apple's MPS has neither float64 nor an eigendecomposition: matrices on ``mps`` are
decomposed on the CPU (:func:`exact_device`) and the results moved back. They are 3x3
colour covariances and C x C feature covariances, small beside a pass of the network.
"""

from __future__ import annotations

from typing import Any

import torch

from artstyle.device import is_mps

#: Relative floor of the eigenvalues (see the module docstring).
EIGEN_FLOOR = 1e-10
#: Absolute floor, so that the zero matrix has finite inverse roots (1e6) in float32 too.
ABSOLUTE_FLOOR = 1e-12


def exact_device(device: torch.device) -> torch.device:
    """Where float64 work on tensors of ``device`` is done: there, except on MPS (the CPU)."""
    return torch.device("cpu") if is_mps(device) else device


def as_float64(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float64 on :func:`exact_device` of its device."""
    return tensor.to(device=exact_device(tensor.device), dtype=torch.float64)


def _symmetric_eigh(matrix: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (clamped to the floor) and eigenvectors of the symmetric part, in float64
    on :func:`exact_device`."""
    if matrix.dim() < 2 or matrix.shape[-1] != matrix.shape[-2]:
        raise ValueError(f"expected square matrices, got shape {tuple(matrix.shape)}")
    a = as_float64(matrix.detach())
    a = (a + a.transpose(-1, -2)) / 2
    values, vectors = torch.linalg.eigh(a)
    top = values.amax(dim=-1, keepdim=True).clamp_min(0)
    floor = (top * eps).clamp_min(ABSOLUTE_FLOOR)
    return torch.maximum(values, floor), vectors


def _from_eigen(values: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    return (vectors * values.unsqueeze(-2)) @ vectors.transpose(-1, -2)


class _Sqrtm(torch.autograd.Function):
    """``X = A^(1/2)``; the backward pass solves ``X dX + dX X = dA`` in the eigenbasis."""

    @staticmethod
    def forward(ctx: Any, matrix: torch.Tensor, eps: float) -> torch.Tensor:
        values, vectors = _symmetric_eigh(matrix, eps)
        roots = values.sqrt()
        ctx.save_for_backward(roots, vectors)
        ctx.dtype, ctx.device = matrix.dtype, matrix.device
        return _from_eigen(roots, vectors).to(device=matrix.device, dtype=matrix.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        roots, vectors = ctx.saved_tensors
        g = as_float64(grad)
        g = (g + g.transpose(-1, -2)) / 2  # the input is taken as symmetric
        inner = vectors.transpose(-1, -2) @ g @ vectors
        inner = inner / (roots.unsqueeze(-1) + roots.unsqueeze(-2))
        return (vectors @ inner @ vectors.transpose(-1, -2)).to(device=ctx.device, dtype=ctx.dtype), None


def sqrtm(matrix: torch.Tensor, eps: float = EIGEN_FLOOR) -> torch.Tensor:
    """The symmetric PSD square root of (a batch of) symmetric PSD matrices, differentiable.

    The result has the input's dtype; the computation is float64.
    """
    result: torch.Tensor = _Sqrtm.apply(matrix, eps)  # type: ignore[no-untyped-call]
    return result


def inverse_sqrtm(matrix: torch.Tensor, eps: float = EIGEN_FLOOR) -> torch.Tensor:
    """``A^(-1/2)`` of symmetric PSD matrices (eigenvalues floored as above); no gradient."""
    values, vectors = _symmetric_eigh(matrix, eps)
    return _from_eigen(values.rsqrt(), vectors).to(device=matrix.device, dtype=matrix.dtype)


class _TraceSqrtm(torch.autograd.Function):
    """``tr(A^(1/2))``, whose gradient is ``A^(-1/2) / 2``: cheaper than a full :func:`sqrtm`."""

    @staticmethod
    def forward(ctx: Any, matrix: torch.Tensor, eps: float) -> torch.Tensor:
        values, vectors = _symmetric_eigh(matrix, eps)
        ctx.save_for_backward(values, vectors)
        ctx.dtype, ctx.device = matrix.dtype, matrix.device
        return values.sqrt().sum(dim=-1).to(device=matrix.device, dtype=matrix.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        values, vectors = ctx.saved_tensors
        half_inverse_root = _from_eigen(values.rsqrt() / 2, vectors)
        scale = as_float64(grad).reshape(*grad.shape, 1, 1)
        return (scale * half_inverse_root).to(device=ctx.device, dtype=ctx.dtype), None


def trace_sqrtm(matrix: torch.Tensor, eps: float = EIGEN_FLOOR) -> torch.Tensor:
    """The trace of :func:`sqrtm` (the sum of the roots of the eigenvalues), differentiable."""
    result: torch.Tensor = _TraceSqrtm.apply(matrix, eps)  # type: ignore[no-untyped-call]
    return result
