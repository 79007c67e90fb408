"""Typed errors raised by the artstyle library.

The library never prints or exits: it raises one of these, and the front ends
(the CLI, the web page) turn them into a one-line message and an exit code.
Every message is a complete sentence that names the file or option at fault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class ArtstyleError(Exception):
    """Base class of every error artstyle raises on purpose."""


def flag(option: str) -> str:
    """The command-line flag of an option: ``tv_weight`` -> ``--tv-weight``.

    Options are named by their :class:`~artstyle.config.Config` field everywhere in the
    library; this is the one place that spells them as flags (in messages).
    """
    return "--" + option.replace("_", "-")


class ConfigError(ArtstyleError, ValueError):
    """An option has an invalid value (raised before any work is done).

    ``option`` is the :class:`~artstyle.config.Config` field (or front-end option) at
    fault, None when the problem is not one option's; ``part`` the part of its value
    (a layer of ``style_layers``), if any; ``problem`` says what is wrong with it. The
    message is ``--option-flag: problem`` (the CLI's spelling; ``message`` replaces it
    where a sentence reads better); a front end with other labels (the web page) builds
    its own from ``option`` and ``problem``.
    """

    def __init__(
        self, problem: str, *, option: str | None = None, part: str | None = None, message: str | None = None
    ) -> None:
        where = f"{flag(option)}{f' {part}' if part else ''}: " if option else ""
        super().__init__(message if message is not None else where + problem)
        self.option, self.part, self.problem = option, part, problem


class LayerNameError(ConfigError):
    """A VGG19 layer name that does not exist; the message suggests the closest one."""


class ImageReadError(ArtstyleError):
    """An input image is missing, unreadable, corrupt or not an image."""


class ImageWriteError(ArtstyleError):
    """An output image cannot be written (bad extension, bad directory, disk error)."""


class VideoReadError(ArtstyleError):
    """An input video is missing, unreadable, corrupt, not a video, or has no video stream or frames."""


class VideoWriteError(ArtstyleError):
    """An output video (or frame directory) cannot be written: extension, directory, encoder, disk."""


class ImageTooSmallError(ArtstyleError):
    """An image is too small for the requested network layers."""


class WeightsError(ArtstyleError):
    """Network weights are missing, corrupt, of an unknown format or cannot be fetched."""


class DeviceError(ArtstyleError):
    """The requested compute device is not available."""


class ReproduceError(ArtstyleError):
    """An image cannot be reproduced: no or unusable metadata, or its input files are missing or changed."""


class CheckpointError(ArtstyleError):
    """A checkpoint to resume from is missing, unreadable, or from other inputs or options;
    or a checkpoint cannot be written. ``option`` names the option concerned, if any."""

    def __init__(self, problem: str, *, option: str | None = None) -> None:
        super().__init__(f"{flag(option)}: {problem}" if option else problem)
        self.option = option


class DivergedError(ArtstyleError):
    """The optimisation produced a non-finite loss, gradient or image (NaN or infinity).

    The run stopped at iteration ``step`` (counted over all scales, of ``iterations``)
    without taking it. ``term`` names what diverged: a part of the objective
    (``content``, ``style:<layer>``, ``style``, ``tv``, ``total``), ``gradient`` or
    ``step`` (the optimizer's update). ``image`` is the last finite image, the one
    iteration ``step - 1`` produced, as (1, 3, H, W) RGB in [0, 1] at the size of its
    scale; None when no iteration had finished.
    """

    def __init__(
        self, message: str, *, step: int, iterations: int, term: str, image: torch.Tensor | None = None
    ) -> None:
        super().__init__(message)
        self.step, self.iterations, self.term, self.image = step, iterations, term, image


class OutOfMemoryError(ArtstyleError):
    """The device (or the host) ran out of memory; the message says what would need less."""


class ArtstyleWarning(UserWarning):
    """Something was handled but the user should know (an ignored colour profile, an upscaled tiny image).

    Issued with :func:`warnings.warn`; the CLI prints each as one ``artstyle: warning:`` line.
    """
