"""Fast tests of the perceptual-control losses: masks, feature statistics and the
mean-and-covariance (Wasserstein-2) style loss."""

from __future__ import annotations

import pytest
import torch
from _support import features

from artstyle.losses import (
    ContentLoss,
    FeatureStats,
    MeanCovTarget,
    StyleLoss,
    content_loss,
    feature_stats,
    gram_matrix,
    meancov_loss,
    resize_mask,
    style_loss,
)


def half_mask(h: int, w: int) -> torch.Tensor:
    mask = torch.zeros(1, 1, h, w)
    mask[..., : w // 2] = 1
    return mask


# --------------------------------------------------------------------------- #
# Masks
# --------------------------------------------------------------------------- #


def test_a_mask_of_ones_changes_nothing() -> None:
    f, target = features(1, 4, 6, 5), features(1, 4, 6, 5, seed=1)
    ones = torch.ones(1, 1, 6, 5)
    torch.testing.assert_close(gram_matrix(f, ones), gram_matrix(f))
    torch.testing.assert_close(content_loss(f, target, ones), content_loss(f, target))
    gram = gram_matrix(features(1, 4, 3, 3, seed=2))
    torch.testing.assert_close(style_loss(f, gram, ones), style_loss(f, gram))


def test_a_binary_mask_gives_the_gram_of_the_region_alone() -> None:
    f = features(1, 3, 4, 6, seed=3)
    torch.testing.assert_close(gram_matrix(f, half_mask(4, 6)), gram_matrix(f[..., :3]))


def test_masked_content_loss_ignores_black_positions() -> None:
    f, target = features(1, 2, 4, 4, seed=4), features(1, 2, 4, 4, seed=5)
    mask = half_mask(4, 4)
    changed = target.clone()
    changed[..., 2:] += 10  # only where the mask is black
    torch.testing.assert_close(content_loss(f, changed, mask), content_loss(f, target, mask))
    assert float(content_loss(f, target, torch.zeros(1, 1, 4, 4))) == 0.0


def test_mask_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="mask"):
        gram_matrix(features(1, 2, 4, 4), torch.ones(1, 1, 3, 4))


def test_resize_mask_keeps_area_fractions() -> None:
    mask = half_mask(32, 32)
    small = resize_mask(mask, 8, 8)
    assert small.shape == (1, 1, 8, 8) and float(small.mean()) == pytest.approx(0.5)
    odd = resize_mask(mask, 5, 7)
    assert odd.shape == (1, 1, 5, 7) and 0.4 < float(odd.mean()) < 0.6
    big = resize_mask(half_mask(4, 4), 16, 16)
    assert big.min() >= 0 and big.max() <= 1


# --------------------------------------------------------------------------- #
# Feature statistics
# --------------------------------------------------------------------------- #


def test_feature_stats_by_hand() -> None:
    # One position per column: f = (1, 3) and (3, 5).
    f = torch.tensor([[1.0, 3.0], [3.0, 5.0]]).reshape(1, 2, 1, 2)
    stats = feature_stats(f)
    torch.testing.assert_close(stats.mean, torch.tensor([[2.0, 4.0]]))
    torch.testing.assert_close(stats.second_moment, torch.tensor([[[5.0, 9.0], [9.0, 17.0]]]))
    torch.testing.assert_close(stats.covariance, torch.tensor([[[1.0, 1.0], [1.0, 1.0]]]))
    torch.testing.assert_close(stats.gram, gram_matrix(f))


def test_blended_stats_are_those_of_the_mixture() -> None:
    a, b = features(1, 3, 4, 4, seed=6), features(1, 3, 4, 4, seed=7)
    blend = feature_stats(a).scaled(0.5) + feature_stats(b).scaled(0.5)
    both = feature_stats(torch.cat([a, b], dim=3))  # the pooled positions
    torch.testing.assert_close(blend.mean, both.mean)
    torch.testing.assert_close(blend.second_moment, both.second_moment)


def test_masked_stats_are_the_region_stats() -> None:
    f = features(1, 3, 4, 6, seed=8)
    masked, region = feature_stats(f, half_mask(4, 6)), feature_stats(f[..., :3])
    torch.testing.assert_close(masked.mean, region.mean)
    torch.testing.assert_close(masked.second_moment, region.second_moment)


# --------------------------------------------------------------------------- #
# Mean-and-covariance loss
# --------------------------------------------------------------------------- #


def target_of(f: torch.Tensor) -> MeanCovTarget:
    return MeanCovTarget.from_stats(feature_stats(f))


def test_meancov_is_zero_against_itself_and_positive_otherwise() -> None:
    f = features(1, 6, 8, 8, seed=9)
    assert float(meancov_loss(f, target_of(f))) == pytest.approx(0.0, abs=1e-4)
    assert float(meancov_loss(f * 2 + 1, target_of(f))) > 0.1
    shuffled = f.reshape(1, 6, 64)[..., torch.randperm(64)].reshape(1, 6, 8, 8)
    assert float(meancov_loss(shuffled, target_of(f))) == pytest.approx(0.0, abs=1e-4)


def test_meancov_matches_the_closed_form_for_diagonal_covariances() -> None:
    """Between Gaussians with diagonal covariances W2^2 = |m1 - m2|^2 + sum (s1 - s2)^2."""
    generator = torch.Generator().manual_seed(10)
    base = torch.randn(3, 4096, generator=generator, dtype=torch.float64)
    base = (base - base.mean(1, keepdim=True)) / base.std(1, unbiased=False, keepdim=True)
    base = torch.linalg.qr(base.T)[0].T * 64  # exactly uncorrelated, unit variance channels
    m1, s1 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 2.0, 0.5])
    m2, s2 = torch.tensor([1.0, 1.0, 0.0]), torch.tensor([3.0, 1.0, 0.5])
    f1 = (m1[:, None] + s1[:, None] * base).reshape(1, 3, 64, 64)
    f2 = (m2[:, None] + s2[:, None] * base).reshape(1, 3, 64, 64)
    expected = (float(((m1 - m2) ** 2).sum()) + float(((s1 - s2) ** 2).sum())) / 3
    assert float(meancov_loss(f1, target_of(f2))) == pytest.approx(expected, rel=1e-4)


def test_meancov_gradient_matches_finite_differences() -> None:
    f = features(1, 3, 4, 4, seed=11, dtype=torch.float64).requires_grad_(True)
    target = target_of(features(1, 3, 5, 5, seed=12, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda x: meancov_loss(x, target), (f,), eps=1e-6, atol=1e-5)


def test_meancov_gradient_is_finite_for_degenerate_features() -> None:
    f = torch.zeros(1, 4, 3, 3, requires_grad=True)  # zero covariance
    target = target_of(features(1, 4, 3, 3, seed=13))
    loss = meancov_loss(f, target)
    loss.backward()
    assert torch.isfinite(loss) and f.grad is not None and torch.isfinite(f.grad).all()


def test_style_loss_module_kinds() -> None:
    f, source = features(1, 4, 5, 5, seed=14), features(1, 4, 5, 5, seed=15)
    stats = feature_stats(source)
    torch.testing.assert_close(StyleLoss(stats)(f), style_loss(f, gram_matrix(source)))
    torch.testing.assert_close(StyleLoss(stats, kind="meancov")(f), meancov_loss(f, target_of(source)))
    mask = half_mask(5, 5)
    torch.testing.assert_close(StyleLoss(stats, mask=mask)(f), style_loss(f, gram_matrix(source), mask))
    with pytest.raises(ValueError, match="unknown style loss"):
        StyleLoss(stats, kind="wasserstein")
    with pytest.raises(ValueError, match="FeatureStats"):
        StyleLoss(gram_matrix(source), kind="meancov")
    assert isinstance(stats, FeatureStats)
    module = ContentLoss(source, mask)
    torch.testing.assert_close(module(f), content_loss(f, source, mask))
