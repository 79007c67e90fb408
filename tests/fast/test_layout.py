"""The shape of the code: functions short enough to read, every module saying what it is for.

The import layers and the absence of import circles are import-linter's contracts
(``[tool.importlinter]`` in pyproject.toml, run by ``make lint``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import artstyle

SOURCES = sorted(Path(artstyle.__file__).parent.rglob("*.py"))
LONGEST_BODY = 50  # lines of a function's body, its docstring not counted


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        if len(body) == 1:
            return 0
        first = body[1]
    return (node.end_lineno or node.lineno) - first.lineno + 1


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_no_function_body_is_longer_than_fifty_lines(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    long = [
        f"{node.name} ({body_lines(node)} lines)"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and body_lines(node) > LONGEST_BODY
    ]
    assert long == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_module_says_what_it_is_for(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring, f"{path.name} has no module docstring"


def test_the_body_count_leaves_the_docstring_out() -> None:
    (function,) = ast.parse('def f():\n    """Doc."""\n    a = 1\n    return a\n').body
    assert isinstance(function, ast.FunctionDef) and body_lines(function) == 2
