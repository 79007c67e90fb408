"""artstyle: neural style transfer (Gatys et al., CVPR 2016) that works offline out of the box.

``stylize(content, styles, **options)`` repaints a picture; :class:`Stylizer` keeps the
network loaded for many calls; ``artstyle`` on the command line does the same.

The names that need PyTorch (the API's and the engine's) are imported at their first
use (PEP 562), so that ``import artstyle`` and ``artstyle --help`` stay quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from artstyle import _lazy
from artstyle._version import __version__
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

if TYPE_CHECKING:
    from artstyle.api import Plan, Result, Stylizer, stylize
    from artstyle.config import Config
    from artstyle.engine import Progress, StyleTargets, Term

#: The public names imported at their first use, and the module of each.
_LAZY = {
    "Config": "artstyle.config",
    "Plan": "artstyle.api",
    "Progress": "artstyle.engine",
    "Result": "artstyle.api",
    "StyleTargets": "artstyle.engine",
    "Stylizer": "artstyle.api",
    "Term": "artstyle.engine",
    "stylize": "artstyle.api",
}


def __getattr__(name: str) -> Any:
    return _lazy.attribute(__name__, _LAZY, name)


def __dir__() -> list[str]:
    return _lazy.names(__name__, _LAZY)


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
