"""The objective: a weighted sum of named terms that reports its parts.

Gatys et al. (2016) optimise the pixels of the generated image against
``content_weight * L_content + style_weight * sum_l w_l L_style,l + tv_weight * L_tv``.
Here that sum is made of named terms: ``content``, ``style:<layer>`` for each style
layer (their sum is ``style``), ``tv``, and any extra :class:`Term` a front end adds
(video adds a temporal term), each reported in the breakdown. :class:`Objective`
evaluates it on the whole image; :class:`~artstyle.engine.tiled.TiledObjective` tile by
tile, with the same weights and the same sum (:class:`WeightedTerms`).

With the controls of Gatys et al. (2017): style per region (guided Gram matrices), a
content mask, and a choice of style loss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Required, cast

import torch
from torch import nn
from typing_extensions import TypedDict, Unpack

from artstyle.choices import NORMALIZATIONS
from artstyle.engine.images import as_rgb
from artstyle.features.vgg import VGG19Features
from artstyle.losses import (
    ContentLoss,
    FeatureStats,
    StyleLoss,
    content_scale,
    feature_stats,
    resize_mask,
    style_scale,
    tv_loss,
    tv_scale,
)

#: Statistics of one style image at one size: layer name -> its features' statistics.
StyleStats = Mapping[str, FeatureStats]

#: Names the objective gives its own parts (``style:<layer>`` too).
RESERVED_NAMES = ("content", "style", "total")


@dataclass(frozen=True)
class Term:
    """A named term on the image itself: ``weight * loss(image)``, where ``loss`` takes the
    optimised (1, C, H, W) image in [0, 1] at the scale's size and returns a scalar.

    Total variation is one (``tv``); a front end may add its own (``extra_terms``). Its
    weighted value is reported under ``name`` and added to the total.
    """

    name: str
    loss: Callable[[torch.Tensor], torch.Tensor]
    weight: float = 1.0


def image_terms(tv_weight: float, extra_terms: Sequence[Term] = ()) -> tuple[Term, ...]:
    """Total variation and the extra terms, after checking that every name is new."""
    terms = (Term("tv", tv_loss, tv_weight), *extra_terms)
    names = [term.name for term in terms]
    for name in names:
        if name in RESERVED_NAMES or name.startswith("style:") or names.count(name) > 1:
            raise ValueError(f"the objective already has a term named {name!r}")
    return terms


class ObjectiveOptions(TypedDict, total=False):
    """The layers, weights and controls every form of the objective takes (as keywords)."""

    content_layers: Required[Sequence[tuple[str, float]]]
    style_layers: Required[Sequence[tuple[str, float]]]
    content_weight: Required[float]
    style_weight: Required[float]
    tv_weight: Required[float]
    style_blend: Sequence[float] | None
    style_loss: str
    normalization: str
    style_masks: Sequence[torch.Tensor] | None
    content_mask: torch.Tensor | None
    extra_terms: Sequence[Term]
    style_stats: Sequence[StyleStats] | None
    compute_dtype: torch.dtype | None


class WeightedTerms(nn.Module):
    """What every form of the objective shares: the network, the weighted content and
    style layers, the blend of the style images, the terms on the image, and how the
    parts add up.

    ``content_layer_weights`` and ``style_layer_weights`` map each layer to its weight
    times ``content_weight`` or ``style_weight``; ``blend`` holds one weight per style
    image (:func:`check_styles`). With ``normalization="relative"`` every layer's loss is
    divided by its target's scale (:meth:`content_scaled`, :meth:`style_scaled`), so
    the weights weigh relative squared errors, and the TV weight by the style images'
    mean absolute neighbour difference (:func:`~artstyle.losses.tv_scale`); ``absolute`` (the default here) keeps
    the losses as they are.
    """

    def __init__(self, net: VGG19Features, style_images: Sequence[torch.Tensor], options: ObjectiveOptions) -> None:
        super().__init__()
        self.net = net
        self.content_layer_weights = {name: options["content_weight"] * w for name, w in options["content_layers"]}
        self.style_layer_units = dict(options["style_layers"])  # each style layer's own weight
        self.style_layer_weights: dict[str, float] = {}
        self.reweight_style(options["style_weight"])
        self.style_loss = options.get("style_loss", "gram")
        self.normalization = options.get("normalization", "absolute")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"unknown normalization {self.normalization!r}; expected one of {', '.join(NORMALIZATIONS)}"
            )
        self.compute_dtype = options.get("compute_dtype")
        self.style_masks = options.get("style_masks")
        self.blend = check_styles(style_images, options.get("style_blend"), self.style_masks)
        self.tv_weight = options["tv_weight"]
        if self.normalization == "relative":
            self.tv_weight /= tv_scale(style_images, self.blend)
        self.image_terms = image_terms(self.tv_weight, options.get("extra_terms", ()))

    def reweight_style(self, style_weight: float) -> None:
        """Set the style weight: each style layer's weight becomes ``style_weight`` times its
        own (as when built with it; ``strength`` moves it between the parts of a scale)."""
        self.style_weight = style_weight
        self.style_layer_weights = {name: style_weight * w for name, w in self.style_layer_units.items()}

    def features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The network's features of the optimised image, float32. With ``compute_dtype``
        (bfloat16) the forward pass, and so its backward, runs under autocast; the losses
        are computed in float32 from there on. The targets are always float32."""
        if self.compute_dtype is None:
            return cast(dict[str, torch.Tensor], self.net(as_rgb(image)))
        with torch.autocast(image.device.type, dtype=self.compute_dtype):
            features = self.net(as_rgb(image))
        return {name: value.float() for name, value in features.items()}

    def content_scaled(self, name: str, target: torch.Tensor | float) -> None:
        """Divide content layer ``name``'s weight by its target's scale (relative normalisation),
        given the target features or their mean square."""
        if self.normalization == "relative":
            scale = target if isinstance(target, float) else content_scale(target)
            self.content_layer_weights[name] /= max(scale, 1e-12)

    def style_scaled(self, weight: float, target: FeatureStats) -> float:
        """A style region's weight, divided by its target's scale under relative normalisation."""
        return weight / style_scale(target, self.style_loss) if self.normalization == "relative" else weight

    def image_parts(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted terms on the image, by name (``tv`` first)."""
        return {term.name: term.weight * term.loss(image) for term in self.image_terms}

    @staticmethod
    def total_of(
        content: torch.Tensor, style_parts: Mapping[str, torch.Tensor], image_parts: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total and every part: ``content``, ``style:<layer>``, ``style``, the image
        terms, ``total`` (added in that order)."""
        parts = {"content": content, **style_parts}
        style = content.new_zeros(())
        for value in style_parts.values():
            style = style + value
        parts["style"] = style
        total = content + style
        for name, value in image_parts.items():
            parts[name] = value
            total = total + value
        parts["total"] = total
        return total, parts


class Objective(WeightedTerms):
    """The objective on the whole image, for fixed targets.

    Targets are computed once, under ``no_grad``, when the objective is built. Images
    are (1, 3, H, W) RGB or (1, 1, H, W) luminance (repeated into RGB for the network),
    values in [0, 1]. ``style_stats``, when given, are the style images' statistics
    computed beforehand (:class:`~artstyle.engine.targets.StyleTargets`, once for many
    runs): the style images are then not run through the network again.

    Without ``style_masks`` the style target is a blend of the style images' feature
    statistics with the blend weights ``b`` normalised to sum to 1 (neural-style's
    ``-style_blend_weights``; for the Gram loss that is the blend of the Gram matrices).

    With ``style_masks`` (one (1, 1, H, W) mask in [0, 1] per style image, at the
    image's size) style image ``i`` is the target of region ``i`` only (guided Gram
    matrices, Gatys et al. 2017). Where masks overlap they are divided by their sum, so
    the styles share the pixel; where they add up to less than 1 the style loss has
    less (or, for black everywhere, no) hold and the content dominates. The loss of
    region ``i`` is weighted by its area (the mean of its mask) and by ``b_i`` scaled
    so that equal blend weights are 1 each: full coverage weighs like the unmasked loss.

    ``content_mask`` (1, 1, H, W) weights the content loss per position.
    """

    def __init__(
        self,
        net: VGG19Features,
        content_image: torch.Tensor,
        style_images: Sequence[torch.Tensor],
        **options: Unpack[ObjectiveOptions],
    ) -> None:
        super().__init__(net, style_images, options)
        content_mask, style_masks = options.get("content_mask"), self.style_masks
        with torch.no_grad():
            content_features = net(as_rgb(content_image))
            self.content_losses = nn.ModuleDict(
                {
                    name: ContentLoss(content_features[name], self._mask_at(content_mask, content_features[name]))
                    for name in self.content_layer_weights
                }
            )
            for name in self.content_layer_weights:
                self.content_scaled(name, content_features[name])
            stats = given_stats(options, style_images) or [style_stats(net, style) for style in style_images]
            # One list of (loss, weight) per style layer: a single blended target, or one per region.
            regions: dict[str, list[tuple[StyleLoss, float]]] = {}
            for name in self.style_layer_weights:
                shape = content_features[name] if name in content_features else net(as_rgb(content_image))[name]
                masks = None if style_masks is None else [self._mask_at(m, shape) for m in style_masks]
                regions[name] = [
                    (StyleLoss(target, mask=mask, kind=self.style_loss), self.style_scaled(weight, target))
                    for target, mask, weight in style_targets([s[name] for s in stats], self.blend, masks)
                ]
        self.style_losses = nn.ModuleDict(
            {name: nn.ModuleList([loss for loss, _ in pairs]) for name, pairs in regions.items()}
        )
        self.region_weights = {name: [w for _, w in pairs] for name, pairs in regions.items()}
        with torch.no_grad():
            #: The style loss of the content image itself (float32, each layer at its own
            #: weight, without the style weight): what ``strength``'s share divides by.
            self.photo_style = self._style_sum(content_features, content_image)

    @staticmethod
    def _mask_at(mask: torch.Tensor | None, features: torch.Tensor) -> torch.Tensor | None:
        if mask is None:
            return None
        return resize_mask(mask.to(features.dtype).to(features.device), features.shape[2], features.shape[3])

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its weighted parts for an (1, 3|1, H, W) image in [0, 1]."""
        features = self.features(image)
        content = image.new_zeros(())
        for name, weight in self.content_layer_weights.items():
            content = content + weight * self.content_losses[name](features[name])
        return self.total_of(content, self._style_parts(features, image), self.image_parts(image))

    def style_of(self, image: torch.Tensor) -> torch.Tensor:
        """The style loss of ``image`` as :attr:`photo_style` is of the photo (no gradient)."""
        with torch.no_grad():
            return self._style_sum(self.features(image), image)

    def _style_sum(self, features: Mapping[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        """The style loss of these features, each layer at its own weight (no style weight)."""
        parts = self._style_parts(features, image, self.style_layer_units)
        return sum(parts.values(), image.new_zeros(()))

    def _style_parts(
        self, features: Mapping[str, torch.Tensor], image: torch.Tensor, weights: Mapping[str, float] | None = None
    ) -> dict[str, torch.Tensor]:
        """The weighted style loss of each layer (``style:<layer>``) for the features of
        ``image``, by ``weights`` (default: the layer weights times the style weight)."""
        style_parts: dict[str, torch.Tensor] = {}
        for name, weight in (self.style_layer_weights if weights is None else weights).items():
            losses = cast(nn.ModuleList, self.style_losses[name])
            layer = image.new_zeros(())
            for loss, region_weight in zip(losses, self.region_weights[name], strict=True):
                if region_weight:
                    layer = layer + region_weight * loss(features[name])
            style_parts[f"style:{name}"] = weight * layer
        return style_parts


def style_stats(net: VGG19Features, style: torch.Tensor) -> StyleStats:
    """The statistics of a style image at every layer of ``net``."""
    with torch.no_grad():
        return {name: feature_stats(f) for name, f in net(as_rgb(style)).items()}


def given_stats(options: ObjectiveOptions, style_images: Sequence[torch.Tensor]) -> list[StyleStats] | None:
    """The precomputed ``style_stats`` of the options (one per style image), if any."""
    given = options.get("style_stats")
    if given is None:
        return None
    if len(given) != len(style_images):
        raise ValueError(f"{len(given)} precomputed style statistics for {len(style_images)} style images")
    return list(given)


def check_styles(
    style_images: Sequence[object],
    style_blend: Sequence[float] | None,
    style_masks: Sequence[torch.Tensor] | None,
) -> list[float]:
    """The blend weights (default: equal), after checking that there is one per style image,
    and one mask per style image when masks are given (ValueError otherwise)."""
    blend = list(style_blend) if style_blend is not None else [1.0] * len(style_images)
    if len(blend) != len(style_images):
        raise ValueError(f"{len(blend)} blend weights for {len(style_images)} style images")
    if style_masks is not None and len(style_masks) != len(style_images):
        raise ValueError(f"{len(style_masks)} style masks for {len(style_images)} style images")
    return blend


def style_targets(
    stats: Sequence[FeatureStats], blend: Sequence[float], masks: Sequence[torch.Tensor | None] | None
) -> list[tuple[FeatureStats, torch.Tensor | None, float]]:
    """The style targets of one layer as (target statistics, region mask, region weight):
    without ``masks`` (the style images' masks at the layer's resolution), one blend of
    all styles over the whole image; with them, style ``i`` in region ``i`` (see
    :class:`Objective`)."""
    total = sum(blend)
    if masks is None:
        return [(_blend(stats, [b / total for b in blend]), None, 1.0)]
    regions = normalised_masks(masks)
    return [(s, m, float(m.mean()) * b * len(blend) / total) for s, m, b in zip(stats, regions, blend, strict=True)]


def _blend(stats: Sequence[FeatureStats], weights: Sequence[float]) -> FeatureStats:
    result = stats[0].scaled(weights[0])
    for s, w in zip(stats[1:], weights[1:], strict=True):
        result = result + s.scaled(w)
    return result


def normalised_masks(masks: Sequence[torch.Tensor | None]) -> list[torch.Tensor]:
    """Masks divided by their sum where it exceeds 1 (overlaps share), unchanged elsewhere."""
    stack = torch.cat([cast(torch.Tensor, m).clamp(0, 1) for m in masks], dim=0)  # (S, 1, H, W)
    total = stack.sum(dim=0, keepdim=True).clamp_min(1.0)
    return list(torch.split(stack / total, 1, dim=0))
