"""Large images in bounded memory: the objective evaluated tile by tile.

One forward and backward pass of VGG19 up to relu5_1 keeps 2.2-2.9 KB of activations
per pixel (measured with ``benchmarks/memory.py``; see :data:`PASS_OVERHEAD`), so a
4096x3072 image would need some 30 GB at once. :class:`TiledObjective` computes the same objective as
:class:`~artstyle.engine.objective.Objective`, for the same image (still one tensor, optimised by
one optimizer), with the network run on one crop at a time:

* The image is split into *cores* that partition it, their edges on multiples of the
  deepest layer's stride (16 px for relu5_1), so every feature position of every layer
  belongs to exactly one core. Each tile is a core plus a context margin
  (:func:`~artstyle.features.layers.context_margin`, 80 px for relu5_1) on every side
  that is not the image's edge. The features of a core computed from its crop are then
  exactly those of the whole image: their receptive fields end inside the crop, so the
  crop's zero padding never reaches them. Only the cores' features are used.
* Content loss: the sum over cores of the squared differences to the content image's
  features there (computed once, per tile, from the content image's crop), divided by
  the whole image's feature count: the untiled mean. The content mask is cut the same way.
* Style loss: a Gram matrix, or a mean and covariance, is a sum over positions divided by
  the weight of all positions, so the whole image's statistics are the sum of the cores'
  (with the style masks, at each layer's resolution, cut the same way). A first pass over
  the tiles, without gradients, adds them up; the style loss and its gradient with
  respect to the statistics follow; a second pass runs each tile forward and backward
  again with that gradient (and the content loss's), and adds the crop's gradient into
  the image's. The style target is the global one of the untiled objective.
* Total variation is computed on the whole image at once (a few image-sized tensors).

So the tiled loss and gradient are the untiled ones up to floating-point rounding: there
is nothing to blend and no seam to hide. The price is the overlap of the crops and the
first pass (a forward pass per tile without gradients, about 40% of a forward and
backward one). Peak memory is that of one tile's pass plus image-sized tensors.

:func:`~artstyle.engine.plan.plan_memory` chooses, per scale, whether to tile and how
large the tiles may be. The weights, the image terms (total variation, extra terms) and
the sum of the parts are those of :class:`~artstyle.engine.objective.WeightedTerms`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from typing_extensions import Unpack

from artstyle.engine.images import as_rgb
from artstyle.engine.objective import ObjectiveOptions, WeightedTerms, given_stats, style_targets
from artstyle.features.layers import context_margin, feature_size, min_image_side, stride
from artstyle.features.vgg import VGG19Features
from artstyle.losses import FeatureStats, StyleLoss, resize_mask

# --------------------------------------------------------------------------- #
# Tiles
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Tile:
    """A crop of the image (``top``, ``bottom``, ``left``, ``right``: pixels, end exclusive)
    around its core, the part whose features it contributes (``core``, the same order)."""

    top: int
    bottom: int
    left: int
    right: int
    core: tuple[int, int, int, int]

    def take(self, image: torch.Tensor) -> torch.Tensor:
        """The crop of an (N, C, H, W) image (a view)."""
        return image[:, :, self.top : self.bottom, self.left : self.right]

    def core_in_crop(self, features: torch.Tensor, stride: int) -> torch.Tensor:
        """The core's part of the crop's features at a layer of this stride (a view)."""
        top, bottom, left, right = self.core
        rows = slice(top // stride - self.top // stride, bottom // stride - self.top // stride)
        columns = slice(left // stride - self.left // stride, right // stride - self.left // stride)
        return features[:, :, rows, columns]

    def core_in_image(self, features: torch.Tensor, stride: int) -> torch.Tensor:
        """The core's part of whole-image features (or a mask) at a layer of this stride."""
        top, bottom, left, right = self.core
        return features[:, :, top // stride : bottom // stride, left // stride : right // stride]


def _split(length: int, tile_size: int, margin: int, align: int) -> list[tuple[int, int, int, int]]:
    """(crop start, crop end, core start, core end) along one side: the fewest, evenly sized
    cores, their edges on multiples of ``align``, whose crops are at most ``tile_size``."""
    if length <= tile_size:
        return [(0, length, 0, length)]
    pieces = 2
    while True:
        edges = [0, *(align * round(k * length / (pieces * align)) for k in range(1, pieces)), length]
        spans = [(max(0, a - margin), min(length, b + margin), a, b) for a, b in itertools.pairwise(edges)]
        if all(end - start <= tile_size for start, end, _, _ in spans) or pieces >= length // align:
            return spans
        pieces += 1


def tile_grid(height: int, width: int, tile_size: int, layers: Iterable[str], margin: int | None = None) -> list[Tile]:
    """The tiles of an image for the network ``layers``: crops of at most ``tile_size`` px
    a side around cores that partition the image. ``margin`` (default: the exact one,
    :func:`~artstyle.features.layers.context_margin`; a multiple of
    :func:`~artstyle.features.layers.min_image_side`) is the context around each core."""
    layers = list(layers)
    align = min_image_side(layers)
    margin = context_margin(layers) if margin is None else margin
    rows = _split(height, tile_size, margin, align)
    columns = _split(width, tile_size, margin, align)
    return [
        Tile(top, bottom, left, right, (core_top, core_bottom, core_left, core_right))
        for top, bottom, core_top, core_bottom in rows
        for left, right, core_left, core_right in columns
    ]


# --------------------------------------------------------------------------- #
# The tiled objective
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Region:
    """One style target of a layer: the loss against it, the weight of every position
    (None: all 1), the sum of those weights over the whole image, and the region's weight."""

    loss: StyleLoss
    weights: torch.Tensor | None
    total: float
    weight: float


@dataclass(frozen=True)
class _Sums:
    """Sums over positions of ``w * f`` (``first``, (1, C)) and ``w * f f^T`` (``second``, (1, C, C))."""

    first: torch.Tensor
    second: torch.Tensor

    def __add__(self, other: _Sums) -> _Sums:
        return _Sums(self.first + other.first, self.second + other.second)


@dataclass(frozen=True)
class _Upstream:
    """The gradient of the style loss with respect to a region's :class:`_Sums` (None: zero)."""

    first: torch.Tensor | None
    second: torch.Tensor | None


def _weighted_sums(features: torch.Tensor, weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over positions of ``w * f`` (1, C) and of ``w * f f^T`` (1, C, C)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    weighted = flat if weights is None else flat * weights.reshape(1, 1, h * w)
    return weighted.sum(dim=2), torch.bmm(weighted, flat.transpose(1, 2))


def tiled_feature_stats(
    net: VGG19Features, image: torch.Tensor, layers: Sequence[str], tile_size: int
) -> dict[str, FeatureStats]:
    """:func:`~artstyle.losses.feature_stats` of an image's features at ``layers``,
    computed tile by tile (without gradients)."""
    height, width = image.shape[2:]
    sums: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for tile in tile_grid(height, width, tile_size, net.layers):
            features = net(as_rgb(tile.take(image)))
            for name in layers:
                part = _weighted_sums(tile.core_in_crop(features[name], stride(name)), None)
                sums[name] = [a + b for a, b in zip(sums[name], part, strict=True)] if name in sums else list(part)
    stats = {}
    for name, (first, second) in sums.items():
        h, w = feature_size(name, height, width)
        stats[name] = FeatureStats(first / (h * w), second / (h * w))
    return stats


class TiledObjective(WeightedTerms):
    """:class:`~artstyle.engine.objective.Objective` for images too large for one pass of the network.

    Same arguments and parts, plus ``tile_size`` (the longest crop side, at least
    :func:`~artstyle.features.layers.min_tile_size`) and ``margin`` (the context around
    each core; the default is exact, a smaller one is an approximation, for tests). The
    optimizer calls :meth:`loss_and_gradient`; calling the objective gives the loss and
    its parts without a gradient.
    """

    def __init__(
        self,
        net: VGG19Features,
        content_image: torch.Tensor,
        style_images: Sequence[torch.Tensor],
        *,
        tile_size: int,
        margin: int | None = None,
        **options: Unpack[ObjectiveOptions],
    ) -> None:
        super().__init__(net, style_images, options)
        self.size = (content_image.shape[2], content_image.shape[3])
        self.tiles = tile_grid(*self.size, tile_size, net.layers, margin)
        content_mask = options.get("content_mask")
        self.content_masks = {name: self._mask_at(content_mask, name) for name in self.content_layer_weights}
        self.content_targets = self._content_targets(content_image)
        for name in self.content_layer_weights:  # the mean square over all tiles' cores: the whole target's
            h, w = feature_size(name, *self.size)
            squares = sum(float(target[name].pow(2).sum()) for target in self.content_targets)
            self.content_scaled(name, squares / (self.content_targets[0][name].shape[1] * h * w))
        layers = list(self.style_layer_weights)
        stats = given_stats(options, style_images) or [
            tiled_feature_stats(net, style, layers, tile_size) for style in style_images
        ]
        self.regions: dict[str, list[_Region]] = {}
        for name in self.style_layer_weights:
            masks = None
            if self.style_masks is not None:
                masks = [cast(torch.Tensor, self._mask_at(m, name)) for m in self.style_masks]
            targets = style_targets([s[name] for s in stats], self.blend, masks)
            self.regions[name] = [self._region(t, m, w, name, self.style_loss) for t, m, w in targets]

    def _mask_at(self, mask: torch.Tensor | None, name: str) -> torch.Tensor | None:
        """A whole-image mask at layer ``name``'s resolution, as the untiled objective makes it."""
        if mask is None:
            return None
        return resize_mask(mask.to(torch.float32), *feature_size(name, *self.size))

    def _region(self, target: FeatureStats, mask: torch.Tensor | None, weight: float, name: str, kind: str) -> _Region:
        # A mask m weighs the Gram matrix's positions by m^2 and the mean and covariance's by m.
        weights = None if mask is None else mask.pow(2) if kind == "gram" else mask
        h, w = feature_size(name, *self.size)
        total = float(h * w) if weights is None else max(float(weights.sum()), 1e-8)
        with torch.no_grad():
            loss = StyleLoss(target, kind=kind)
        return _Region(loss, weights, total, self.style_scaled(weight, target))

    def _content_targets(self, content_image: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """The content image's features in each tile's core, per content layer."""
        targets = []
        with torch.no_grad():
            for tile in self.tiles:
                features = self.net(as_rgb(tile.take(content_image)))
                targets.append(
                    {
                        name: tile.core_in_crop(features[name], stride(name)).clone()
                        for name in self.content_layer_weights
                    }
                )
        return targets

    def _content(self, tile: Tile, index: int, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """This tile's share of the weighted content loss."""
        total = features[next(iter(features))].new_zeros(())
        for name, weight in self.content_layer_weights.items():
            step = stride(name)
            core = tile.core_in_crop(features[name], step)
            squared = (core - self.content_targets[index][name]).pow(2)
            mask = self.content_masks[name]
            if mask is not None:
                squared = squared * tile.core_in_image(mask, step)
            h, w = feature_size(name, *self.size)
            total = total + weight * squared.sum() / (core.shape[1] * h * w)
        return total

    def _first_pass(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, list[_Sums]]]:
        """Without gradients: the content loss, and the weighted sums of every style region."""
        content = image.new_zeros(())
        sums: dict[str, list[_Sums]] = {name: [] for name in self.regions}
        with torch.no_grad():
            for index, tile in enumerate(self.tiles):
                features = self.features(tile.take(image))
                content = content + self._content(tile, index, features)
                for name, regions in self.regions.items():
                    parts = [self._sums(tile, features, name, region) for region in regions]
                    sums[name] = parts if not sums[name] else [a + b for a, b in zip(sums[name], parts, strict=True)]
        return content, sums

    @staticmethod
    def _sums(tile: Tile, features: dict[str, torch.Tensor], name: str, region: _Region) -> _Sums:
        step = stride(name)
        weights = None if region.weights is None else tile.core_in_image(region.weights, step)
        return _Sums(*_weighted_sums(tile.core_in_crop(features[name], step), weights))

    def _style(self, sums: dict[str, list[_Sums]], gradient: bool) -> tuple[dict[str, torch.Tensor], list[_Upstream]]:
        """The weighted style loss of each layer from the whole image's statistics and, with
        ``gradient``, its gradient with respect to every region's sums (in region order)."""
        parts: dict[str, torch.Tensor] = {}
        leaves: list[torch.Tensor] = []
        with torch.set_grad_enabled(gradient):
            for name, weight in self.style_layer_weights.items():
                layer = sums[name][0].first.new_zeros(())
                for region, got in zip(self.regions[name], sums[name], strict=True):
                    mean = (got.first / region.total).requires_grad_(gradient)
                    moment = (got.second / region.total).requires_grad_(gradient)
                    leaves += [mean, moment]
                    if region.weight:
                        layer = layer + region.weight * region.loss.from_stats(FeatureStats(mean, moment))
                parts[f"style:{name}"] = weight * layer
            style = torch.stack(list(parts.values())).sum()
            if not gradient:
                return parts, []
            grads = torch.autograd.grad(style, leaves, allow_unused=True) if style.requires_grad else ()
        found: Sequence[torch.Tensor | None] = grads or [None] * len(leaves)
        totals = [region.total for name in self.style_layer_weights for region in self.regions[name]]
        upstream = [  # the statistics are the sums divided by the region's total weight
            _Upstream(None if mean is None else mean / total, None if moment is None else moment / total)
            for mean, moment, total in zip(found[::2], found[1::2], totals, strict=True)
        ]
        return {name: value.detach() for name, value in parts.items()}, upstream

    def _surrogate(self, tile: Tile, index: int, crop: torch.Tensor, upstream: Iterator[_Upstream]) -> torch.Tensor:
        """A scalar of the crop whose gradient is the tile's share of the objective's:
        its content loss plus the style sums weighted by the loss's gradient."""
        features = self.features(crop)
        surrogate = self._content(tile, index, features)
        for name, regions in self.regions.items():
            for region in regions:
                d = next(upstream)
                if d.first is None and d.second is None:
                    continue
                got = self._sums(tile, features, name, region)
                if d.first is not None:
                    surrogate = surrogate + (d.first * got.first).sum()
                if d.second is not None:
                    surrogate = surrogate + (d.second * got.second).sum()
        return surrogate

    def _second_pass(self, image: torch.Tensor, upstream: list[_Upstream]) -> torch.Tensor:
        """Every tile forward and backward: the gradient of the content and style losses."""
        grad = torch.zeros_like(image)
        for index, tile in enumerate(self.tiles):
            crop = tile.take(image.detach()).clone().requires_grad_(True)
            surrogate = self._surrogate(tile, index, crop, iter(upstream))
            surrogate.backward()  # type: ignore[no-untyped-call]
            tile.take(grad).add_(cast(torch.Tensor, crop.grad))
        return grad

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its weighted parts (no gradient)."""
        content, sums = self._first_pass(image.detach())
        style_parts, _ = self._style(sums, gradient=False)
        with torch.no_grad():
            image_parts = self.image_parts(image)
        return self.total_of(content, style_parts, image_parts)

    def loss_and_gradient(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its parts, with the gradient of the total left in ``image.grad``."""
        content, sums = self._first_pass(image.detach())
        style_parts, upstream = self._style(sums, gradient=True)
        grad = self._second_pass(image, upstream)
        # The terms on the image (total variation, extra terms) on the whole of it at once.
        whole = image.detach().requires_grad_(True)
        with torch.enable_grad():
            image_parts = self.image_parts(whole)
            summed = whole.new_zeros(())
            for value in image_parts.values():
                summed = summed + value
            summed.backward()  # type: ignore[no-untyped-call]
        grad.add_(cast(torch.Tensor, whole.grad))
        image.grad = grad
        return self.total_of(content, style_parts, {name: value.detach() for name, value in image_parts.items()})
