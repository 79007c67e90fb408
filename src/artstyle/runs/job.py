"""One job of the run frame: what to read, how to run it and what to write.

A :class:`Job` comes from the command line, from a picture's metadata (``artstyle
reproduce``) or from the web page; the frame (:func:`artstyle.runs.execute.execute`)
runs it. Inputs are files (paths) or images already in memory (:class:`InputImage`,
an upload), each recorded in the output's metadata by name and sha256.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from artstyle.config import Config
from artstyle.engine import StyleTargets, Term
from artstyle.files.digest import sha256_file
from artstyle.files.read import read_image

#: The metadata key of a picture written before its run finished (stopped on request,
#: interrupted, or the last good image of a diverged run): the iteration it is of.
#: ``artstyle reproduce`` stops there.
STOPPED_KEY = "stopped_at"
#: The older name of :data:`STOPPED_KEY`, still written beside it for one release (and
#: read by ``reproduce``) so that older tools keep reading new pictures.
LEGACY_STOPPED_KEY = "interrupted_at"


@dataclass(frozen=True)
class InputImage:
    """An input image already decoded (an upload), with the name and sha256 of its file."""

    image: Image.Image
    name: str
    sha256: str

    def describe(self) -> dict[str, str]:
        return {"file": self.name, "sha256": self.sha256}


Input = str | InputImage


@dataclass
class Job:
    """Everything a run needs, from the command line, a picture's metadata or the web page."""

    content: Input
    styles: list[Input]
    output: str
    config: Config
    save_every: int = 0
    bit_depth: int = 8
    jpeg_quality: int = 95
    overwrite: bool = True
    init_file: str | None = None
    style_masks: list[Input] | None = None
    content_mask: Input | None = None
    #: Stop after this iteration and write the image with ``stop_keys`` in its metadata
    #: (to reproduce a stopped run or an intermediate image).
    stop_at: int | None = None
    #: The metadata keys that record the iteration of a picture written before the run
    #: finished; ``reproduce`` passes those of the original (``step`` for an intermediate).
    stop_keys: tuple[str, ...] = (STOPPED_KEY, LEGACY_STOPPED_KEY)
    #: The ``inputs`` metadata to record instead of describing the inputs anew.
    recorded_inputs: dict[str, Any] | None = None
    checkpoint_every: int = 0
    resume: bool = False
    keep_partial: bool = False
    #: The starting image, a (1, 3, H, W) tensor in [0, 1], instead of the config's ``init``
    #: (a video's previous frame warped onto this one).
    init_tensor: torch.Tensor | None = None
    #: Whether L-BFGS begins with the Adam warm-up (not from a start already stylized).
    warmup: bool = True
    #: Named terms added to the objective (a video's temporal term).
    extra_terms: tuple[Term, ...] = ()
    #: Style targets computed by an earlier run with the same style images (a batch's, or
    #: another node's): see :meth:`artstyle.api.Stylizer.prepare`.
    style_targets: StyleTargets | None = None
    #: Whether a run stopped before its end (Ctrl-C, SIGTERM, stop_at) writes its current
    #: image to the output; a video's frame is not written unfinished.
    write_stopped: bool = True

    def intermediate(self, step: int) -> Path:
        output = Path(self.output)
        return output.with_name(f"{output.stem}.{step:05d}{output.suffix}")

    def inputs(self) -> dict[str, Any]:
        """What the output's metadata records of the inputs: name and sha256 of each."""
        if self.recorded_inputs is not None:
            return self.recorded_inputs
        inputs: dict[str, Any] = {"content": describe(self.content), "styles": [describe(s) for s in self.styles]}
        if self.init_file is not None:
            inputs["init"] = describe(self.init_file)
        if self.style_masks:
            inputs["style_masks"] = [describe(m) for m in self.style_masks]
        if self.content_mask is not None:
            inputs["content_mask"] = describe(self.content_mask)
        return inputs


def read_input(path: str) -> InputImage:
    """An input file read now, once, for jobs that share it (a video's frames, a batch's
    pictures with the same painting), with its file's name and sha256."""
    return InputImage(read_image(path), Path(path).name, sha256_file(path))


def describe(source: Input) -> dict[str, str]:
    """The metadata entry of an input: its file's name and sha256."""
    if isinstance(source, InputImage):
        return source.describe()
    return {"file": Path(source).name, "sha256": sha256_file(source)}
