"""Colour control (artstyle.color): YIQ, luminance matching and recombination, histogram matching,
and the recoloured start."""

from __future__ import annotations

import pytest
import torch

from artstyle.color import (
    blend_color_stats,
    color_stats,
    luminance,
    map_colors,
    map_principal_colors,
    match_color,
    match_distribution,
    match_luminance,
    recolor,
    recolor_regions,
    recombine,
    rgb_to_yiq,
    yiq_to_rgb,
)


def image(seed: int, mean: tuple[float, float, float] = (0.5, 0.5, 0.5), spread: float = 0.1) -> torch.Tensor:
    """A (1, 3, 16, 12) image with correlated channels, well inside [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.randn(1, 1, 16, 12, generator=generator)
    own = torch.randn(1, 3, 16, 12, generator=generator)
    return (torch.tensor(mean).reshape(1, 3, 1, 1) + spread * (0.7 * base + 0.5 * own)).clamp(0, 1)


def test_yiq_round_trip_and_grey_has_no_chroma() -> None:
    x = image(1)
    torch.testing.assert_close(yiq_to_rgb(rgb_to_yiq(x)), x, atol=1e-5, rtol=1e-5)
    grey = torch.full((1, 3, 4, 4), 0.3)
    yiq = rgb_to_yiq(grey)
    torch.testing.assert_close(yiq[:, 0], torch.full((1, 4, 4), 0.3))
    torch.testing.assert_close(yiq[:, 1:], torch.zeros(1, 2, 4, 4), atol=1e-6, rtol=0)
    assert luminance(x).shape == (1, 1, 16, 12)


def test_rgb_is_required() -> None:
    with pytest.raises(ValueError, match="RGB"):
        rgb_to_yiq(torch.zeros(1, 1, 4, 4))


def test_recombined_image_has_the_chroma_of_the_content() -> None:
    content = image(2, mean=(0.6, 0.4, 0.3))
    # A stylized luminance near the content's, as a run produces (far off, clamping would bite).
    stylized_luma = luminance(content) + 0.05 * (luminance(image(3)) - 0.5)
    out = recombine(stylized_luma, content)
    torch.testing.assert_close(rgb_to_yiq(out)[:, 1:], rgb_to_yiq(content)[:, 1:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(luminance(out), stylized_luma, atol=1e-5, rtol=1e-5)


def test_style_luminance_takes_the_content_mean_and_spread() -> None:
    style, content = luminance(image(4, mean=(0.2, 0.2, 0.2), spread=0.05)), luminance(image(5, spread=0.1))
    matched = match_luminance(style, content)
    assert float(matched.mean()) == pytest.approx(float(content.mean()), abs=1e-5)
    assert float(matched.std(unbiased=False)) == pytest.approx(float(content.std(unbiased=False)), rel=1e-4)
    flat = match_luminance(torch.full((1, 1, 4, 4), 0.9), content)
    torch.testing.assert_close(flat, torch.full((1, 1, 4, 4), float(content.mean())))


def test_matched_style_colours_have_the_content_mean_and_covariance() -> None:
    content = image(6, mean=(0.55, 0.45, 0.4), spread=0.08)
    style = image(7, mean=(0.4, 0.5, 0.6), spread=0.12)
    matched = match_color(style, content)
    m_mean, m_cov = color_stats(matched)
    c_mean, c_cov = color_stats(content)
    torch.testing.assert_close(m_mean, c_mean, atol=1e-6, rtol=0)
    torch.testing.assert_close(m_cov, c_cov, atol=1e-6, rtol=1e-4)
    assert matched.shape == style.shape and matched.dtype == style.dtype


def test_a_grey_or_flat_style_image_is_handled() -> None:
    content = image(8, mean=(0.6, 0.3, 0.2))
    grey = luminance(image(9)).expand(-1, 3, -1, -1).contiguous()
    for style in (grey, torch.full((1, 3, 8, 8), 0.5)):
        matched = match_color(style, content)
        assert torch.isfinite(matched).all()
        assert matched.min() >= 0 and matched.max() <= 1
        torch.testing.assert_close(color_stats(matched)[0], color_stats(content)[0], atol=2e-3, rtol=0)


def test_the_recoloured_start_has_the_style_colour_mean_and_covariance() -> None:
    content = image(10, mean=(0.5, 0.5, 0.45), spread=0.08)
    style = image(11, mean=(0.6, 0.35, 0.25), spread=0.1)
    start = recolor(content, [style], [1.0], palette="moments")
    for got, want in zip(color_stats(start), color_stats(style), strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-4)
    assert start.shape == content.shape
    # the photo's structure stays: the map is linear, so the pixels keep their order in every channel
    flat_c, flat_s = content[0, 0].flatten(), start[0, 0].flatten()
    assert torch.corrcoef(torch.stack([flat_c, flat_s]))[0, 1] > 0.5


def test_a_blend_of_styles_is_the_mixture_of_their_pixels() -> None:
    first, second = image(12, mean=(0.6, 0.4, 0.35), spread=0.05), image(13, mean=(0.4, 0.45, 0.55), spread=0.05)
    mixed = torch.cat([first, first, first, second], dim=3)  # three parts of the first to one of the second
    for got, want in zip(
        blend_color_stats([color_stats(first), color_stats(second)], [3.0, 1.0]), color_stats(mixed), strict=True
    ):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-4)
    start = recolor(image(14, spread=0.05), [first, second], [0.75, 0.25], palette="moments")
    torch.testing.assert_close(color_stats(start)[0], color_stats(mixed)[0], atol=1e-5, rtol=0)


def test_with_style_masks_each_region_takes_its_own_styles_colours() -> None:
    content = image(15, mean=(0.5, 0.5, 0.45), spread=0.08)
    warm, cool = image(16, mean=(0.7, 0.4, 0.2), spread=0.05), image(17, mean=(0.2, 0.4, 0.7), spread=0.05)
    left = torch.zeros(1, 1, 16, 12)
    left[..., :4] = 1.0
    right = torch.zeros(1, 1, 16, 12)
    right[..., 8:] = 1.0  # the middle third is in no region
    start = recolor_regions(content, [warm, cool], [left, right])
    torch.testing.assert_close(start[..., :4], recolor(content, [warm], [1.0])[..., :4])
    torch.testing.assert_close(start[..., 8:], recolor(content, [cool], [1.0])[..., 8:])
    torch.testing.assert_close(start[..., 4:8], content[..., 4:8])  # no style there: the photo as it is


def along(seed: int, dark: tuple[float, float, float], light: tuple[float, float, float]) -> torch.Tensor:
    """A (1, 3, 16, 12) image whose colours spread mostly from ``dark`` to ``light``."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.rand(1, 1, 16, 12, generator=generator)
    ends = torch.tensor(dark).reshape(1, 3, 1, 1), torch.tensor(light).reshape(1, 3, 1, 1)
    return (ends[0] + t * (ends[1] - ends[0]) + 0.02 * torch.randn(1, 3, 16, 12, generator=generator)).clamp(0, 1)


def test_principal_axes_carry_the_photos_main_contrast_onto_the_paintings() -> None:
    photo = along(20, dark=(0.2, 0.2, 0.2), light=(0.8, 0.8, 0.8))  # a grey ramp
    painting = along(21, dark=(0.3, 0.1, 0.2), light=(0.9, 0.2, 0.2))  # dark to light red
    mapped = map_principal_colors(photo, *color_stats(painting))
    for got, want in zip(color_stats(mapped), color_stats(painting), strict=True):
        torch.testing.assert_close(got, want, atol=2e-3, rtol=2e-2)  # up to the clamp at 0 and 1
    ends = luminance(photo).flatten().argmin(), luminance(photo).flatten().argmax()
    darkest, lightest = (mapped[0, 0].flatten()[k] for k in ends)
    assert darkest < 0.4 and lightest > 0.85  # light to light red, dark to dark: the painting's whole range
    # The least-moving map spreads the photo's contrast over the painting's weaker axes too.
    least = map_colors(photo, *color_stats(painting))[0, 0].flatten()
    assert float(least[ends[1]] - least[ends[0]]) < 0.6 * float(lightest - darkest)


def test_principal_axes_onto_a_grey_painting_leave_no_colour() -> None:
    photo = image(22, mean=(0.5, 0.4, 0.3), spread=0.1)
    grey = along(23, dark=(0.2, 0.2, 0.2), light=(0.8, 0.8, 0.8)).mean(dim=1, keepdim=True).expand(1, 3, 16, 12)
    mapped = map_principal_colors(photo, *color_stats(grey))
    chroma = rgb_to_yiq(mapped)[:, 1:]
    assert float(chroma.abs().max()) < 1e-4
    assert torch.isfinite(map_principal_colors(torch.full((1, 3, 4, 4), 0.5), *color_stats(grey))).all()


def _sliced_distance(a: torch.Tensor, b: torch.Tensor, directions: int = 32) -> float:
    """The sliced 2-Wasserstein distance between two (1, 3, H, W) images' pixel colours
    (the same number of pixels each)."""
    units = torch.randn(3, directions, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    units /= units.norm(dim=0)
    pa = (units.T @ a[0].reshape(3, -1).double()).sort(dim=1).values
    pb = (units.T @ b[0].reshape(3, -1).double()).sort(dim=1).values
    return float((pa - pb).pow(2).mean().sqrt())


def _skewed(seed: int) -> torch.Tensor:
    """A painting whose colours are far from Gaussian: mostly dark blue, a few bright orange pixels."""
    generator = torch.Generator().manual_seed(seed)
    dark = torch.tensor([0.08, 0.1, 0.3]).reshape(3, 1) + 0.04 * torch.randn(3, 150, generator=generator)
    bright = torch.tensor([0.95, 0.6, 0.15]).reshape(3, 1) + 0.03 * torch.randn(3, 42, generator=generator)
    return torch.cat([dark, bright], dim=1).clamp(0, 1).reshape(1, 3, 16, 12)


def test_the_distribution_start_is_closer_to_the_painting_s_colours_than_the_moments_start() -> None:
    content, painting = image(20, spread=0.12), _skewed(21)
    moments = recolor(content, [painting], [1.0], palette="moments")
    whole = recolor(content, [painting], [1.0])  # the default
    assert _sliced_distance(whole, painting) < 0.5 * _sliced_distance(moments, painting)
    assert whole.shape == content.shape and float(whole.min()) >= 0 and float(whole.max()) <= 1
    # monotone along the painting's main axis: the photo's light-dark order is kept
    flat_c, flat_w = luminance(content).flatten(), luminance(whole).flatten()
    assert torch.corrcoef(torch.stack([flat_c, flat_w]))[0, 1] > 0.5


def test_the_distribution_start_gives_equal_colours_one_colour() -> None:
    # A flat region of the photo stays flat (no grain from splitting ties), and a photo that
    # already has the painting's colours keeps them.
    content = image(22, spread=0.1)
    content[..., :8, :] = torch.tensor([0.3, 0.5, 0.4]).reshape(1, 3, 1, 1)
    whole = recolor(content, [_skewed(23)], [1.0], palette="distribution")
    assert float(whole[..., :8, :].std(dim=(2, 3)).max()) < 1e-9
    painting = _skewed(24)
    torch.testing.assert_close(match_distribution(painting, [painting], [1.0]), painting, atol=1e-5, rtol=0)


def test_a_blend_s_distribution_is_the_mixture_of_its_paintings() -> None:
    first, second = _skewed(25), image(26, mean=(0.3, 0.7, 0.3), spread=0.05)
    mixed = torch.cat([first, first, first, second], dim=3)  # three parts of the first to one of the second
    content = image(27, spread=0.12).repeat(1, 1, 1, 4)
    whole = recolor(content, [first, second], [3.0, 1.0], palette="distribution")
    assert _sliced_distance(whole, mixed) < 0.6 * _sliced_distance(
        recolor(content, [first, second], [3.0, 1.0], palette="moments"), mixed
    )
