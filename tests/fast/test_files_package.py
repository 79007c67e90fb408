"""The layout of artstyle.files: what it may import, and the old module that re-exports it."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

import artstyle.files
from artstyle import imageio

PACKAGE = Path(artstyle.files.__file__).parent
# What the package may import: the standard library, these, and nothing of the engine.
ALLOWED_THIRD_PARTY = {"numpy", "torch", "PIL", "tifffile", "av", "cv2"}  # av, cv2: video files (the [video] extra)
ALLOWED_ARTSTYLE = {"artstyle.errors", "artstyle.files"}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_the_package_imports_nothing_of_the_engine(path: Path) -> None:
    for name in imported_modules(path):
        top = name.split(".")[0]
        if top == "artstyle":
            assert any(name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED_ARTSTYLE), name
        else:
            assert top in ALLOWED_THIRD_PARTY or top in sys.stdlib_module_names or top == "__future__", name


def test_imageio_re_exports_every_public_name_from_its_new_module() -> None:
    constants = {
        "BIT_DEPTHS": "write",
        "OUTPUT_FORMATS": "write",
        "DEFAULT_MAX_PIXELS": "limits",
        "METADATA_KEY": "metadata",
    }
    assert len(imageio.__all__) == 21
    for name in imageio.__all__:
        value = getattr(imageio, name)
        module = f"artstyle.files.{constants[name]}" if name in constants else value.__module__
        assert module.startswith("artstyle.files."), name
        assert getattr(importlib.import_module(module), name) is value, name
