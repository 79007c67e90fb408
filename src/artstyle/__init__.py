"""artstyle: neural style transfer (Gatys et al., CVPR 2016) that works offline out of the box.

``stylize(content, styles, **options)`` repaints a picture; :class:`Stylizer` keeps the
network loaded for many calls; ``artstyle`` on the command line does the same.
"""

from __future__ import annotations

from artstyle._version import __version__
from artstyle.api import Plan, Result, Stylizer, stylize
from artstyle.config import Config
from artstyle.engine import Progress, StyleTargets, Term
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
    OutOfMemoryError,
    ReproduceError,
    VideoReadError,
    VideoWriteError,
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
    "OutOfMemoryError",
    "Plan",
    "Progress",
    "ReproduceError",
    "Result",
    "StyleTargets",
    "Stylizer",
    "Term",
    "VideoReadError",
    "VideoWriteError",
    "WeightsError",
    "__version__",
    "stylize",
]
