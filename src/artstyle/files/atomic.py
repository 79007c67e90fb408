"""Atomic file writing: a complete new file or the old one, never half of either.

Used for every file artstyle writes (images, sidecars, the weights cache): the data
goes to a hidden temporary file in the target's directory, is flushed to disk, and
only then moved over the target with :func:`os.replace`, which is atomic. On any
error the temporary file is removed and the target is untouched. These helpers raise
plain ``OSError``; each caller wraps it in the typed error of its own domain.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TypeAlias

StrPath: TypeAlias = str | os.PathLike[str]


def write_target(path: StrPath) -> Path:
    """The file that is really replaced: a symlink is followed to the file it names."""
    target = Path(os.fspath(path))
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    return target


def create_temp(target: Path) -> Path:
    """Create an empty, exclusive temporary file next to ``target``.

    Unlike ``tempfile.mkstemp`` (mode 0600), the file is created with mode 0666
    filtered by the umask, so the final file gets the usual permissions.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
        try:
            fd = os.open(temp, flags, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return temp
    raise FileExistsError(f"cannot create a temporary file next to '{target}'")


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable; best effort (not possible on every platform)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _publish_new(temp: Path, target: Path) -> None:
    """Move ``temp`` to ``target`` only if ``target`` does not exist (FileExistsError if it does).

    A hard link is atomic and fails on an existing name, so a file that appears
    while the content is being written is never clobbered. Where hard links are
    not possible (some file systems) the check and the rename are two steps.
    """
    try:
        os.link(temp, target)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "file exists", str(target)) from None
        os.replace(temp, target)
        return
    _remove_quietly(temp)


@contextlib.contextmanager
def atomic_path(path: StrPath, *, overwrite: bool = True) -> Iterator[Path]:
    """Context manager for writing ``path`` atomically.

    Yields the path of an empty temporary file in the same directory (named
    ``.<name>.<random>.partial``). Write the complete content to it inside the
    ``with`` block; on a normal exit the file is fsynced and moved onto ``path``
    with ``os.replace``. If the block raises (or the move fails) the temporary
    file is removed and ``path`` is left exactly as it was. An existing target
    keeps its permission bits; a symlink target is followed, not replaced.
    With ``overwrite=False`` an existing ``path`` (even one created while the
    block ran) is never replaced: ``FileExistsError`` is raised instead.

    Raises ``OSError`` for failures of the mechanism itself (callers wrap it in
    their own typed error); exceptions from the block propagate unchanged.
    """
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "file exists", os.fspath(path))
    target = write_target(path)
    temp = create_temp(target)
    try:
        yield temp
        _fsync_path(temp)
        if overwrite:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(temp, stat.S_IMODE(os.stat(target).st_mode))
            os.replace(temp, target)
        else:
            _publish_new(temp, target)
    except BaseException:
        _remove_quietly(temp)
        raise
    _fsync_directory(target.parent)


def atomic_write_bytes(path: StrPath, data: bytes, *, overwrite: bool = True) -> None:
    """Atomically replace ``path`` with ``data`` (see :func:`atomic_path`).

    Raises ``OSError`` on failure (``FileExistsError`` when ``overwrite`` is False
    and ``path`` exists), leaving ``path`` untouched.
    """
    with atomic_path(path, overwrite=overwrite) as temp, open(temp, "wb") as handle:
        handle.write(data)
