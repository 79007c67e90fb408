"""A mkdocs hook: the CLI reference, rendered from artstyle's own argument parsers at build time.

A line ``<!-- cli: artstyle video -->`` in a page becomes that command's usage, description
and one table per group of flags (flag, default, help), read from the parser that
``artstyle video`` itself builds, so a flag's name, default and help text cannot drift from
the code. The build fails if a flag of the command's ``--help`` is missing from the page.
(Importing the parsers imports no PyTorch: the command line builds them without it.)
"""

from __future__ import annotations

import argparse
import html
import re
from collections.abc import Callable
from typing import Any

MARKER = re.compile(r"^<!-- cli: (artstyle(?: \w+)?) -->$", re.MULTILINE)
DEFAULT_IN_HELP = re.compile(r"\s*\(default: (.+)\)$", re.DOTALL)
FLAG = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")


def _parsers() -> dict[str, Callable[[], argparse.ArgumentParser]]:
    from artstyle.cli.batch import build_parser as batch
    from artstyle.cli.flags import build_parser as artstyle
    from artstyle.cli.reproduce import build_parser as reproduce
    from artstyle.cli.serve import build_serve_parser as serve
    from artstyle.cli.video import build_parser as video

    return {
        "artstyle": artstyle,
        "artstyle reproduce": reproduce,
        "artstyle serve": serve,
        "artstyle video": video,
        "artstyle batch": batch,
    }


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    """Code in a Markdown table cell (a backslash would show inside backticks, so HTML)."""
    return "<code>" + html.escape(" ".join(text.split())).replace("|", "&#124;") + "</code>" if text else ""


def _default(action: argparse.Action, help_text: str) -> tuple[str, str]:
    """The default shown for a flag, and its help text without it.

    The flags generated from Config leave their argparse default unset (None, so that presets
    apply) and state the default in the help text; the others carry it as the argparse default.
    """
    stated = DEFAULT_IN_HELP.search(help_text)
    if stated:
        return stated.group(1), help_text[: stated.start()]
    if isinstance(action, (argparse._StoreTrueAction, argparse._HelpAction, argparse._VersionAction)):
        return ("off" if isinstance(action, argparse._StoreTrueAction) else ""), help_text
    if action.default is None or action.default is argparse.SUPPRESS or action.required:
        return "", help_text
    return str(action.default), help_text


def _rows(parser: argparse.ArgumentParser, actions: list[argparse.Action]) -> list[str]:
    formatter = parser._get_formatter()
    rows = ["| flag | default | meaning |", "| --- | --- | --- |"]
    for action in actions:
        invocation = formatter._format_action_invocation(action)
        if action.required and action.option_strings:
            invocation += " (required)"
        default, help_text = _default(action, formatter._expand_help(action) if action.help else "")
        rows.append(f"| {_code(invocation)} | {_code(default)} | {_cell(help_text)} |")
    return rows


def render(command: str) -> str:
    """The Markdown reference of one command: usage, description, a table per group of flags."""
    parser = _parsers()[command]()
    usage = parser.format_usage().removeprefix("usage: ").strip()
    lines = ["```text", usage, "```", "", parser.description or "", ""]
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help is not argparse.SUPPRESS]
        if actions:
            title = "arguments" if group.title == "positional arguments" else group.title
            lines += [f"**{title[0].upper()}{title[1:]}**", "", *_rows(parser, actions), ""]
    text = "\n".join(lines)
    missing = [flag for flag in _flags(parser) if flag not in text]
    if missing:
        raise RuntimeError(f"the CLI reference of {command!r} lacks {', '.join(missing)}")
    return text


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    """Every flag named in the parser's ``--help`` text, as ``--help`` prints it."""
    return sorted(set(FLAG.findall(parser.format_help())))


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """mkdocs: replace every ``<!-- cli: COMMAND -->`` line with that command's reference."""
    return MARKER.sub(lambda match: render(match.group(1)), markdown)
