"""The feature network: VGG19's layer table, its architecture and the sources of its weights."""

from artstyle.features.layers import LAYER_NAMES, check_layer_names, min_image_side
from artstyle.features.vgg import VGG19Features
from artstyle.features.weights import Preprocessing, VGGWeights, load_weights

__all__ = [
    "LAYER_NAMES",
    "Preprocessing",
    "VGG19Features",
    "VGGWeights",
    "check_layer_names",
    "load_weights",
    "min_image_side",
]
