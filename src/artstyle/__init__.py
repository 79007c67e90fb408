"""artstyle: neural style transfer (Gatys et al., CVPR 2016) that works offline out of the box.

``stylize(content, styles, **options)`` repaints a picture; :class:`Stylizer` keeps the
network loaded for many calls; ``artstyle`` on the command line does the same.
"""

from __future__ import annotations

__version__ = "0.1.0"

from artstyle.api import Result, Stylizer, stylize
from artstyle.config import Config
from artstyle.engine import Progress
from artstyle.errors import (
    ArtstyleError,
    ArtstyleWarning,
    CheckpointError,
    ConfigError,
    DeviceError,
    DivergedError,
    ImageReadError,
    ImageTooSmallError,
    ImageWriteError,
    LayerNameError,
    ReproduceError,
    WeightsError,
)

__all__ = [
    "ArtstyleError",
    "ArtstyleWarning",
    "CheckpointError",
    "Config",
    "ConfigError",
    "DeviceError",
    "DivergedError",
    "ImageReadError",
    "ImageTooSmallError",
    "ImageWriteError",
    "LayerNameError",
    "Progress",
    "ReproduceError",
    "Result",
    "Stylizer",
    "WeightsError",
    "__version__",
    "stylize",
]
