"""``artstyle reproduce ORIGINAL [-o NEW]``: make a picture again from the parameters embedded in it.

Every image artstyle writes records its options, seed, output format options and the
sha256 of its input files (in a PNG text chunk, or in ``ORIGINAL.json`` beside other
formats). This command finds the input files (by their recorded names beside ORIGINAL
or in the current directory, or as given by ``--content``, ``--style`` and ``--init``),
runs the job :func:`artstyle.runs.reproduce.reproduction` makes, writes NEW (by default
``ORIGINAL-STEM.reproduced.EXT`` beside the original; the original itself only with
``--overwrite``) and says whether the new file is identical to the original. The flags
are parsed and checked before the run frame, and PyTorch, are imported.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from artstyle.cli.flags import EXIT_FAILED, EXIT_OK, Parser, add_output_options, parse_checked, speaks_flags
from artstyle.files.options import check_max_pixels

if TYPE_CHECKING:
    from artstyle.runs import Signals


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="artstyle reproduce",
        description="Run again the style transfer that made ORIGINAL, from the parameters embedded in it, "
        "after checking the input files against their recorded sha256.",
    )
    parser.add_argument("original", metavar="ORIGINAL", help="an image written by artstyle")
    parser.add_argument(
        "-o", "--output", help="the new image (default: ORIGINAL-STEM.reproduced.EXT beside the original)"
    )
    parser.add_argument("--content", metavar="FILE", help="the content image (default: found by its recorded name)")
    parser.add_argument(
        "--style", action="append", metavar="FILE", help="a style image; once per style image, in the recorded order"
    )
    parser.add_argument("--init", metavar="FILE", help="the --init image, for a run that started from one")
    parser.add_argument(
        "--style-masks", nargs="+", metavar="FILE", help="the style masks, in order (default: found by their names)"
    )
    parser.add_argument("--content-mask", metavar="FILE", help="the content mask (default: found by its name)")
    parser.add_argument("--overwrite", action="store_true", help="allow --output to be the original itself")
    parser.add_argument("--check", action="store_true", help="exit with 1 when the new image differs from the original")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    add_output_options(parser)
    return parser


@speaks_flags
def main(argv: Sequence[str]) -> int:
    """``artstyle reproduce ...``; returns the exit code."""
    parsed = parse_checked(build_parser(), argv, lambda given: check_max_pixels(given.max_pixels))
    if isinstance(parsed, int):
        return parsed
    args, _ = parsed
    from artstyle.cli.report import guarded  # PyTorch from here on

    return guarded(lambda signals: _reproduce(args, signals), args.max_pixels)


def _reproduce(args: argparse.Namespace, signals: Signals) -> int:
    from artstyle.cli.report import run_job
    from artstyle.runs.reproduce import Given, compare, reproduction

    original = str(args.original)
    given = Given(args.content, args.style, args.init, args.style_masks, args.content_mask)
    job = reproduction(original, args.output, given, overwrite=args.overwrite)
    code = run_job(job, signals, args.quiet)
    if code != EXIT_OK:
        return code
    same, verdict = compare(original, job.output)
    if not args.quiet:
        print(f"artstyle: {job.output} {verdict}", file=sys.stderr)
    return EXIT_FAILED if args.check and not same else EXIT_OK
