"""Fast tests of artstyle.losses: the Gram matrix, content, style and total-variation losses.

The normalisations stated in the module docstring are checked on examples small
enough to compute by hand; gradients are checked numerically in float64.
"""

from __future__ import annotations

import pytest
import torch
from _support import features

from artstyle.losses import (
    ContentLoss,
    StyleLoss,
    TVLoss,
    content_loss,
    gram_matrix,
    neighbour_difference,
    style_loss,
    tv_loss,
    tv_scale,
)

# --------------------------------------------------------------------------- #
# Gram matrix
# --------------------------------------------------------------------------- #


def test_gram_of_a_hand_computed_example_is_divided_by_c_h_w() -> None:
    # Two channels over 1 x 2 positions: F = [[1, 2], [3, 4]], F F^T = [[5, 11], [11, 25]],
    # divided by C*H*W = 2*1*2 = 4.
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, 2, 1, 2)
    expected = torch.tensor([[[1.25, 2.75], [2.75, 6.25]]])
    torch.testing.assert_close(gram_matrix(f), expected)


def test_gram_is_independent_of_image_size_for_a_repeated_pattern() -> None:
    # Tiling the same activations 2x2 quadruples H*W and the raw sums alike.
    f = features(1, 3, 4, 5)
    tiled = f.repeat(1, 1, 2, 2)
    torch.testing.assert_close(gram_matrix(tiled), gram_matrix(f))


def test_gram_shape_symmetry_and_positive_semi_definiteness() -> None:
    f = features(2, 6, 5, 7, dtype=torch.float64)
    gram = gram_matrix(f)
    assert gram.shape == (2, 6, 6)
    torch.testing.assert_close(gram, gram.transpose(1, 2))
    eigenvalues = torch.linalg.eigvalsh(gram)
    assert bool((eigenvalues >= -1e-10).all()), eigenvalues


def test_gram_diagonal_is_mean_square_activation_over_channels() -> None:
    f = features(1, 4, 3, 3)
    gram = gram_matrix(f)[0]
    c, h, w = f.shape[1:]
    for channel in range(c):
        expected = f[0, channel].pow(2).sum() / (c * h * w)
        torch.testing.assert_close(gram[channel, channel], expected)


def test_gram_batched_equals_per_item() -> None:
    f = features(3, 4, 5, 6)
    batched = gram_matrix(f)
    for i in range(3):
        torch.testing.assert_close(batched[i : i + 1], gram_matrix(f[i : i + 1]))


@pytest.mark.parametrize("shape", [(4, 5, 6), (1, 2, 3, 4, 5), (8,)])
def test_gram_rejects_other_shapes_saying_expected_and_got(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"expected features of shape \(N, C, H, W\), got") as info:
        gram_matrix(torch.zeros(shape))
    assert str(shape) in str(info.value)


# --------------------------------------------------------------------------- #
# Content loss
# --------------------------------------------------------------------------- #


def test_content_loss_is_zero_at_its_target_and_positive_elsewhere() -> None:
    target = features(1, 3, 4, 4)
    assert content_loss(target.clone(), target).item() == 0.0
    assert content_loss(target + 0.1, target).item() > 0.0


def test_content_loss_is_the_mean_over_all_elements() -> None:
    target = torch.zeros(1, 2, 3, 4)  # 24 elements
    moved = target.clone()
    moved[0, 1, 2, 3] = 2.0
    torch.testing.assert_close(content_loss(moved, target), torch.tensor(4.0 / 24))
    torch.testing.assert_close(content_loss(torch.ones(1, 2, 3, 4), target), torch.tensor(1.0))


def test_content_loss_batched_is_the_mean_of_per_item_losses() -> None:
    f, target = features(3, 2, 4, 4, seed=1), features(3, 2, 4, 4, seed=2)
    per_item = torch.stack([content_loss(f[i : i + 1], target[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(content_loss(f, target), per_item.mean())


def test_content_loss_does_not_broadcast_and_says_expected_vs_got() -> None:
    with pytest.raises(ValueError, match=r"expected target of shape \(2, 3, 4, 4\), got \(1, 3, 4, 4\)"):
        content_loss(torch.zeros(2, 3, 4, 4), torch.zeros(1, 3, 4, 4))


def test_content_loss_module_equals_function_and_keeps_its_own_target() -> None:
    target = features(1, 3, 4, 4, seed=3)
    module = ContentLoss(target)
    original = target.clone()
    target.add_(100.0)  # the caller's tensor changes; the module's buffer must not
    f = features(1, 3, 4, 4, seed=4)
    torch.testing.assert_close(module(f), content_loss(f, original))
    assert "target" in dict(module.named_buffers())


# --------------------------------------------------------------------------- #
# Style loss
# --------------------------------------------------------------------------- #


def test_style_loss_is_the_mean_squared_gram_difference_over_c_squared() -> None:
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # Gram [[1.25, 2.75], [2.75, 6.25]]
    target = torch.zeros(1, 2, 2)
    expected = (1.25**2 + 2 * 2.75**2 + 6.25**2) / 4
    torch.testing.assert_close(style_loss(f, target), torch.tensor(expected))


def test_style_loss_is_zero_against_its_own_gram_and_positive_otherwise() -> None:
    f = features(1, 4, 5, 5)
    assert style_loss(f, gram_matrix(f)).item() == pytest.approx(0.0, abs=1e-12)
    assert style_loss(f * 2, gram_matrix(f)).item() > 0.0


def test_style_loss_ignores_where_the_activations_are() -> None:
    # A Gram matrix forgets positions: a spatially shuffled input has the same style.
    f = features(1, 3, 4, 4)
    permutation = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    shuffled = f.reshape(1, 3, 16)[..., permutation].reshape(1, 3, 4, 4)
    assert style_loss(shuffled, gram_matrix(f)).item() == pytest.approx(0.0, abs=1e-10)


def test_style_loss_batched_with_a_shared_target_is_the_mean_of_per_item_losses() -> None:
    f = features(3, 4, 5, 5, seed=5)
    target = gram_matrix(features(1, 4, 5, 5, seed=6))  # (1, C, C), broadcast over the batch
    per_item = torch.stack([style_loss(f[i : i + 1], target) for i in range(3)])
    torch.testing.assert_close(style_loss(f, target), per_item.mean())


def test_style_loss_rejects_a_wrong_gram_size_saying_expected_and_got() -> None:
    with pytest.raises(ValueError, match=r"expected a target Gram of shape \(1, 4, 4\), got \(1, 3, 3\)"):
        style_loss(torch.zeros(1, 4, 2, 2), torch.zeros(1, 3, 3))


def test_style_loss_module_equals_function_and_from_features_uses_the_gram() -> None:
    source, f = features(1, 4, 5, 5, seed=7), features(1, 4, 5, 5, seed=8)
    module = StyleLoss.from_features(source)
    torch.testing.assert_close(module.target, gram_matrix(source))
    torch.testing.assert_close(module(f), style_loss(f, gram_matrix(source)))
    assert not module.target.requires_grad


def test_style_loss_from_features_does_not_track_gradients() -> None:
    source = features(1, 2, 3, 3).requires_grad_(True)
    module = StyleLoss.from_features(source)
    assert module.target.grad_fn is None


# --------------------------------------------------------------------------- #
# Total variation
# --------------------------------------------------------------------------- #


def test_tv_is_zero_on_a_constant_image() -> None:
    assert tv_loss(torch.full((1, 3, 5, 7), 0.3)).item() == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tv_is_positive_on_a_non_constant_image(seed: int) -> None:
    image = torch.full((1, 3, 5, 7), 0.3)
    generator = torch.Generator().manual_seed(seed)
    row, col = torch.randint(0, 5, (1,), generator=generator), torch.randint(0, 7, (1,), generator=generator)
    image[0, 1, row, col] = 0.9
    assert tv_loss(image).item() > 0.0


def test_tv_of_a_hand_computed_2x2_example() -> None:
    # [[0, 1], [2, 4]]: dx = (1, 2) -> mean(dx^2) = 2.5; dy = (2, 3) -> mean(dy^2) = 6.5.
    image = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])
    torch.testing.assert_close(tv_loss(image), torch.tensor(9.0))


def test_tv_is_mean_not_sum_of_squared_differences() -> None:
    # A vertical step edge in a 4 x 4 image: 4 of the 12 horizontal differences are 1.
    image = torch.zeros(1, 1, 4, 4)
    image[..., 2:] = 1.0
    torch.testing.assert_close(tv_loss(image), torch.tensor(4 / 12))


@pytest.mark.parametrize(("height", "width"), [(1, 5), (5, 1), (1, 1)])
def test_tv_of_a_single_row_or_column(height: int, width: int) -> None:
    image = torch.arange(height * width, dtype=torch.float32).reshape(1, 1, height, width)
    expected = 0.0 if height == width == 1 else 1.0  # neighbours differ by exactly 1
    assert tv_loss(image).item() == pytest.approx(expected)


def test_tv_batched_equals_the_mean_of_per_item_values() -> None:
    images = features(3, 3, 6, 5, seed=9)
    per_item = torch.stack([tv_loss(images[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(tv_loss(images), per_item.mean())


def test_tv_module_equals_function() -> None:
    image = features(1, 3, 6, 5, seed=10)
    torch.testing.assert_close(TVLoss()(image), tv_loss(image))


def test_tv_rejects_a_three_dimensional_image_saying_expected_and_got() -> None:
    with pytest.raises(ValueError, match=r"tv_loss: expected .*\(N, C, H, W\), got \(3, 4, 4\)"):
        tv_loss(torch.zeros(3, 4, 4))


# --------------------------------------------------------------------------- #
# Gradients
# --------------------------------------------------------------------------- #


def double(*shape: int, seed: int) -> torch.Tensor:
    return features(*shape, seed=seed, dtype=torch.float64).requires_grad_(True)


def test_gradcheck_gram_matrix() -> None:
    assert torch.autograd.gradcheck(gram_matrix, (double(2, 3, 2, 3, seed=11),))


def test_gradcheck_masked_gram_matrix_in_features_and_mask() -> None:
    mask = double(1, 1, 2, 3, seed=17).detach().abs().requires_grad_(True)
    assert torch.autograd.gradcheck(gram_matrix, (double(2, 3, 2, 3, seed=18), mask))


def test_gram_gradient_is_that_of_the_plain_product() -> None:
    """The Gram's one-product backward gives autograd's gradient of ``X X^T`` (float32)."""
    f = features(2, 8, 5, 7, seed=19).requires_grad_(True)
    upstream = features(2, 8, 8, 1, seed=20).reshape(2, 8, 8)  # not symmetric
    (gram_matrix(f) * upstream).sum().backward()
    flat = f.detach().reshape(2, 8, 35).requires_grad_(True)
    (torch.bmm(flat, flat.transpose(1, 2)) / (8 * 35) * upstream).sum().backward()
    assert f.grad is not None and flat.grad is not None
    torch.testing.assert_close(f.grad.reshape(2, 8, 35), flat.grad)


def test_gradcheck_content_loss_in_features_and_target() -> None:
    assert torch.autograd.gradcheck(content_loss, (double(1, 2, 3, 3, seed=12), double(1, 2, 3, 3, seed=13)))


def test_gradcheck_style_loss_in_features_and_target() -> None:
    assert torch.autograd.gradcheck(style_loss, (double(1, 3, 2, 3, seed=14), double(1, 3, 3, seed=15)))


def test_gradcheck_tv_loss() -> None:
    assert torch.autograd.gradcheck(tv_loss, (double(1, 3, 4, 3, seed=16),))


def test_content_gradient_points_away_from_the_target() -> None:
    # d/dF mean((F - T)^2) = 2 (F - T) / numel: a step against it gets closer.
    target = features(1, 2, 3, 3, seed=17)
    f = (target + 1.0).requires_grad_(True)
    content_loss(f, target).backward()
    assert f.grad is not None
    torch.testing.assert_close(f.grad, torch.full_like(f, 2.0 / f.numel()))


def test_neighbour_difference_of_a_constant_and_of_a_checkerboard() -> None:
    assert float(neighbour_difference(torch.full((1, 3, 5, 4), 0.4))) == 0.0
    board = (torch.arange(6).view(1, 6) + torch.arange(5).view(5, 1)) % 2  # (5, 6) of 0 and 1
    assert float(neighbour_difference(board.float().expand(1, 3, 5, 6))) == 1.0


def test_tv_scale_is_the_blends_mean_neighbour_difference_with_a_floor() -> None:
    smooth, rough = torch.linspace(0, 1, 9).expand(1, 3, 4, 9), torch.rand(1, 3, 8, 8)
    expected = (3 * float(neighbour_difference(smooth)) + float(neighbour_difference(rough))) / 4
    assert tv_scale([smooth, rough], [3.0, 1.0]) == pytest.approx(expected)
    assert tv_scale([torch.full((1, 3, 4, 4), 0.5)], [1.0]) == 1e-3


def test_the_palette_loss_is_zero_at_its_own_distribution_and_blind_to_where_the_colours_are() -> None:
    from artstyle.losses import palette_directions, palette_loss, palette_quantiles

    image = torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(1))
    directions = palette_directions()
    target = palette_quantiles(image[0].reshape(3, -1), torch.ones(30), directions, 30)
    assert float(palette_loss(image, target, directions)) < 1e-9  # float32 rounding of the ranks
    shuffled = image.reshape(1, 3, -1)[..., torch.randperm(30)].reshape(1, 3, 6, 5)  # same colours, elsewhere
    assert float(palette_loss(shuffled, target, directions)) < 1e-9
    assert float(palette_loss(image * 0.5, target, directions)) > 1e-3


def test_the_palette_loss_and_its_gradient_are_those_of_sorting_the_projections() -> None:
    """The histogram ranks give what matching the sorted projections to the quantiles gives,
    on a picture with many pixels to a bin and ties (an 8-bit one)."""
    from artstyle.losses import palette_directions, palette_loss, palette_quantiles

    generator = torch.Generator().manual_seed(3)
    painting = torch.rand(3, 5000, generator=generator) ** 2
    image = (torch.rand(1, 3, 96, 128, generator=generator) * 255).round() / 255
    image = image.requires_grad_(True)
    directions = palette_directions()
    target = palette_quantiles(painting, torch.ones(5000), directions, 96 * 128)
    loss = palette_loss(image, target, directions)
    (gradient,) = torch.autograd.grad(loss, image)
    sorted_loss = ((directions.T @ image[0].reshape(3, -1)).sort(dim=1).values - target).pow(2).mean()
    (sorted_gradient,) = torch.autograd.grad(sorted_loss, image)
    assert float(loss.detach()) == pytest.approx(float(sorted_loss.detach()), rel=1e-4)
    assert float((gradient - sorted_gradient).norm() / sorted_gradient.norm()) < 0.02


def test_the_palette_loss_pulls_the_colours_towards_the_target() -> None:
    from artstyle.losses import palette_directions, palette_loss, palette_quantiles

    generator = torch.Generator().manual_seed(2)
    painting = 0.2 + 0.1 * torch.rand(1, 3, 8, 8, generator=generator)
    directions = palette_directions()
    target = palette_quantiles(painting[0].reshape(3, -1), torch.ones(64), directions, 64)
    image = torch.rand(1, 3, 8, 8, generator=generator).requires_grad_(True)
    before = float(palette_loss(image, target, directions).detach())
    for _ in range(50):
        image.grad = None
        palette_loss(image, target, directions).backward()
        with torch.no_grad():
            image -= 5.0 * image.grad
    assert float(palette_loss(image, target, directions).detach()) < 0.05 * before
    assert abs(float(image.detach().mean()) - float(painting.mean())) < 0.05  # from 0.5 to the painting's 0.25


def test_the_gram_gradient_of_channels_last_features_is_laid_out_alike_and_equal() -> None:
    maps = features(2, 5, 6, 7, seed=8)
    upstream = torch.randn(2, 5, 5, generator=torch.Generator().manual_seed(9))
    grads = []
    for layout in (torch.contiguous_format, torch.channels_last):
        x = maps.clone(memory_format=layout).requires_grad_(True)
        (gram_matrix(x) * upstream).sum().backward()
        assert x.grad is not None and x.grad.is_contiguous(memory_format=layout)
        grads.append(x.grad)
    torch.testing.assert_close(grads[1], grads[0])
