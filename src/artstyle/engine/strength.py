"""``strength``: a degree of stylisation that means the same on any pair.

The measure is the **style share**: the style loss of the picture divided by the style
loss of the run's **start**, both at the same scale, with the run's style layers and
their weights, each layer's squared Gram error relative to the painting's (the
objective's ``relative`` normalisation): the share of the start's style error that is
left. The start is the photo in the colours the run begins with (the photo recoloured
to the painting's palette by default; the photo itself with ``--init content`` or for
luminance-only transfer). 1 is as far from the painting's statistics as the start is; 0
is the painting's statistics matched exactly. Dividing by the photo's own loss instead
left pairs whose recolouring alone removes most of the error (the coffee cup with The
Shipwreck: the recoloured photo's share is 0.15) unable to reach a light strength.

A fixed style weight leaves very different shares on different pairs (Yeh et al. 2018:
the weight that looks right depends mostly on the painting), so ``strength`` asks for a
share instead, :func:`target_share`, and the style weight that reaches it is found
for each run as it goes (:class:`Calibration`): the coarsest scale's iterations run in
:data:`SEGMENTS` and the output size's in :data:`LAST_SEGMENTS`; after each part but a
scale's last the share is measured at that scale and the weight moved by
:meth:`Calibration.observe`, which models the share as a power of the weight
(:data:`ELASTICITY`, measured on the quality set). L-BFGS starts afresh after each move
(its curvature pairs were of the old objective). The output size has its own move
because the share of the same picture differs between sizes, by pair (The Udnie on
the coffee cup: 0.38 at 128 px, 0.22 at 256). Each move costs one forward pass of its
scale, and each calibrated scale one more, for the start's style loss at that size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from artstyle.engine.images import resize_image
from artstyle.engine.objective import Objective

#: The style share that strength 1 asks for; strength ``s`` asks for this to the power
#: ``s`` (strength 0: the start's own share, 1; every step of 0.25 divides it by the
#: same factor). The most the default schedule reaches on every pair of the quality set
#: (0.06: the astronaut with Udnie stopped at 0.071).
SHARE_AT_FULL = 0.08
#: -d log(share) / d log(style weight) near the default weight, measured at 256 px over
#: the quality set's pairs (benchmarks/strength.py): the power by which the weight moves.
ELASTICITY = 0.75
#: The most one move multiplies or divides the weight by.
LARGEST_MOVE = 4.0
#: How the coarsest scale's iterations are divided: the share is measured and the
#: weight moved at the end of each part but the last (fractions of the iterations).
SEGMENTS = (0.4, 0.3, 0.3)
#: The same for the output size (the last scale), when the run has more than one. Its
#: first move comes later than the coarsest scale's: early at the output size the share
#: is still falling from the upsampled start's, by as much as 7x on some pairs, faster
#: than :data:`STILL_FALLS` expects, and a move made then overshot (strength 1: ±27%
#: over the quality set with parts of 40, 30 and 30%, ±14% with these).
LAST_SEGMENTS = (0.6, 0.2, 0.2)
#: How much the share still falls, at a fixed weight, over what is left of a scale: by
#: ``1 + STILL_FALLS * left**2`` with ``left`` the fraction of its iterations left
#: (measured at the output size on two pairs at 256 px: 1.26-1.30 with 70% left, 1.08-1.10
#: with half left). A move aims at the target times this, so that the share that the
#: scale ends with, not the one measured on the way, is the target.
STILL_FALLS = 0.57
#: The most a move at the output size multiplies or divides the weight by (the coarsest
#: scale has set it already; this corrects the difference between the sizes).
LAST_LARGEST_MOVE = 2.0


def target_share(strength: float) -> float:
    """The style share that ``strength`` (0 to 1) asks for."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    return float(SHARE_AT_FULL**strength)


def segments(iterations: int, fractions: tuple[float, ...] = SEGMENTS) -> tuple[int, ...]:
    """A scale's ``iterations`` in parts (``fractions`` of them), each at least one
    iteration (fewer parts when there are too few iterations)."""
    bounds = sorted({round(iterations * sum(fractions[: i + 1])) for i in range(len(fractions))} - {0})
    bounds[-1] = iterations
    return tuple(end - start for start, end in zip([0, *bounds[:-1]], bounds, strict=True))


def style_share(objective: Objective, image: torch.Tensor, start: torch.Tensor | None = None) -> float:
    """The style share of ``image`` under ``objective`` (its scale, layers and their
    weights; the style weight cancels): its style loss over ``start``'s (resized to the
    image's size), or, without ``start``, over the objective's content image's."""
    return _share(objective.style_of(image), start_style(objective, image, start))


def _share(style: torch.Tensor, start: torch.Tensor) -> float:
    """A style loss over the start's (guarded against a start already at the painting's)."""
    return float(style / start.clamp_min(1e-30))


def start_style(objective: Objective, image: torch.Tensor, start: torch.Tensor | None) -> torch.Tensor:
    """The style loss that :func:`style_share` divides by, at ``image``'s size."""
    if start is None:
        return objective.photo_style
    return objective.style_of(resize_image(start.to(image.device, image.dtype), image.shape[2], image.shape[3]))


@dataclass
class Calibration:
    """The style weight's multiplier of one run, moved towards ``target`` (a style share).

    ``factor`` multiplies the configured style weight wherever an objective is built.
    ``start`` is the run's start at the output size (what the share divides by; None:
    the objective's content image).
    """

    target: float
    factor: float = 1.0
    start: torch.Tensor | None = None
    _start_styles: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict, init=False, repr=False)

    def share(self, objective: Objective, image: torch.Tensor) -> float:
        """The style share of ``image`` against this run's start (the start's loss kept per size)."""
        size = (image.shape[2], image.shape[3])
        if size not in self._start_styles:
            self._start_styles[size] = start_style(objective, image, self.start)
        return _share(objective.style_of(image), self._start_styles[size])

    def observe(self, share: float, *, left: float = 0.0, last: bool = False) -> None:
        """Move the factor to where the power model puts the target, given the share
        measured now, with the fraction ``left`` of the scale's iterations still to run
        (:data:`STILL_FALLS`). At the output size (``last``) the move is smaller."""
        if math.isfinite(share) and share > 0:
            target = self.target * (1.0 + STILL_FALLS * left**2)
            largest = LAST_LARGEST_MOVE if last else LARGEST_MOVE
            move = (share / target) ** (1.0 / ELASTICITY)
            self.factor *= min(max(move, 1.0 / largest), largest)
