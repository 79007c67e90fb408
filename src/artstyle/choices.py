"""The values the options with a fixed set of choices take, apart from the modules that act
on them (which import PyTorch): :mod:`artstyle.config` validates options, and the
command line builds its flags, without importing PyTorch. Also the form of a Ray
cluster's address (:func:`ray_host_port`), checked by the command line before Ray (and
PyTorch) is imported.
"""

from __future__ import annotations

from artstyle.errors import ConfigError

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


def ray_host_port(address: str | None) -> tuple[str, int] | None:
    """The host and port of a Ray cluster's ``HOST:PORT`` address; None for no address (then
    ``RAY_ADDRESS``), ``auto`` or a URL (``ray://...``), which Ray reads itself. ConfigError
    (of ``--ray``) for a malformed one."""
    if not address or address == "auto" or "://" in address:
        return None
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"expected HOST:PORT or auto, got {address!r}", option="ray")
    return host, int(port)
