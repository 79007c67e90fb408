"""A griffe extension for the API reference: the docstrings' Sphinx roles as Markdown code.

artstyle's docstrings cross-reference with reST roles (``:class:`~artstyle.api.Plan```,
``:meth:`stylize```), which Markdown would show as they are written. Each becomes inline
code: the last part of the name with ``~`` (``Plan``), the whole name without it.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj):`(~?)([^`]+)`")


def plain(text: str) -> str:
    """``text`` with every Sphinx role replaced by inline code."""
    return ROLE.sub(lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`", text)


class SphinxRoles(griffe.Extension):
    """Rewrite the roles of every docstring as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain(obj.docstring.value)
