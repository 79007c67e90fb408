"""Typed errors raised by the artstyle library.

The library never prints or exits: it raises one of these, and the front ends
(the CLI, the web page) turn them into a one-line message and an exit code.
Every message is a complete sentence that names the file or option at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class ArtstyleError(Exception):
    """Base class of every error artstyle raises on purpose."""


def flag(option: str) -> str:
    """The command-line flag of an option: ``tv_weight`` -> ``--tv-weight``.

    Options are named by their :class:`~artstyle.config.Config` field everywhere in the
    library; this is the one place that spells them as flags (the parser's, and the
    messages' under :data:`FLAGS`).
    """
    return "--" + option.replace("_", "-")


@dataclass(frozen=True)
class Spelling:
    """How messages name options: ``name(option)``, and a value given to one as the
    interface would write it (``assign`` between the two, ``quote`` for text values)."""

    name: Callable[[str], str]
    assign: str = " "
    quote: bool = False


#: The Python API's words: ``iterations=0``, ``device='cpu'``. The library's own default.
KEYWORDS = Spelling(lambda option: option, "=", quote=True)
#: The command line's: ``--iterations 0``, ``--device cpu``.
FLAGS = Spelling(flag)

_SPELLING: ContextVar[Spelling] = ContextVar("artstyle_spelling", default=KEYWORDS)


@contextmanager
def spelled(spelling: Spelling) -> Iterator[None]:
    """Inside, messages name options as ``spelling`` does: each front end says its own
    words (the CLI its flags, the web page its labels) for errors raised in its runs."""
    token = _SPELLING.set(spelling)
    try:
        yield
    finally:
        _SPELLING.reset(token)


def current_spelling() -> Spelling:
    """The spelling in use here (to carry it into another process: a cluster's task)."""
    return _SPELLING.get()


def option_name(option: str) -> str:
    """An option as the interface in use names it (see :func:`spelled`): ``tv_weight``
    from Python, ``--tv-weight`` on the command line, "Smoothness" on the web page."""
    return _SPELLING.get().name(option)


def option_value(option: str, value: object) -> str:
    """An option given a value, as the interface in use writes it: ``optimizer='adam'``,
    ``--optimizer adam``. A placeholder in capitals (``N``) is left unquoted."""
    spelling = _SPELLING.get()
    quoted = spelling.quote and isinstance(value, str) and not value.isupper()
    return (
        f"{spelling.name(option)}{spelling.assign}{value!r}"
        if quoted
        else f"{spelling.name(option)}{spelling.assign}{value}"
    )


class ConfigError(ArtstyleError, ValueError):
    """An option has an invalid value (raised before any work is done).

    ``option`` is the :class:`~artstyle.config.Config` field (or front-end option) at
    fault, None when the problem is not one option's; ``part`` the part of its value
    (a layer of ``style_layers``), if any; ``problem`` says what is wrong with it. The
    message is ``option: problem``, the option named in the words of the interface in
    use (:func:`option_name`: ``tv_weight`` from Python, ``--tv-weight`` on the command
    line; ``message`` replaces it where a sentence reads better); a front end with other
    labels (the web page) can also build its own from ``option`` and ``problem``.
    """

    def __init__(
        self, problem: str, *, option: str | None = None, part: str | None = None, message: str | None = None
    ) -> None:
        where = f"{option_name(option)}{f' {part}' if part else ''}: " if option else ""
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
        super().__init__(f"{option_name(option)}: {problem}" if option else problem)
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
