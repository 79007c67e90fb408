"""One fixed evaluation of a stylized picture, shared by the benchmarks.

Whatever produced a picture (artstyle with any settings, or jcjohnson/neural-style),
it is scored the same way, on the bundled VGG19 with max pooling, against the content
image at the picture's size and the style image resized to the picture's long side.
Pictures are scored as saved, in 8 bits. Lower is better for every number; none
includes a weight. Two evaluations are kept:

* the relative one (what the quality targets are stated in): ``content_rel`` is
  ||F(O) - F(C)||^2 / ||F(C)||^2 at relu4_2; ``style_rel`` is the mean over relu1_1,
  relu2_1, relu3_1, relu4_1 and relu5_1 of ||G(O) - G(S)||_F / ||G(S)||_F, with G the
  Gram matrix divided by H*W, every layer counting equally (``style_layers`` has the
  five terms);
* the absolute one of the earlier releases (``content``, ``style``): the mean squared
  error of relu4_2 features, and the sum over the same layers of the mean squared
  error between Gram matrices divided by C*H*W, as neural-style's losses are. Its
  style number is dominated by the layers with the largest Gram values.

``noise`` is the picture's high-frequency energy: the mean absolute difference
between horizontally and vertically neighbouring pixels, over the three channels, in
[0, 1] units (0.01 is about 2.5 levels of 255).

``palette`` is how far the picture's colours are from the painting's: the sliced
Wasserstein distance (:func:`sliced_wasserstein`, 64 directions of a fixed seed) between
the two sets of pixel colours in CIELAB, divided by the same distance for the photo
(1: the photo's own colours; 0: the painting's whole distribution). A blend's painting
pixels count equally per painting.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from artstyle.features import VGG19Features, load_weights
from artstyle.imageio import image_to_tensor, resize_long_side
from artstyle.losses import content_loss, gram_matrix, neighbour_difference, palette_quantiles, style_loss

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class Score:
    content_rel: float
    style_rel: float
    style_layers: tuple[float, ...]
    noise: float
    content: float
    style: float
    palette: float


def _relative_gram_error(features: torch.Tensor, target: torch.Tensor) -> float:
    channels = features.shape[1]  # gram_matrix divides by C*H*W; the ratio does not care, but G is by H*W
    gram = gram_matrix(features) * channels
    return float(torch.linalg.norm(gram - target * channels) / torch.linalg.norm(target * channels))


class Evaluator:
    """Scores pictures of one content image against one style image."""

    def __init__(self, content: Image.Image, style: Image.Image | Sequence[Image.Image], size: int = 512) -> None:
        """Several style images are an equal blend: their target is the mean of their Gram
        matrices (those of the mixture of their features, as a blended run uses)."""
        self.net = VGG19Features([CONTENT_LAYER, *STYLE_LAYERS], load_weights("bundled"), fast=False)
        content = resize_long_side(content, size)
        self.picture_size = content.size
        styles = [style] if isinstance(style, Image.Image) else list(style)
        with torch.no_grad():
            self.content_target = self.net(image_to_tensor(content))[CONTENT_LAYER]
            grams: dict[str, torch.Tensor] = {}
            for image in styles:
                features = self.net(image_to_tensor(resize_long_side(image, size)))
                for name in STYLE_LAYERS:
                    grams[name] = grams.get(name, 0) + gram_matrix(features[name]) / len(styles)
            self.style_targets = grams
        paintings = [image_to_tensor(resize_long_side(image, size)) for image in styles]
        self.painting_lab = torch.cat([lab_pixels(painting) for painting in paintings], dim=1)
        self.painting_mass = torch.cat(
            [torch.full((p.shape[2] * p.shape[3],), 1.0 / p[0, 0].numel()) for p in paintings]
        )
        self.photo_palette = sliced_wasserstein(
            lab_pixels(image_to_tensor(content)), self.painting_lab, self.painting_mass
        )

    def with_content(self, content: Image.Image) -> Evaluator:
        """The same evaluation (network, style targets) against another content image."""
        other = copy.copy(self)
        content = resize_long_side(content, max(self.picture_size))
        other.picture_size = content.size
        with torch.no_grad():
            other.content_target = self.net(image_to_tensor(content))[CONTENT_LAYER]
        return other

    def score(self, picture: Image.Image) -> Score:
        """The scores of a picture (resized to the content's size if it differs)."""
        picture = picture.convert("RGB")
        if picture.size != self.picture_size:
            picture = picture.resize(self.picture_size, Image.Resampling.LANCZOS)
        tensor = image_to_tensor(picture)
        with torch.no_grad():
            features = self.net(tensor)
            mine, target = features[CONTENT_LAYER], self.content_target
            content = float(content_loss(mine, target))
            content_rel = float((mine - target).pow(2).sum() / target.pow(2).sum())
            style = sum(float(style_loss(features[name], self.style_targets[name])) for name in STYLE_LAYERS)
            layers = tuple(_relative_gram_error(features[name], self.style_targets[name]) for name in STYLE_LAYERS)
        noise = float(neighbour_difference(tensor))
        palette = sliced_wasserstein(lab_pixels(tensor), self.painting_lab, self.painting_mass) / self.photo_palette
        return Score(content_rel, sum(layers) / len(layers), layers, noise, content, style, palette)


def lab_pixels(image: torch.Tensor) -> torch.Tensor:
    """The (3, N) CIELAB colours (D65) of a (1, 3, H, W) sRGB image in [0, 1], in float64."""
    rgb = image[0].reshape(3, -1).to(torch.float64)
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = _SRGB_TO_XYZ @ linear / _D65_WHITE[:, None]
    f = torch.where(xyz > (6 / 29) ** 3, xyz.clamp_min(1e-12) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return torch.stack([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


_SRGB_TO_XYZ = torch.tensor(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
    dtype=torch.float64,
)
_D65_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)


def sliced_wasserstein(
    a: torch.Tensor, b: torch.Tensor, b_mass: torch.Tensor | None = None, directions: int = 64, quantiles: int = 512
) -> float:
    """The sliced 2-Wasserstein distance between the point sets ``a`` (3, N) and ``b`` (3, M)
    (``b`` weighted by ``b_mass``): the root mean square, over ``directions`` unit vectors of
    a fixed seed and ``quantiles`` evenly spaced quantiles, of the difference between the
    two projections' quantiles."""
    generator = torch.Generator().manual_seed(0)
    units = torch.randn(3, directions, generator=generator, dtype=torch.float64)
    units /= units.norm(dim=0)
    mass_b = b_mass.to(torch.float64) if b_mass is not None else torch.ones(b.shape[1], dtype=torch.float64)
    qa = palette_quantiles(a, torch.ones(a.shape[1], dtype=torch.float64), units, quantiles)
    qb = palette_quantiles(b, mass_b, units, quantiles)
    return float((qa - qb).pow(2).mean().sqrt())
