"""Public names of a package imported at their first use (PEP 562).

A package whose names need PyTorch (or Gradio) lists them with the module of each, and
its ``__getattr__`` and ``__dir__`` call :func:`attribute` and :func:`names`: importing
the package then imports none of them, so that ``artstyle --help`` answers at once.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any


def attribute(package: str, lazy: Mapping[str, str], name: str) -> Any:
    """``package.name``, imported now from the module ``lazy[name]`` and kept in the package
    (its next use is a plain lookup); AttributeError for a name ``lazy`` does not list."""
    module = lazy.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    setattr(sys.modules[package], name, value)
    return value


def names(package: str, lazy: Mapping[str, str]) -> list[str]:
    """What ``dir(package)`` lists: the attributes it has and the names it imports when used."""
    return sorted({*vars(sys.modules[package]), *lazy})
