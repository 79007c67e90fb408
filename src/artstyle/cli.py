"""The ``artstyle`` command: ``artstyle CONTENT STYLE [STYLE ...] -o OUTPUT [options]``.

The only place that prints, shows progress and chooses exit codes:
0 success, 1 a run that failed (unreadable or unusable input or output file,
weights, device, disk), 2 a bad command line or option value, 130 interrupted by Ctrl-C (the current
image is written to the output first).
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, NoReturn, cast

from tqdm import tqdm

from artstyle import __version__
from artstyle.api import Result, Stylizer
from artstyle.config import Config, LayerWeights, flag, format_layers
from artstyle.engine import Progress
from artstyle.errors import ArtstyleError, ConfigError
from artstyle.imageio import check_output_path, read_image, save_image, tensor_to_image

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage dump) with exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The CLI flags, generated from the fields of :class:`Config` (the one source of defaults)."""
    parser = _Parser(
        prog="artstyle",
        description="Repaint a content image in the style of one or more style images (Gatys et al. 2016).",
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
    parser.add_argument("--version", action="version", version=f"artstyle {__version__}")
    group = parser.add_argument_group("style transfer options")
    for field in fields(Config):
        meta = field.metadata
        default = field.default if field.default is not MISSING else None
        if field.name in ("content_layers", "style_layers"):
            default = format_layers(cast(LayerWeights, default))
        text = meta["help"] if "default" in meta["help"] else f"{meta['help']} (default: {default})"
        kwargs: dict[str, Any] = {"dest": field.name, "default": None, "help": text}
        if meta["choices"]:
            kwargs["choices"] = meta["choices"]
        else:
            kwargs["metavar"] = meta["metavar"]
        if field.name == "style_weights":
            kwargs["nargs"] = "+"
        group.add_argument(flag(field.name), **kwargs)
    return parser


def _sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    def describe(path: str) -> dict[str, str]:
        return {"file": Path(path).name, "sha256": _sha256(path)}

    return {"content": describe(args.content), "styles": [describe(p) for p in args.styles]}


class _ProgressConsumer:
    """Shows a progress bar, saves intermediate images, and keeps the latest image."""

    def __init__(self, args: argparse.Namespace, iterations: int) -> None:
        self.output = Path(args.output)
        self.save_every = args.save_every
        self.latest: Progress | None = None
        self.bar = tqdm(total=iterations, disable=args.quiet, unit="it", dynamic_ncols=True, file=sys.stderr)

    def __call__(self, progress: Progress) -> None:
        self.latest = progress
        losses = progress.losses
        self.bar.set_postfix_str(
            f"content {losses['content']:.3g} style {losses['style']:.3g} tv {losses['tv']:.3g}", refresh=False
        )
        self.bar.update(1)
        if self.save_every and progress.step % self.save_every == 0 and progress.step < progress.iterations:
            path = self.output.with_name(f"{self.output.stem}.{progress.step:05d}{self.output.suffix}")
            save_image(tensor_to_image(progress.image), path)

    def close(self) -> None:
        self.bar.close()


def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(f"artstyle: {message}", file=sys.stderr)


def _config(args: argparse.Namespace) -> Config:
    options = {f.name: getattr(args, f.name) for f in fields(Config) if getattr(args, f.name) is not None}
    if args.save_every < 0:
        raise ConfigError(f"--save-every: expected a whole number of at least 0, got {args.save_every}")
    config = Config(**options)
    # Fix the seed here so that even an interrupted run records the one it used.
    return config if config.seed is not None else config.replace(seed=secrets.randbelow(2**31))


def _run(args: argparse.Namespace) -> int:
    config = _config(args)
    check_output_path(args.output)
    content = read_image(args.content)
    styles = [read_image(path) for path in args.styles]
    inputs = _inputs(args)
    stylizer = Stylizer(weights=config.weights, device=config.device)
    consumer = _ProgressConsumer(args, config.iterations)
    started = time.perf_counter()
    try:
        result = stylizer.run(content, styles, config, progress=consumer)
    except KeyboardInterrupt:
        consumer.close()
        return _interrupted(args, consumer.latest, config, inputs, str(stylizer.device))
    finally:
        consumer.close()
    save_image(result.image, args.output, result.metadata(inputs))
    seconds = time.perf_counter() - started
    _say(args, f"wrote {args.output} ({result.image.width}x{result.image.height}, seed {result.seed}, {seconds:.0f} s)")
    return EXIT_OK


def _interrupted(
    args: argparse.Namespace, latest: Progress | None, config: Config, inputs: dict[str, Any], device: str
) -> int:
    if latest is None:
        print("artstyle: interrupted before the first iteration; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    result = Result(tensor_to_image(latest.image), config, config.seed or 0, device)
    metadata = result.metadata(inputs)
    metadata["interrupted_at"] = latest.step
    save_image(result.image, args.output, metadata)
    print(
        f"artstyle: interrupted at iteration {latest.step}/{latest.iterations}; "
        f"wrote the current image to {args.output}",
        file=sys.stderr,
    )
    return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to ``sys.exit``)."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["serve"]:
        from artstyle.web import serve_main

        return serve_main(words[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"artstyle: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ArtstyleError as exc:
        print(f"artstyle: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("artstyle: interrupted; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # a file vanished or became unreadable mid-run
        name = f" '{exc.filename}'" if exc.filename else ""
        print(f"artstyle: error:{name} {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
