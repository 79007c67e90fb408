"""The work folder of a video job: every finished frame, kept beside the output.

``artstyle video clip.mp4 starry.jpg -o out.mp4`` keeps ``out.mp4.work/``: ``job.json``,
what the frames are computed from (the sha256 of the clip and the paintings, every option
that changes a frame), and one 16-bit PNG per finished frame (``frame_000001.png`` ...,
each written atomically by the run frame, with the frame's own metadata; on a cluster,
``parts/`` keeps the versions of an overlap's frames until both chunks' are there). A stopped or
crashed job loses at most the frame it was on; ``--resume`` continues after the last
finished one, refusing a folder of another clip, paintings or options. The folder is
removed once the video is written.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from artstyle._version import __version__
from artstyle.errors import CheckpointError, option_name, option_value
from artstyle.files.atomic import atomic_write_bytes
from artstyle.files.video import frame_name, read_frame_png

FORMAT = "artstyle video work 1"
#: Options that change where or how a frame is computed, not what: a job may resume with others.
UNCHECKED_OPTIONS = ("device", "deterministic", "tile_size", "precision")


def work_path(output: str) -> Path:
    """The work folder of the job writing ``output``: ``out.mp4`` -> ``out.mp4.work``."""
    target = Path(output)
    return target.with_name(f"{target.name}.work")


class WorkFolder:
    """The finished frames of one job and the record of what they were computed from."""

    def __init__(self, output: str, record: Mapping[str, Any]) -> None:
        self.path = work_path(output)
        self.record = {"format": FORMAT, "artstyle": __version__, **record}
        self.finished = 0

    def open(self, resume: bool) -> int:
        """Create the folder, or with ``resume`` take up an existing one; the number of
        frames already finished there (consecutive from the first)."""
        if not resume:
            if self.path.exists():
                raise CheckpointError(
                    f"the work folder '{self.path}' of an earlier run exists: {option_name('resume')} continues it, "
                    "or remove it to start again"
                )
            self.path.mkdir()
            atomic_write_bytes(self.path / "job.json", json.dumps(self.record, indent=1).encode())
            return 0
        self._check_record()
        return self.count()

    def count(self) -> int:
        """The frames finished so far, consecutive from the first (a frame is finished once
        its file is there: it is renamed into place complete)."""
        while (self.path / frame_name(self.finished)).is_file():
            self.finished += 1
        return self.finished

    def _check_record(self) -> None:
        try:
            recorded = json.loads((self.path / "job.json").read_text())
        except FileNotFoundError:
            raise CheckpointError(f"no work folder '{self.path}' to resume", option="resume") from None
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read '{self.path / 'job.json'}': {exc}", option="resume") from None
        if not isinstance(recorded, dict) or recorded.get("format") != FORMAT:
            raise CheckpointError(f"'{self.path}' is not an artstyle video work folder", option="resume")
        for key in ("input", "styles", "parameters", "video"):
            if recorded.get(key) != self.record.get(key):
                what = _difference(key, recorded.get(key), self.record.get(key))
                raise CheckpointError(f"the work folder '{self.path}' is of {what}", option="resume")

    def stored(self) -> int:
        """The finished frames here, in any order (a cluster's chunks end in any order)."""
        return sum(1 for _ in self.path.glob("frame_*.png"))

    def empty(self) -> bool:
        """Whether it holds no finished frame and no part of one (nothing to resume)."""
        parts = self.path / "parts"
        return not self.stored() and not (parts.is_dir() and any(parts.iterdir()))

    def frame(self, index: int) -> Path:
        return self.path / frame_name(index)

    def part(self, index: int, version: str) -> Path:
        """A version of frame ``index`` waiting for the other to be cross-faded with it
        (``parts/frame_000001.a.png``: the owning chunk's; ``.b``: the next chunk's warm-up)."""
        folder = self.path / "parts"
        folder.mkdir(exist_ok=True)
        return folder / frame_name(index).replace(".png", f".{version}.png")

    def read(self, index: int) -> npt.NDArray[np.float32]:
        """Finished frame ``index`` as (H, W, 3) float RGB in [0, 1] (16-bit precision)."""
        return read_frame_png(self.frame(index))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _difference(key: str, recorded: Any, now: Any) -> str:
    """Which part of the record differs, in words."""
    if key in ("input", "styles"):
        return "another clip" if key == "input" else "other style images"
    if isinstance(recorded, dict) and isinstance(now, dict):
        names = sorted(name for name in {*recorded, *now} if recorded.get(name) != now.get(name))
        if names:
            changes = [f"{option_value(name, recorded.get(name))} (now {now.get(name)})" for name in names[:3]]
            return "other options: " + ", ".join(changes)
    return "other options"


def recorded_seed(output: str) -> int | None:
    """The seed of the job whose work folder is beside ``output`` (to resume it without ``--seed``)."""
    try:
        recorded = json.loads((work_path(output) / "job.json").read_text())
        seed = recorded["parameters"]["seed"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return seed if isinstance(seed, int) else None


def parameters(config_dict: dict[str, Any]) -> dict[str, Any]:
    """The still-image options that change a frame."""
    return {name: value for name, value in config_dict.items() if name not in UNCHECKED_OPTIONS}
