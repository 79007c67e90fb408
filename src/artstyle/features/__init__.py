"""The feature network: VGG19's layer table, its architecture and the sources of its weights.

The layer table (:mod:`~artstyle.features.layers`) needs no PyTorch, so that options
naming layers are checked without it; the network and its weights are imported at their
first use (see :mod:`artstyle._lazy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from artstyle import _lazy
from artstyle.features.layers import LAYER_NAMES, check_layer_names, min_image_side

if TYPE_CHECKING:
    from artstyle.features.vgg import VGG19Features
    from artstyle.features.weights import Preprocessing, VGGWeights, load_weights

_LAZY = {
    "Preprocessing": "artstyle.features.weights",
    "VGG19Features": "artstyle.features.vgg",
    "VGGWeights": "artstyle.features.weights",
    "load_weights": "artstyle.features.weights",
}


def __getattr__(name: str) -> Any:
    return _lazy.attribute(__name__, _LAZY, name)


def __dir__() -> list[str]:
    return _lazy.names(__name__, _LAZY)


__all__ = [
    "LAYER_NAMES",
    "Preprocessing",
    "VGG19Features",
    "VGGWeights",
    "check_layer_names",
    "load_weights",
    "min_image_side",
]
