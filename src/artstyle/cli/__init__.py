"""The command line: ``artstyle`` (:mod:`~artstyle.cli.main`), its flags
(:mod:`~artstyle.cli.flags`) and ``artstyle reproduce`` (:mod:`~artstyle.cli.reproduce`)."""

from artstyle.cli.flags import build_parser
from artstyle.cli.main import main

__all__ = ["build_parser", "main"]
