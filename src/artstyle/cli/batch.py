"""``artstyle batch CONTENT... --styles STYLE... -o OUTDIR``: every photo with every painting.

The pictures come from the grid of CONTENT (files, directories, globs) and ``--styles``,
and from ``--manifest`` (:mod:`artstyle.batch.jobs`); :func:`artstyle.batch.run.run_batch`
makes them, in this process or on a Ray cluster (``--ray``, or ``RAY_ADDRESS``). This
module parses and checks the flags and reads the grid and the manifest (without
importing PyTorch: a bad option, a folder without images or a bad manifest is answered at
once); :mod:`~artstyle.cli.batch_run` shows a progress bar over the pictures and ends with
one summary line (and one line per failed picture). Exit codes: 0 when every picture is
made, 1 when any failed, 2 for a bad command line, 130 / 143 when stopped by a signal.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from artstyle.batch.jobs import Batch, Item, expand, grid, read_manifest
from artstyle.cli.flags import (
    Parser,
    add_config_options,
    add_output_options,
    add_ray_options,
    check_ray_options,
    given_config,
    parse_checked,
    speaks_flags,
)
from artstyle.config import Config
from artstyle.errors import ConfigError
from artstyle.files.options import OUTPUT_FORMATS, check_bit_depth, check_jpeg_quality, check_max_pixels


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="artstyle batch",
        description="Stylize every content image with every style image (or the pictures a manifest lists), "
        "skipping pictures already made; in this process, or as tasks on a Ray cluster.",
    )
    parser.add_argument("content", nargs="*", metavar="CONTENT", help="content images: files, directories or globs")
    parser.add_argument("--styles", nargs="+", default=[], metavar="STYLE", help="the style images of the grid")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="the directory of the pictures")
    parser.add_argument("--manifest", metavar="FILE", help="JSON Lines or CSV: content, styles, ... per picture")
    parser.add_argument(
        "--format", default="png", choices=sorted(ext.lstrip(".") for ext in OUTPUT_FORMATS), help="(default: png)"
    )
    parser.add_argument("--force", action="store_true", help="make again the pictures that are already made")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar (the summary line stays)")
    cluster = parser.add_argument_group("Ray cluster")
    add_ray_options(cluster, "pictures")
    files = parser.add_argument_group("output files")
    files.add_argument("--bit-depth", type=int, default=8, metavar="8|16", help="(default: 8)")
    files.add_argument("--jpeg-quality", type=int, default=95, metavar="Q", help="(default: 95)")
    add_output_options(files)
    add_config_options(parser.add_argument_group("style transfer options (for every picture)"))
    return parser


@speaks_flags
def main(argv: Sequence[str]) -> int:
    """``artstyle batch ...``; returns the exit code."""
    parsed = parse_checked(build_parser(), argv, checked_batch)
    if isinstance(parsed, int):
        return parsed
    args, batch = parsed
    from artstyle.cli.batch_run import make_batch  # PyTorch from here on

    return make_batch(args, batch)


def checked_batch(args: argparse.Namespace) -> Batch:
    """The pictures of the grid (CONTENT's files with ``--styles``) and of ``--manifest``,
    with the checked options; ConfigError for a bad flag, a CONTENT without images or a
    bad manifest (read here, before PyTorch is imported: the mistake is answered at once)."""
    config = checked_config(args)
    items: list[Item] = []
    if args.content:
        items += grid(expand(args.content), list(args.styles), args.output, args.format)
    if args.manifest:
        items += read_manifest(args.manifest, args.output, args.format)
    return Batch(items, config, args.bit_depth, args.jpeg_quality, args.force)


def checked_config(args: argparse.Namespace) -> Config:
    """The options of every picture, once every flag is checked that needs no file (the
    grid's CONTENT and the manifest are read by the run); ConfigError for a bad one."""
    check_max_pixels(args.max_pixels)
    check_bit_depth(args.bit_depth, OUTPUT_FORMATS["." + args.format])
    check_jpeg_quality(args.jpeg_quality)
    check_ray_options(args)
    if (args.content or args.styles) and not (args.content and args.styles):
        raise ConfigError("a grid needs CONTENT images and --styles", option="styles")
    if not (args.content or args.manifest):
        raise ConfigError("nothing to do: give CONTENT images and --styles, or a --manifest", option="manifest")
    return given_config(args)
