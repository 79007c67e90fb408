"""The command line's flags: those of :class:`~artstyle.config.Config` generated from its
fields (the one source of defaults), and those of the run frame and of the files.

Nothing here imports PyTorch (nor do the options it validates): ``--help``, ``--version``
and every usage error are answered before it is (see :func:`parse` and :func:`usage_error`).
"""

from __future__ import annotations

import argparse
import functools
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, fields
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar, cast

from artstyle._version import __version__
from artstyle.choices import ray_host_port
from artstyle.config import INIT_MODES, PRESETS, Config, LayerWeights, format_layers, with_preset
from artstyle.errors import FLAGS, ConfigError, flag, spelled
from artstyle.files.options import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from artstyle.runs import Job

_P = ParamSpec("_P")
_R = TypeVar("_R")
Checked = TypeVar("Checked")


def speaks_flags(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """A command's entry point whose messages name options by their flags (``--tv-weight``,
    ``--device cpu``), not by the library's keywords (see :func:`artstyle.errors.spelled`)."""

    @functools.wraps(command)
    def in_flags(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with spelled(FLAGS):
            return command(*args, **kwargs)

    return in_flags


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage dump) with exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | int:
    """The arguments ``argv``, or the exit code of ``--help``, ``--version`` or a usage
    error, which argparse has printed."""
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE


def usage_error(exc: ConfigError) -> int:
    """A bad option found before the job (and PyTorch) starts: its one line, and the exit code."""
    print(f"artstyle: error: {exc}", file=sys.stderr)
    return EXIT_USAGE


def parse_checked(
    parser: argparse.ArgumentParser, argv: Sequence[str], check: Callable[[argparse.Namespace], Checked]
) -> tuple[argparse.Namespace, Checked] | int:
    """The arguments ``argv`` and what ``check`` makes of them (the job's options, checked
    before PyTorch is imported); or the exit code of ``--help``, ``--version`` or a usage
    error (:func:`parse`, :func:`usage_error`), already printed."""
    args = parse(parser, argv)
    if isinstance(args, int):
        return args
    try:
        return args, check(args)
    except ConfigError as exc:
        return usage_error(exc)


def add_output_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The flags that say how files are read and written (not part of :class:`Config`)."""
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"refuse input images of more than N pixels, checked before decoding (default: {DEFAULT_MAX_PIXELS})",
    )


def add_ray_options(group: argparse._ArgumentGroup, what: str) -> None:
    """``--ray ADDRESS`` and ``--cpus-per-job N``: run ``what`` as tasks on a Ray cluster."""
    group.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=os.environ.get("RAY_ADDRESS"),
        help=f"run the {what} as Ray tasks on this cluster (HOST:PORT, or auto; default: $RAY_ADDRESS, else here)",
    )
    group.add_argument("--cpus-per-job", type=int, metavar="N", help="CPUs of each task (default: all of a node's)")


def check_ray_options(args: argparse.Namespace) -> None:
    """The form of ``--ray``'s address and ``--cpus-per-job`` (at least 1), checked (ConfigError)."""
    ray_host_port(args.ray)
    if args.cpus_per_job is not None and args.cpus_per_job < 1:
        raise ConfigError(f"expected a whole number of at least 1, got {args.cpus_per_job}", option="cpus_per_job")


def build_parser() -> argparse.ArgumentParser:
    """The CLI flags, generated from the fields of :class:`Config` (the one source of defaults)."""
    parser = Parser(
        prog="artstyle",
        description="Repaint a content image in the style of one or more style images (Gatys et al. 2016). "
        "'artstyle reproduce OUTPUT' re-runs a picture from the parameters embedded in it; "
        "'artstyle serve' starts the web page (needs the [web] extra); "
        "'artstyle video INPUT STYLE -o OUTPUT' stylizes a video (needs the [video] extra); "
        "'artstyle batch CONTENT... --styles STYLE... -o OUTDIR' makes many pictures.",
    )
    parser.add_argument("content", help="the content image (a photo)")
    parser.add_argument("styles", nargs="+", metavar="style", help="one or more style images (artworks)")
    parser.add_argument("-o", "--output", required=True, help="output image: .png, .jpg, .webp or .tif")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    parser.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="N",
        help="also save the image every N iterations, beside the output",
    )
    _add_run_options(parser.add_argument_group("interrupted and failed runs"))
    parser.add_argument(
        "--style-masks",
        nargs="+",
        metavar="MASK",
        help="one greyscale mask per style image: where it is white, that style applies",
    )
    parser.add_argument("--content-mask", metavar="MASK", help="greyscale mask: where it is white, content is kept")
    parser.add_argument("--version", action="version", version=f"artstyle {__version__}")
    _add_file_options(parser.add_argument_group("input and output files"))
    add_config_options(parser.add_argument_group("style transfer options"))
    return parser


def _add_run_options(runs: argparse._ArgumentGroup) -> None:
    runs.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        metavar="N",
        help="keep the run's state in OUTPUT.ckpt every N iterations (removed when the run succeeds)",
    )
    runs.add_argument(
        "--resume",
        action="store_true",
        help="continue the run whose checkpoint is OUTPUT.ckpt (same inputs and options)",
    )
    runs.add_argument(
        "--keep-partial",
        action="store_true",
        help="when a run diverges or runs out of memory, write its last good image to the output",
    )


def _add_file_options(files: argparse._ArgumentGroup) -> None:
    files.add_argument(
        "--bit-depth", type=int, default=8, metavar="8|16", help="bits per channel of a .png or .tif (default: 8)"
    )
    files.add_argument(
        "--jpeg-quality", type=int, default=95, metavar="Q", help="quality 1-100 of a .jpg or .webp (default: 95)"
    )
    files.add_argument("--no-clobber", action="store_true", help="never overwrite an existing output file")
    add_output_options(files)


def add_config_options(group: argparse._ArgumentGroup) -> None:
    """``--preset`` and one flag per :class:`Config` field."""
    group.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        help="a bundle of options, overridden by any given here: draft (a quick preview: 30 iterations at "
        "the coarsest scale, from 128 px, upsampled to SIZE; under 256 px, where there is one scale, 30 iterations "
        "at SIZE), default, fine (150 iterations at the coarsest scale, 100 at SIZE). Each works at every size",
    )
    for field in fields(Config):
        group.add_argument(flag(field.name), **_config_flag(field))


def _config_flag(field: Field[Any]) -> dict[str, Any]:
    """The keywords of ``add_argument`` for one Config field (its default shown, not set:
    a flag not given stays None, so that presets and the Config's defaults apply)."""
    meta = field.metadata
    default = field.default if field.default is not MISSING else None
    if field.name in ("content_layers", "style_layers"):
        default = format_layers(cast(LayerWeights, default))
    if isinstance(default, bool):
        text = f"{meta['help']} (default: {'on' if default else 'off'})"
        return {"dest": field.name, "action": argparse.BooleanOptionalAction, "default": None, "help": text}
    text = meta["help"] if "default" in meta["help"] else f"{meta['help']} (default: {default})"
    kwargs: dict[str, Any] = {"dest": field.name, "default": None, "help": text}
    if meta["choices"]:
        kwargs["choices"] = meta["choices"]
    else:
        kwargs["metavar"] = meta["metavar"]
    if field.name == "style_weights":
        kwargs["nargs"] = "+"
    return kwargs


def config_from_args(args: argparse.Namespace) -> Config:
    """The run's Config: the preset's options, then those given; the seed fixed now."""
    for name in ("save_every", "checkpoint_every"):
        if getattr(args, name) < 0:
            raise ConfigError(f"expected a whole number of at least 0, got {getattr(args, name)}", option=name)
    config = given_config(args)
    # Fix the seed here so that even an interrupted run records the one it used
    # (a resumed run takes its checkpoint's when none is given).
    if config.seed is not None or args.resume:
        return config
    return config.replace(seed=secrets.randbelow(2**31))


def given_config(args: argparse.Namespace) -> Config:
    """The Config of the flags given (see :func:`add_config_options`), over the preset's options."""
    given = {f.name: getattr(args, f.name) for f in fields(Config) if getattr(args, f.name) is not None}
    return with_preset(args.preset, given)


def job_from_args(args: argparse.Namespace, config: Config) -> Job:
    """The run frame's job for the command line's arguments and their ``config``
    (:func:`config_from_args`). Imports the run frame, and PyTorch."""
    from artstyle.runs import Job

    init_file = None if config.init in INIT_MODES else config.init
    return Job(
        content=args.content,
        styles=list(args.styles),
        output=args.output,
        config=config,
        save_every=args.save_every,
        bit_depth=args.bit_depth,
        jpeg_quality=args.jpeg_quality,
        overwrite=not args.no_clobber,
        init_file=init_file,
        style_masks=list(args.style_masks) if args.style_masks else None,
        content_mask=args.content_mask,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        keep_partial=args.keep_partial,
    )
