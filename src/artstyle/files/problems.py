"""How failures with files are told: one line naming the file and the problem.

Every failure caused by a bad file or a bad value is raised as one of the typed
errors of :mod:`artstyle.errors`; things handled on the user's behalf (an unusable
colour profile, say) are reported with :class:`~artstyle.errors.ArtstyleWarning`.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import TypeAlias

from artstyle.errors import ArtstyleWarning, ConfigError, ImageReadError, ImageWriteError

StrPath: TypeAlias = str | os.PathLike[str]

# What Pillow's decoders raise on damaged data. They are not consistent, so the
# list is wide; anything here means "this file is broken", not "artstyle is broken".
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    struct.error,
    zlib.error,
)


def warn(message: str, stacklevel: int = 4) -> None:
    """Issue an :class:`ArtstyleWarning` (by default pointing at the caller of the public function)."""
    warnings.warn(message, ArtstyleWarning, stacklevel=stacklevel)


def read_error(path: str, problem: str) -> ImageReadError:
    return ImageReadError(f"cannot read image '{path}': {problem}")


def write_error(path: str, problem: str) -> ImageWriteError:
    return ImageWriteError(f"cannot write image '{path}': {problem}")


def os_problem(exc: OSError) -> str:
    """What went wrong when a file could not be opened or read, in a few words."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not an image"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


def write_problem(exc: BaseException) -> str:
    """What went wrong when a file could not be written, in a few words."""
    if isinstance(exc, FileExistsError):
        return "the file already exists (not overwritten: --no-clobber)"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


def directory_problem(parent: Path) -> str | None:
    """What stops a new file being written into ``parent``, in a few words; None if nothing."""
    if not parent.exists():
        return f"directory '{parent}' does not exist"
    if not parent.is_dir():
        return f"'{parent}' is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"directory '{parent}' is not writable"
    return None


def path_text(path: object, what: str) -> str:
    """``path`` (a ``str`` or a path-like object naming a ``str`` path) as a ``str``, else ConfigError."""
    if isinstance(path, str):
        return path
    if isinstance(path, os.PathLike):
        result = os.fspath(path)
        if isinstance(result, str):
            return result
    raise ConfigError(f"{what}: expected a file path, got {type(path).__name__}")
