"""Style targets as a value: the style images' feature statistics, computed once for many runs.

A run's style loss compares the generated image's feature statistics with the style
images' (their Gram matrices, or means and covariances: both come from the mean and
second moment, :class:`~artstyle.losses.FeatureStats`). Those depend only on the style
images, the size each is seen at, the network and how it is evaluated (whole, or tile by
tile) — not on the photo, the blend weights or the masks — so a batch of photos with the
same paintings computes them once per size and passes them in (see
:meth:`artstyle.api.Stylizer.prepare`).

They cannot be shared where the style images are changed for each photo: with
``preserve_color="histogram"`` (the paintings recoloured to the photo's colours) and
``preserve_color="luminance"`` with ``match_luminance`` (their luminance matched to the
photo's).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from artstyle.engine.images import as_rgb
from artstyle.engine.objective import StyleStats
from artstyle.engine.tiled import tiled_feature_stats
from artstyle.features.vgg import VGG19Features
from artstyle.losses import feature_stats


def content_dependent(preserve_color: str, match_luminance: bool) -> bool:
    """Whether the style targets depend on the content image (and so cannot be shared):
    the styles recoloured to the content (``histogram``), or their luminance matched to it."""
    return preserve_color == "histogram" or (preserve_color == "luminance" and match_luminance)


#: What one entry is for: the (height, width) of each style image, and the tile size (0: whole).
TargetKey = tuple[tuple[tuple[int, int], ...], int]


def styles_digest(images: Sequence[bytes], network: str) -> str:
    """A digest of the style images (their encoded size and pixels, one ``bytes`` each) and
    of the network (``network`` names its weights, pooling and layers): what a
    :class:`StyleTargets` is for."""
    digest = hashlib.sha256(network.encode())
    for image in images:
        digest.update(len(image).to_bytes(8, "little"))
        digest.update(image)
    return digest.hexdigest()


@dataclass(frozen=True)
class StyleTargets:
    """The statistics of each style image at every style layer, for each size they are
    seen at (one entry per scale of a run; scales of the same size share one).

    ``styles`` is the :func:`styles_digest` of the style images as loaded and of the
    network: targets are only used for those. ``entries`` maps a :data:`TargetKey` to one
    :data:`~artstyle.engine.objective.StyleStats` per style image. A value: adding an
    entry (:meth:`with_entry`) makes a new one.
    """

    styles: str
    layers: tuple[str, ...]
    entries: Mapping[TargetKey, tuple[StyleStats, ...]] = field(default_factory=dict)

    def get(self, key: TargetKey) -> tuple[StyleStats, ...] | None:
        return self.entries.get(key)

    def with_entry(self, key: TargetKey, stats: tuple[StyleStats, ...]) -> StyleTargets:
        return StyleTargets(self.styles, self.layers, {**self.entries, key: stats})

    def __len__(self) -> int:
        return len(self.entries)

    def to(self, device: torch.device) -> StyleTargets:
        """The same targets with every tensor on ``device`` (the CPU, to send them
        elsewhere); these targets themselves when they are all there already."""
        tensors = [t for per_style in self.entries.values() for stats in per_style for s in stats.values() for t in s]
        if all(_on(tensor, device) for tensor in tensors):
            return self
        entries = {
            key: tuple({name: stat.to(device) for name, stat in stats.items()} for stats in per_style)
            for key, per_style in self.entries.items()
        }
        return StyleTargets(self.styles, self.layers, entries)


def _on(tensor: torch.Tensor, device: torch.device) -> bool:
    """Whether ``tensor`` is on ``device`` (``cuda`` without an index: the current one)."""
    same_type = tensor.device.type == device.type
    return same_type and (device.index is None or tensor.device.index == device.index)


def target_key(style_images: Sequence[torch.Tensor], tile_size: int) -> TargetKey:
    """The key of the entry for these (resized) style images, evaluated whole or in tiles."""
    return tuple((int(image.shape[2]), int(image.shape[3])) for image in style_images), tile_size


def compute_stats(net: VGG19Features, image: torch.Tensor, layers: Sequence[str], tile_size: int) -> StyleStats:
    """The statistics of one style image at ``layers``: from one pass of the network, or
    tile by tile when ``tile_size`` is set (as the tiled objective sees the scale)."""
    if tile_size:
        return tiled_feature_stats(net, image, layers, tile_size)
    with torch.no_grad():
        features = net(as_rgb(image))
        return {name: feature_stats(features[name]) for name in layers}
