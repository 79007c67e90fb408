"""Matrix square roots (artstyle.linalg) against definitions and numeric gradients."""

from __future__ import annotations

import pytest
import torch

from artstyle.linalg import inverse_sqrtm, sqrtm, trace_sqrtm


def spd(n: int, seed: int, rank: int | None = None, batch: tuple[int, ...] = ()) -> torch.Tensor:
    """A random symmetric positive (semi-)definite matrix in float64."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(*batch, n, rank or n, generator=generator, dtype=torch.float64)
    return a @ a.transpose(-1, -2) + (0 if rank else 0.1) * torch.eye(n, dtype=torch.float64)


@pytest.mark.parametrize("n", [1, 3, 16])
def test_the_root_squares_back_to_the_matrix(n: int) -> None:
    a = spd(n, seed=n)
    root = sqrtm(a)
    torch.testing.assert_close(root @ root, a)
    torch.testing.assert_close(root, root.T)
    assert torch.linalg.eigvalsh(root).min() > 0


def test_a_diagonal_matrix_has_the_roots_of_its_entries() -> None:
    d = torch.tensor([4.0, 9.0, 0.25], dtype=torch.float64)
    torch.testing.assert_close(sqrtm(torch.diag(d)), torch.diag(d.sqrt()))
    torch.testing.assert_close(trace_sqrtm(torch.diag(d)), d.sqrt().sum())


def test_singular_matrices_give_finite_roots_and_gradients() -> None:
    a = spd(8, seed=3, rank=2).requires_grad_(True)
    root = sqrtm(a)
    torch.testing.assert_close(root @ root, a.detach(), atol=1e-6, rtol=1e-6)
    (root.sum() + trace_sqrtm(a)).backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()
    zero = torch.zeros(4, 4, dtype=torch.float64, requires_grad=True)
    assert float(trace_sqrtm(zero).detach()) == pytest.approx(0.0, abs=1e-5)


def test_float32_in_float32_out_batched() -> None:
    a = spd(5, seed=4, batch=(3,)).float()
    root = sqrtm(a)
    assert root.dtype == torch.float32 and root.shape == (3, 5, 5)
    torch.testing.assert_close(root @ root, a, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(trace_sqrtm(a), torch.diagonal(root, dim1=-2, dim2=-1).sum(-1))


def test_the_inverse_root() -> None:
    a = spd(6, seed=5)
    torch.testing.assert_close(inverse_sqrtm(a) @ sqrtm(a), torch.eye(6, dtype=torch.float64))


def test_non_square_input_is_refused() -> None:
    with pytest.raises(ValueError, match="square"):
        sqrtm(torch.zeros(2, 3))


def test_sqrtm_gradient_matches_finite_differences() -> None:
    a = spd(4, seed=6).requires_grad_(True)
    # The input is taken as symmetric: check along symmetric perturbations.
    assert torch.autograd.gradcheck(lambda x: sqrtm((x + x.T) / 2), (a,), eps=1e-6, atol=1e-5)


def test_trace_sqrtm_gradient_matches_finite_differences() -> None:
    a = spd(5, seed=7).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: trace_sqrtm((x + x.T) / 2), (a,), eps=1e-6, atol=1e-5)


def test_sqrtm_gradient_in_a_composite_expression() -> None:
    """The Wasserstein cross term of the meancov loss, differentiated through a product."""
    s = sqrtm(spd(4, seed=8))
    b = spd(4, seed=9).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: trace_sqrtm(s @ ((x + x.T) / 2) @ s), (b,), eps=1e-6, atol=1e-5)
