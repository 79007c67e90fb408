"""Kept for one release: the atomic writing helpers now live in :mod:`artstyle.files.atomic`."""

from __future__ import annotations

from artstyle.files.atomic import StrPath, atomic_path, atomic_write_bytes, write_target

__all__ = ["StrPath", "atomic_path", "atomic_write_bytes", "write_target"]
