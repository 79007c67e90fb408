"""Colour control (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer").

Two ways to keep the photo's colours, both on (1, 3, H, W) RGB tensors in [0, 1]:

* ``luminance``: transfer style in the luminance channel only. The target is the style's
  own luminance (as neural-style's ``-original_colors``), or, with ``match_luminance``, that
  luminance matched to the content's mean and standard deviation (:func:`match_luminance`,
  as Gatys et al.); the optimisation runs on a one-channel image, and the result's luminance is recombined
  with the content's chroma (:func:`recombine`) in YIQ, the colour space the paper uses.
* ``histogram``: before stylizing, map the style image's colours linearly so their mean
  and covariance equal the content's (:func:`match_color`); the map is
  ``C_c^(1/2) C_s^(-1/2)``, computed in float64 with the style's covariance eigenvalues floored at 1e-4 of
  the largest, so grey or single-colour style images (singular covariances) work.

The colour statistics and maps are float64, on the images' device, except on Apple's MPS
(no float64): there on the CPU (:func:`~artstyle.linalg.exact_device`), and the mapped
image is moved back.

The reverse, :func:`recolor`, maps the content's colours to the style's mean and
covariance, principal axis onto principal axis (:func:`map_principal_colors`): the start
of ``init="recolor"``, which has the painting's palette before the first iteration.
"""

from __future__ import annotations

import torch

from artstyle.linalg import as_float64, inverse_sqrtm, sqrtm

#: RGB -> YIQ (NTSC 1953). Y is the luminance, I and Q the chroma.
_RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ],
    dtype=torch.float64,
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _check_rgb(image: torch.Tensor, name: str) -> None:
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"{name}: expected an (N, 3, H, W) RGB image, got shape {tuple(image.shape)}")


def _apply(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", matrix.to(image.dtype).to(image.device), image)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 3, H, W) YIQ."""
    _check_rgb(image, "rgb_to_yiq")
    return _apply(_RGB_TO_YIQ, image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) YIQ -> (N, 3, H, W) RGB (not clamped)."""
    _check_rgb(image, "yiq_to_rgb")
    return _apply(_YIQ_TO_RGB, image)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """The Y channel of an RGB image, (N, 1, H, W)."""
    return rgb_to_yiq(image)[:, :1]


def match_luminance(style_luma: torch.Tensor, content_luma: torch.Tensor) -> torch.Tensor:
    """``style_luma`` shifted and scaled to the mean and standard deviation of ``content_luma``.

    A flat style luminance (no deviation) becomes flat at the content's mean. The result is clamped to [0, 1].
    """
    s_mean, s_std = style_luma.mean(), style_luma.std(unbiased=False)
    c_mean, c_std = content_luma.mean(), content_luma.std(unbiased=False)
    scale = torch.where(s_std > 1e-6, c_std / s_std, torch.zeros_like(s_std))  # decided on the device
    return ((style_luma - s_mean) * scale + c_mean).clamp(0, 1)


def recombine(luma: torch.Tensor, chroma_source: torch.Tensor) -> torch.Tensor:
    """RGB from the luminance ``luma`` (N, 1, H, W) and the I and Q channels of the RGB image
    ``chroma_source`` (same H and W); clamped to [0, 1]."""
    yiq = rgb_to_yiq(chroma_source)
    return yiq_to_rgb(torch.cat([luma, yiq[:, 1:]], dim=1)).clamp(0, 1)


def color_stats(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (3,) and covariance (3, 3) of the pixel colours of a (1, 3, H, W) image, in
    float64 (on the CPU for an image on MPS)."""
    _check_rgb(image, "color_stats")
    pixels = as_float64(image[0].reshape(3, -1))
    mean = pixels.mean(dim=1)
    centred = pixels - mean[:, None]
    return mean, centred @ centred.T / pixels.shape[1]


def blend_color_stats(
    stats: list[tuple[torch.Tensor, torch.Tensor]], weights: list[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour mean and covariance of a mixture of images' pixels, image ``i`` making up
    ``weights[i]`` of them (the weights need not sum to 1): the statistics of a blend."""
    total = sum(weights)
    like = stats[0][0]  # the sums start on the statistics' own device
    mean = sum((w / total * m for (m, _), w in zip(stats, weights, strict=True)), torch.zeros_like(like))
    second = sum(
        (w / total * (c + torch.outer(m, m)) for (m, c), w in zip(stats, weights, strict=True)),
        torch.zeros(3, 3, dtype=like.dtype, device=like.device),
    )
    return mean, second - torch.outer(mean, mean)


def map_colors(image: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """``image`` with its pixel colours mapped linearly to the mean (3,) and covariance (3, 3) given.

    ``x -> C^(1/2) C_i^(-1/2) (x - m_i) + m`` for every pixel ``x`` of the image (mean
    ``m_i``, covariance ``C_i``); clamped to [0, 1], which can only move the statistics
    where the mapped colours leave the valid range.
    """
    i_mean, i_cov = color_stats(image)
    transform = sqrtm(as_float64(cov)) @ inverse_sqrtm(i_cov, eps=1e-4)
    return _apply_map(image, transform, i_mean, mean)


def map_principal_colors(image: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """``image`` with its principal colour axes mapped onto those of the mean (3,) and
    covariance (3, 3) given, largest onto largest (PCA colour transfer, Abadpour and
    Kasaei 2007); the result has that mean and covariance, like :func:`map_colors`.

    ``x -> U diag(s_k sqrt(l_k / l_i,k)) U_i^T (x - m_i) + m``, with the eigenvectors
    ``U_i``, ``U`` and eigenvalues ``l_i``, ``l`` of the two covariances sorted largest
    first, and each sign ``s_k`` that of ``u_i,k . u_k``, so that every axis keeps its
    direction (light stays light). The photo's main contrast becomes the painting's main
    contrast, its whole range; :func:`map_colors`, which moves every colour as little as
    it can, spreads it over the painting's weaker axes too (on the Tuebingen photo with
    The Scream it paints the sky the painting's teal water, this its orange sky, as
    neural-style's picture has it). The image's eigenvalues are floored at 1e-4 of the
    largest, as in :func:`map_colors`; clamped to [0, 1].
    """
    i_mean, i_cov = color_stats(image)
    i_values, i_vectors = torch.linalg.eigh(i_cov)
    values, vectors = torch.linalg.eigh(as_float64(cov))
    i_values, i_vectors, values, vectors = i_values.flip(0), i_vectors.flip(1), values.flip(0), vectors.flip(1)
    signs = torch.where((i_vectors * vectors).sum(dim=0) < 0, -1.0, 1.0).to(i_values)
    floor = i_values.max().clamp_min(1e-12) * 1e-4
    scales = (values.clamp_min(0) / i_values.clamp_min(floor)).sqrt()
    return _apply_map(image, vectors @ torch.diag(signs * scales) @ i_vectors.T, i_mean, mean)


def _apply_map(image: torch.Tensor, transform: torch.Tensor, origin: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """``transform (x - origin) + mean`` for every pixel ``x`` of a (1, 3, H, W) image, clamped
    to [0, 1]; computed in float64 (see the module), returned on the image's device and dtype."""
    pixels = as_float64(image[0].reshape(3, -1))
    mapped = transform @ (pixels - origin[:, None]) + as_float64(mean)[:, None]
    return mapped.reshape(image.shape).to(device=image.device, dtype=image.dtype).clamp(0, 1)


def match_color(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The style image with its colours mapped to the content's mean and covariance
    (Gatys et al. 2017, colour histogram matching; see :func:`map_colors`)."""
    return map_colors(style, *color_stats(content))


def recolor(
    content: torch.Tensor, styles: list[torch.Tensor], weights: list[float], palette: str = "distribution"
) -> torch.Tensor:
    """The reverse of :func:`match_color`: the content with its colours mapped to the style
    images' (their blend's, by ``weights``) mean and covariance, axis onto principal axis
    (:func:`map_principal_colors`): the painting's palette on the photo, the start of
    ``init="recolor"``. With ``palette="distribution"`` that is then moved onto the
    paintings' whole colour distribution (:func:`match_distribution`)."""
    mapped = map_principal_colors(content, *blend_color_stats([color_stats(style) for style in styles], weights))
    return match_distribution(mapped, styles, weights) if palette == "distribution" else mapped


def recolor_regions(
    content: torch.Tensor, styles: list[torch.Tensor], masks: list[torch.Tensor], palette: str = "distribution"
) -> torch.Tensor:
    """:func:`recolor` by region, as style masks paint: the content mapped to style ``i``'s
    colours where mask ``i`` (1, 1, H, W, in [0, 1], overlaps already shared so that the
    masks sum to at most 1) covers it, and the content as it is where no mask does."""
    covered = torch.zeros_like(masks[0])
    result = torch.zeros_like(content)
    for style, mask in zip(styles, masks, strict=True):
        result = result + mask * recolor(content, [style], [1.0], palette)
        covered = covered + mask
    return result + (1.0 - covered).clamp_min(0.0) * content


#: The rounds of :func:`match_distribution`: the painting's principal axes, then this many
#: fixed rotations (Pitié et al. 2005: each round matches the marginals along three axes;
#: a few random ones bring the joint distribution along).
DISTRIBUTION_ROUNDS = 4


def match_distribution(
    image: torch.Tensor, styles: list[torch.Tensor], weights: list[float], rounds: int = DISTRIBUTION_ROUNDS
) -> torch.Tensor:
    """``image`` (1, 3, H, W) with its pixel colours moved onto the whole colour distribution
    of the style images (their mixture by ``weights``), darkest and brightest tones
    included, not only its mean and covariance.

    Each round takes three orthogonal axes (first the mixture's principal axes, then
    fixed rotations, the same on every run) and maps the image's colours along each axis
    through the quantiles of the styles' (histogram matching, monotone: what was darker
    along an axis stays darker). In float64, on the CPU for MPS; clamped to [0, 1].
    """
    pixels = as_float64(image[0].reshape(3, -1))
    style_pixels, mass = pixel_mixture(styles, weights)
    target = as_float64(style_pixels)
    mass = mass.to(target)
    for axes in _rounds(target, mass, rounds):
        projected, reference = axes.T @ pixels, axes.T @ target  # (3, N), (3, M)
        matched = torch.stack([_match_axis(projected[k], reference[k], mass) for k in range(3)])
        pixels = axes @ matched
    return pixels.reshape(image.shape).to(device=image.device, dtype=image.dtype).clamp(0, 1)


def pixel_mixture(styles: list[torch.Tensor], weights: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """The pixel colours of (1, 3, H, W) ``styles`` side by side, (3, M), and each pixel's
    share of their mixture by ``weights``, (M,) float32, summing to 1: the pixels of style
    ``i`` share ``weights[i] / sum(weights)`` equally."""
    total = sum(weights)
    pixels = torch.cat([style[0].reshape(3, -1) for style in styles], dim=1)
    shares = [torch.full((s[0, 0].numel(),), w / total / s[0, 0].numel()) for s, w in zip(styles, weights, strict=True)]
    return pixels, torch.cat(shares).to(pixels.device)


def _rounds(target: torch.Tensor, mass: torch.Tensor, rounds: int) -> list[torch.Tensor]:
    """The axes of each round, as (3, 3) orthonormal columns: the weighted pixels'
    principal axes, then ``rounds - 1`` rotations drawn from a fixed seed."""
    mean = target @ mass
    centred = target - mean[:, None]
    _, principal = torch.linalg.eigh((centred * mass) @ centred.T)
    generator = torch.Generator().manual_seed(0)
    rotations = [
        torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))[0] for _ in range(rounds - 1)
    ]
    return [principal, *(rotation.to(target) for rotation in rotations)]


def _match_axis(values: torch.Tensor, reference: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
    """``values`` mapped through the quantiles of ``reference`` (weighted by ``mass``):
    each value's rank among ``values`` (the middle of its run, for equal values) becomes
    the reference's value at that rank."""
    ordered = values.sort().values
    below = torch.searchsorted(ordered, values, right=False)
    up_to = torch.searchsorted(ordered, values, right=True)
    ranks = (below + up_to).to(values.dtype) / (2 * values.numel())  # equal values, one rank: no grain
    sorted_reference, by_value = reference.sort()
    sorted_mass = mass.index_select(0, by_value)
    middles = sorted_mass.cumsum(0) - sorted_mass / 2  # each reference value at the middle of its mass (sums to 1)
    return _interpolate(ranks, middles, sorted_reference)


def _interpolate(x: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear ``y(x)`` through the points (``xs``, ``ys``), ``xs`` increasing;
    constant beyond the ends."""
    right = torch.searchsorted(xs, x).clamp(1, xs.numel() - 1)
    x0, x1 = xs.index_select(0, right - 1), xs.index_select(0, right)
    y0, y1 = ys.index_select(0, right - 1), ys.index_select(0, right)
    t = ((x - x0) / (x1 - x0).clamp_min(1e-300)).clamp(0, 1)
    return y0 + t * (y1 - y0)
