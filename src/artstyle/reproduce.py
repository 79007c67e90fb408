"""``artstyle reproduce ORIGINAL [-o NEW]``: make a picture again from the parameters embedded in it.

Every image artstyle writes records its options, seed, output format options and
the sha256 of its input files (in a PNG text chunk, or in ``ORIGINAL.json`` beside
other formats). This command reads them, finds the input files (by their recorded
names beside ORIGINAL or in the current directory, or as given by ``--content``,
``--style`` and ``--init``), checks each against its recorded sha256, runs again
and writes NEW (by default ``ORIGINAL-STEM.reproduced.EXT`` beside the original;
the original itself only with ``--overwrite``). It then says whether the new file
is identical to the original. Runs are bit-identical with ``--deterministic`` on the
same machine; an interrupted or intermediate image is reproduced by stopping at the
same iteration.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from artstyle import __version__
from artstyle.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Job, Parser, Signals, add_output_options, execute, guarded
from artstyle.cli import sha256_of as _sha256
from artstyle.config import Config
from artstyle.errors import ArtstyleWarning, ConfigError, ReproduceError
from artstyle.imageio import read_image, read_metadata, sidecar_path


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


def main(argv: Sequence[str]) -> int:
    """``artstyle reproduce ...``; returns the exit code."""
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    return guarded(lambda signals: _reproduce(args, signals), args.max_pixels)


def _reproduce(args: argparse.Namespace, signals: Signals) -> int:
    original = str(args.original)
    metadata = read_metadata(original)
    if metadata is None:
        where = "its 'artstyle' PNG text chunk" if original.lower().endswith(".png") else f"'{sidecar_path(original)}'"
        raise ReproduceError(f"cannot reproduce '{original}': no artstyle parameters found (looked for {where})")
    recorded = _Recorded(original, metadata)
    output = args.output or _default_output(original)
    if _same_file(output, original) and not args.overwrite:
        raise ConfigError(f"--output: '{output}' is the original; add --overwrite to replace it")

    config = recorded.config()
    inputs = recorded.inputs
    content = _locate(recorded, "content image", inputs["content"], args.content, "--content")
    styles_given: list[str | None] = list(args.style) if args.style else [None] * len(inputs["styles"])
    if len(styles_given) != len(inputs["styles"]):
        raise ConfigError(f"--style: given {len(styles_given)} times, but the run used {len(inputs['styles'])} styles")
    count = len(inputs["styles"])
    styles = [
        _locate(recorded, f"style image {i}" if count > 1 else "style image", entry, given, "--style")
        for i, (entry, given) in enumerate(zip(inputs["styles"], styles_given, strict=True), start=1)
    ]
    style_masks, content_mask = _locate_masks(recorded, args)
    init_file = None
    if config.init not in ("content", "noise"):
        init_file = _locate_init(recorded, config.init, args.init)
        config = config.replace(init=init_file)

    stop_key = "interrupted_at" if "interrupted_at" in metadata else "step"
    job = Job(
        content=content,
        styles=styles,
        output=output,
        config=config,
        quiet=args.quiet,
        bit_depth=recorded.output_option("bit_depth", 8),
        jpeg_quality=recorded.output_option("jpeg_quality", 95),
        init_file=init_file,
        style_masks=style_masks,
        content_mask=content_mask,
        stop_at=recorded.stop_at(stop_key),
        stop_key=stop_key,
        # The files were checked by sha256: record them under their original names.
        recorded_inputs=inputs,
    )
    recorded.check_environment()
    code = execute(job, signals)
    if code != EXIT_OK:
        return code
    same, verdict = _compare(original, output)
    if not args.quiet:
        print(f"artstyle: {output} {verdict}", file=sys.stderr)
    return EXIT_FAILED if args.check and not same else EXIT_OK


def _locate_masks(recorded: _Recorded, args: argparse.Namespace) -> tuple[list[str] | None, str | None]:
    """The style masks and the content mask of the run, if it had any, checked by sha256."""
    inputs = recorded.inputs
    masks = inputs.get("style_masks")
    style_masks = None
    if isinstance(masks, list) and masks:
        if not all(_is_entry(m) for m in masks):
            raise recorded.error("its metadata records unreadable style mask entries")
        given_masks: list[str | None] = list(args.style_masks) if args.style_masks else [None] * len(masks)
        if len(given_masks) != len(masks):
            raise ConfigError(f"--style-masks: {len(given_masks)} given, but the run used {len(masks)}")
        style_masks = [
            _locate(recorded, f"style mask {i}" if len(masks) > 1 else "style mask", entry, given, "--style-masks")
            for i, (entry, given) in enumerate(zip(masks, given_masks, strict=True), start=1)
        ]
    content_mask = None
    if inputs.get("content_mask") is not None:
        if not _is_entry(inputs["content_mask"]):
            raise recorded.error("its metadata records an unreadable content mask entry")
        content_mask = _locate(recorded, "content mask", inputs["content_mask"], args.content_mask, "--content-mask")
    return style_masks, content_mask


def _default_output(original: str) -> str:
    path = Path(original)
    return str(path.with_name(f"{path.stem}.reproduced{path.suffix}"))


def _same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


class _Recorded:
    """The metadata of an artstyle image, checked field by field (it is untrusted JSON)."""

    def __init__(self, original: str, metadata: Mapping[str, Any]) -> None:
        self.original, self.metadata = original, metadata
        self.directory = Path(original).parent
        inputs = metadata.get("inputs")
        if not isinstance(inputs, dict) or not _is_entry(inputs.get("content")):
            raise self.error("its metadata records no content image")
        styles = inputs.get("styles")
        if not isinstance(styles, list) or not styles or not all(_is_entry(s) for s in styles):
            raise self.error("its metadata records no style images")
        self.inputs: dict[str, Any] = inputs

    def error(self, problem: str) -> ReproduceError:
        return ReproduceError(f"cannot reproduce '{self.original}': {problem}")

    def config(self) -> Config:
        parameters = self.metadata.get("parameters")
        if not isinstance(parameters, dict):
            raise self.error("its metadata records no parameters")
        known = {f.name for f in fields(Config)}
        unknown = sorted(set(parameters) - known)
        if unknown:
            made_by = self.metadata.get("artstyle", "an unknown version")
            raise self.error(f"option '{unknown[0]}' (from artstyle {made_by}) is unknown to artstyle {__version__}")
        try:
            return Config(**parameters)
        except ConfigError as exc:
            raise self.error(f"its recorded parameters are invalid ({exc})") from None

    def output_option(self, name: str, default: int) -> int:
        options = self.metadata.get("output")
        value = options.get(name, default) if isinstance(options, dict) else default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"its recorded output option {name} is not a whole number: {value!r}")
        return value

    def stop_at(self, key: str) -> int | None:
        value = self.metadata.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.error(f"its recorded {key} is not a positive whole number: {value!r}")
        return value

    def check_environment(self) -> None:
        """Warn when the version differs; use the recorded number of CPU threads."""
        made_by = self.metadata.get("artstyle")
        if made_by != __version__:
            warnings.warn(
                f"'{self.original}' was made by artstyle {made_by}, this is {__version__}: the result may differ",
                ArtstyleWarning,
                stacklevel=2,
            )
        threads = self.metadata.get("threads")
        if isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1:
            torch.set_num_threads(threads)


def _is_entry(entry: object) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("file"), str)
        and bool(entry["file"])
        and isinstance(entry.get("sha256"), str)
    )


def _locate(recorded: _Recorded, what: str, entry: Mapping[str, str], given: str | None, option: str) -> str:
    """The input file for ``entry`` (given, or by its recorded name), checked by sha256."""
    name = Path(entry["file"]).name  # a bare name, never a path from the metadata
    if given is None:
        candidates = [recorded.directory / name, Path.cwd() / name]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise recorded.error(
                f"cannot find the {what} '{name}' beside it or in the current directory; give it with {option}"
            )
        path = str(found)
    else:
        path = given
    try:
        digest = _sha256(path)
    except OSError as exc:
        raise recorded.error(f"cannot read the {what} '{path}': {exc.strerror or exc}") from None
    if digest != entry["sha256"]:
        raise recorded.error(
            f"'{path}' is not the {what} it was made from (sha256 {digest[:12]}..., recorded {entry['sha256'][:12]}...)"
        )
    return path


def _locate_init(recorded: _Recorded, recorded_init: str, given: str | None) -> str:
    entry = recorded.inputs.get("init")
    if isinstance(entry, dict) and _is_entry(entry):
        return _locate(recorded, "--init image", entry, given, "--init")
    if given is not None:
        return given
    warnings.warn(
        f"'{recorded.original}' does not record the sha256 of its --init image; using '{recorded_init}' unchecked",
        ArtstyleWarning,
        stacklevel=2,
    )
    return recorded_init


def _compare(original: str, new: str) -> tuple[bool, str]:
    """Whether the new file equals the original, and a sentence saying how they compare."""
    if Path(original).read_bytes() == Path(new).read_bytes():
        return True, "is identical to the original, byte for byte"
    old_pixels = np.asarray(read_image(original), dtype=np.int16)
    new_pixels = np.asarray(read_image(new), dtype=np.int16)
    if old_pixels.shape != new_pixels.shape:
        return False, f"differs from the original: {new_pixels.shape[1]}x{new_pixels.shape[0]} px, not " + (
            f"{old_pixels.shape[1]}x{old_pixels.shape[0]}"
        )
    difference = np.abs(old_pixels - new_pixels)
    if not difference.any():
        return False, "has the same 8-bit pixels as the original, but the files differ"
    changed = float((difference.max(axis=2) > 0).mean()) * 100
    return False, (
        f"differs from the original in {changed:.1f}% of its pixels, by up to {int(difference.max())}/255 "
        "(bit-identical results need --deterministic and the same machine)"
    )
