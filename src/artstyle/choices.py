"""The values the options with a fixed set of choices take, apart from the modules that act
on them (which import PyTorch): :mod:`artstyle.config` validates options, and the
command line builds its flags, without importing PyTorch.
"""

from __future__ import annotations

#: How the photo's colours are kept (:mod:`artstyle.color`): not at all, by style transfer
#: in the luminance channel only, or by the style's colours matched to the photo's.
COLOR_MODES = ("none", "luminance", "histogram")
#: How the recoloured start takes the paintings' colours (:func:`artstyle.color.recolor`):
#: their mean and covariance, or their whole distribution.
PALETTES = ("moments", "distribution")
#: The network's arithmetic (:func:`artstyle.device.resolve_precision`).
PRECISIONS = ("auto", "fp32", "bf16")
#: The style loss (:mod:`artstyle.losses`): Gram matrices, or feature mean and covariance.
STYLE_LOSSES = ("gram", "meancov")
#: How the objective normalises the content and style losses (:mod:`artstyle.losses`).
NORMALIZATIONS = ("relative", "absolute")
