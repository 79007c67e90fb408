"""One fixed evaluation of a stylized picture, shared by the benchmarks.

Whatever produced a picture (artstyle with any settings, or jcjohnson/neural-style),
it is scored the same way: the bundled VGG19 with max pooling; the content loss is
the mean squared error of relu4_2 features against the content image; the style loss
is the sum over relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1 of the mean squared
error between Gram matrices (divided by C*H*W) against the style image resized to the
same long side as the picture, as neural-style does by default. Pictures are scored
as saved, in 8 bits. Lower is better for both numbers; neither includes a weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from artstyle.features import VGG19Features, load_weights
from artstyle.imageio import image_to_tensor, resize_long_side
from artstyle.losses import content_loss, gram_matrix, style_loss

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class Score:
    content: float
    style: float


class Evaluator:
    """Scores pictures of one content image against one style image."""

    def __init__(self, content: Image.Image, style: Image.Image, size: int = 512) -> None:
        self.net = VGG19Features([CONTENT_LAYER, *STYLE_LAYERS], load_weights("bundled"))
        content = resize_long_side(content, size)
        self.picture_size = content.size
        with torch.no_grad():
            self.content_target = self.net(image_to_tensor(content))[CONTENT_LAYER]
            style_features = self.net(image_to_tensor(resize_long_side(style, size)))
            self.style_targets = {name: gram_matrix(style_features[name]) for name in STYLE_LAYERS}

    def score(self, picture: Image.Image) -> Score:
        """Content and style loss of a picture (resized to the content's size if it differs)."""
        picture = picture.convert("RGB")
        if picture.size != self.picture_size:
            picture = picture.resize(self.picture_size, Image.Resampling.LANCZOS)
        with torch.no_grad():
            features = self.net(image_to_tensor(picture))
            content = float(content_loss(features[CONTENT_LAYER], self.content_target))
            style = sum(float(style_loss(features[name], self.style_targets[name])) for name in STYLE_LAYERS)
        return Score(content, style)
