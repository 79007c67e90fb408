"""Make a picture again from the parameters embedded in it (``artstyle reproduce``'s run frame).

Every image artstyle writes records its options, seed, output format options and
the sha256 of its input files (in a PNG text chunk, or in ``ORIGINAL.json`` beside
other formats). This command reads them, finds the input files (by their recorded
names beside ORIGINAL or in the current directory, or as given by ``--content``,
``--style`` and ``--init``), checks each against its recorded sha256, runs again
and writes NEW (by default ``ORIGINAL-STEM.reproduced.EXT`` beside the original;
the original itself only with ``--overwrite``). It then says whether the new file
is identical to the original. Runs are bit-identical with ``--deterministic`` on the
same machine; a stopped, interrupted or intermediate image is reproduced by stopping at
the same iteration (``stopped_at``; ``interrupted_at`` in pictures of earlier versions;
``step`` for an intermediate image). :func:`reproduction` makes the
:class:`~artstyle.runs.job.Job`; the front end runs it and :func:`compare` says how the
new file compares.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from artstyle._version import __version__
from artstyle.config import INIT_MODES, Config
from artstyle.errors import ArtstyleWarning, ConfigError, ReproduceError
from artstyle.files.digest import sha256_file
from artstyle.files.metadata import read_metadata, sidecar_path
from artstyle.files.read import read_image
from artstyle.runs.job import LEGACY_STOPPED_KEY, STOPPED_KEY, Job

#: Where a picture records that it stopped early, in the order ``reproduce`` reads them.
STOP_KEYS = (STOPPED_KEY, LEGACY_STOPPED_KEY, "step")


@dataclass(frozen=True)
class Given:
    """Input files given instead of the recorded names (None: found by name)."""

    content: str | None = None
    styles: list[str] | None = None
    init: str | None = None
    style_masks: list[str] | None = None
    content_mask: str | None = None


def reproduction(original: str, output: str | None = None, given: Given | None = None, overwrite: bool = False) -> Job:
    """The job that makes ``original`` again from its metadata, writing ``output`` (default:
    :func:`default_output`; the original itself only with ``overwrite``). Every input is
    checked against its recorded sha256; the recorded number of CPU threads is used.

    Raises ReproduceError (no or unusable metadata, missing or changed inputs) or
    ConfigError (a bad ``given`` or ``output``).
    """
    given = given or Given()
    metadata = read_metadata(original)
    if metadata is None:
        where = "its 'artstyle' PNG text chunk" if original.lower().endswith(".png") else f"'{sidecar_path(original)}'"
        raise ReproduceError(f"cannot reproduce '{original}': no artstyle parameters found (looked for {where})")
    recorded = _Recorded(original, metadata)
    output = output or default_output(original)
    if _same_file(output, original) and not overwrite:
        raise ConfigError(f"'{output}' is the original; add --overwrite to replace it", option="output")
    config = recorded.config()
    content = _locate(recorded, "content image", recorded.inputs["content"], given.content, "--content")
    styles = _locate_styles(recorded, given)
    style_masks, content_mask = _locate_masks(recorded, given)
    init_file = None
    if config.init not in INIT_MODES:
        init_file = _locate_init(recorded, config.init, given.init)
        config = config.replace(init=init_file)
    stop_keys, stop_at = recorded.stop()
    bit_depth, jpeg_quality = recorded.output_option("bit_depth", 8), recorded.output_option("jpeg_quality", 95)
    recorded.check_environment()
    return Job(
        content=content,
        styles=list(styles),
        output=output,
        config=config,
        bit_depth=bit_depth,
        jpeg_quality=jpeg_quality,
        init_file=init_file,
        style_masks=list(style_masks) if style_masks is not None else None,
        content_mask=content_mask,
        stop_at=stop_at,
        stop_keys=stop_keys or Job.stop_keys,
        # The files were checked by sha256: record them under their original names.
        recorded_inputs=recorded.inputs,
    )


def _locate_styles(recorded: _Recorded, given: Given) -> list[str]:
    entries = recorded.inputs["styles"]
    styles_given: list[str | None] = list(given.styles) if given.styles else [None] * len(entries)
    if len(styles_given) != len(entries):
        raise ConfigError(f"given {len(styles_given)} times, but the run used {len(entries)} styles", option="style")
    count = len(entries)
    return [
        _locate(recorded, f"style image {i}" if count > 1 else "style image", entry, path, "--style")
        for i, (entry, path) in enumerate(zip(entries, styles_given, strict=True), start=1)
    ]


def _locate_masks(recorded: _Recorded, given: Given) -> tuple[list[str] | None, str | None]:
    """The style masks and the content mask of the run, if it had any, checked by sha256."""
    inputs = recorded.inputs
    masks = inputs.get("style_masks")
    style_masks = None
    if isinstance(masks, list) and masks:
        if not all(_is_entry(m) for m in masks):
            raise recorded.error("its metadata records unreadable style mask entries")
        given_masks: list[str | None] = list(given.style_masks) if given.style_masks else [None] * len(masks)
        if len(given_masks) != len(masks):
            raise ConfigError(f"{len(given_masks)} given, but the run used {len(masks)}", option="style_masks")
        style_masks = [
            _locate(recorded, f"style mask {i}" if len(masks) > 1 else "style mask", entry, path, "--style-masks")
            for i, (entry, path) in enumerate(zip(masks, given_masks, strict=True), start=1)
        ]
    content_mask = None
    if inputs.get("content_mask") is not None:
        if not _is_entry(inputs["content_mask"]):
            raise recorded.error("its metadata records an unreadable content mask entry")
        content_mask = _locate(recorded, "content mask", inputs["content_mask"], given.content_mask, "--content-mask")
    return style_masks, content_mask


def default_output(original: str) -> str:
    """``ORIGINAL-STEM.reproduced.EXT`` beside the original."""
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
        if "upsample" not in parameters:  # made before the option: every scale was upsampled bicubically
            parameters = {**parameters, "upsample": "bicubic"}
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

    def stop(self) -> tuple[tuple[str, ...], int | None]:
        """The keys that record where the original stopped early (see
        :data:`~artstyle.runs.job.STOPPED_KEY`; ``step`` for an intermediate image), each
        checked, and that iteration (None: a finished run)."""
        keys = tuple(key for key in STOP_KEYS if self.metadata.get(key) is not None)
        steps = [self._step(key) for key in keys]
        return keys, steps[0] if steps else None

    def _step(self, key: str) -> int:
        value = self.metadata.get(key)
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
        digest = sha256_file(path)
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


def compare(original: str, new: str) -> tuple[bool, str]:
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
