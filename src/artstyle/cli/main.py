"""The ``artstyle`` command: ``artstyle CONTENT STYLE [STYLE ...] -o OUTPUT [options]``.

The only place (with :mod:`~artstyle.cli.report`) that prints, shows progress and chooses
exit codes: each job runs in the run frame (:func:`artstyle.runs.execute`), and its
outcome becomes a line and an exit code (see :mod:`artstyle.cli.report`). The flags are
parsed and checked first, before PyTorch is imported (every command's): ``--help``,
``--version`` and a bad option are answered at once, and the run's modules imported after.
``--checkpoint-every N`` keeps the run's state in ``OUTPUT.ckpt`` and ``--resume``
continues from it (see :mod:`artstyle.runs.checkpoint`). ``artstyle reproduce OUTPUT``
re-runs a picture from the parameters embedded in it (:mod:`artstyle.cli.reproduce`);
``artstyle serve`` starts the web page (:mod:`artstyle.cli.serve`); ``artstyle video``
stylizes a clip (:mod:`artstyle.cli.video`); ``artstyle batch`` many pictures
(:mod:`artstyle.cli.batch`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from artstyle.cli.flags import build_parser, config_from_args, job_from_args, parse_checked, speaks_flags
from artstyle.config import Config, check_style_inputs
from artstyle.files.options import OUTPUT_FORMATS, check_bit_depth, check_jpeg_quality, check_max_pixels


@speaks_flags
def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to ``sys.exit``)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["reproduce"]:
        from artstyle.cli.reproduce import main as reproduce

        return reproduce(arguments[1:])
    if arguments[:1] == ["batch"]:
        from artstyle.cli.batch import main as batch

        return batch(arguments[1:])
    if arguments[:1] == ["video"]:
        from artstyle.cli.video import main as video

        return video(arguments[1:])
    if arguments[:1] == ["serve"]:
        from artstyle.cli.serve import serve_main

        return serve_main(arguments[1:])
    parsed = parse_checked(build_parser(), arguments, checked_config)
    if isinstance(parsed, int):
        return parsed
    args, config = parsed
    from artstyle.cli.report import guarded, run_job  # PyTorch from here on

    return guarded(lambda signals: run_job(job_from_args(args, config), signals, args.quiet), args.max_pixels)


def checked_config(args: argparse.Namespace) -> Config:
    """The run's Config (:func:`~artstyle.cli.flags.config_from_args`), once every flag is
    checked that needs no file: the options, their counts against the style images', the
    output's (ConfigError for a bad one)."""
    check_max_pixels(args.max_pixels)
    config = config_from_args(args)
    check_style_inputs(config, len(args.styles), len(args.style_masks) if args.style_masks else None)
    check_bit_depth(args.bit_depth, OUTPUT_FORMATS.get(os.path.splitext(args.output)[1].lower()))
    check_jpeg_quality(args.jpeg_quality)
    return config


if __name__ == "__main__":
    sys.exit(main())
