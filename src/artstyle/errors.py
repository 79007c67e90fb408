"""Typed errors raised by the artstyle library.

The library never prints or exits: it raises one of these, and the front ends
(the CLI, the web page) turn them into a one-line message and an exit code.
Every message is a complete sentence that names the file or option at fault.
"""

from __future__ import annotations


class ArtstyleError(Exception):
    """Base class of every error artstyle raises on purpose."""


class ConfigError(ArtstyleError, ValueError):
    """An option has an invalid value (raised before any work is done)."""


class LayerNameError(ConfigError):
    """A VGG19 layer name that does not exist; the message suggests the closest one."""


class ImageReadError(ArtstyleError):
    """An input image is missing, unreadable, corrupt or not an image."""


class ImageWriteError(ArtstyleError):
    """An output image cannot be written (bad extension, bad directory, disk error)."""


class ImageTooSmallError(ArtstyleError):
    """An image is too small for the requested network layers."""


class WeightsError(ArtstyleError):
    """Network weights are missing, corrupt, of an unknown format or cannot be fetched."""


class DeviceError(ArtstyleError):
    """The requested compute device is not available."""


class ReproduceError(ArtstyleError):
    """An image cannot be reproduced: no or unusable metadata, or its input files are missing or changed."""


class ArtstyleWarning(UserWarning):
    """Something was handled but the user should know (an ignored colour profile, an upscaled tiny image).

    Issued with :func:`warnings.warn`; the CLI prints each as one ``artstyle: warning:`` line.
    """
