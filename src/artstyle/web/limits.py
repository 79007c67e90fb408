"""What one job of the web page may ask of the server (:class:`Limits`), apart from the
page and its jobs (:mod:`artstyle.web.studio`, which imports PyTorch): ``artstyle serve``
shows the defaults in its help, and checks its flags, without importing it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from artstyle.errors import ConfigError

MEGABYTE = 2**20  # as Gradio counts them


@dataclass(frozen=True)
class Limits:
    """What one job may ask of the server."""

    max_upload_bytes: int = 25 * MEGABYTE
    max_pixels: int = 50_000_000
    max_size: int = 1024
    max_iterations: int = 1000
    max_styles: int = 4

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{item.name}: expected a whole number of at least 1, got {value!r}")
