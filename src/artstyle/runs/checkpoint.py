"""Checkpoint files: the state of a run every N iterations, so that it can be continued.

``artstyle ... -o out.png --checkpoint-every N`` keeps ``out.png.ckpt`` beside the
output: the optimised image, the optimizer's state (L-BFGS's history or Adam's
moments), the scale and the iteration, plus a fingerprint of what the run computes
(the sha256 of every input file and every option that changes the result).
``--resume`` continues from it, refusing a checkpoint of other inputs or options, and
ends with the image an uninterrupted run gives (bit for bit with ``--deterministic``
on the same machine).

The file is written with :func:`torch.save` to a temporary file that is then renamed
over the old one (:mod:`artstyle.files.atomic`), so it is always a complete checkpoint, and
it is read with ``weights_only=True``: plain values and tensors only, never code.
:class:`Checkpoints` is the file of one job, as the run frame keeps it.
"""

from __future__ import annotations

import math
import os
import secrets
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from artstyle._version import __version__
from artstyle.config import INIT_MODES, Config
from artstyle.engine import RunState
from artstyle.errors import ArtstyleWarning, CheckpointError, option_name, option_value
from artstyle.files.atomic import StrPath, atomic_path
from artstyle.runs.job import Job
from artstyle.runs.signals import Signals

FORMAT = "artstyle checkpoint 1"

#: Options that do not change what is computed, only where or how: a run may be
#: resumed with other values (then it is not bit-identical to an uninterrupted one).
#: Tiling computes the same objective (up to rounding), in less memory.
UNCHECKED_OPTIONS = ("device", "deterministic", "tile_size")

_INPUTS = {
    "content": "content image",
    "styles": "style images",
    "init": "--init image",
    "style_masks": "style masks",
    "content_mask": "content mask",
}


def checkpoint_path(output: StrPath) -> Path:
    """The checkpoint of the run that writes ``output``: ``out.png`` -> ``out.png.ckpt``."""
    output = Path(os.fspath(output))
    return output.with_name(f"{output.name}.ckpt")


def fingerprint(config: Config, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed: every option that changes the result
    and the sha256 of every input file (``inputs`` as recorded in an output's metadata:
    ``{"content": {"file": ..., "sha256": ...}, "styles": [...], ...}``; names may differ)."""
    parameters = config.to_dict()
    for name in UNCHECKED_OPTIONS:
        parameters.pop(name)
    if parameters["init"] not in INIT_MODES:
        parameters["init"] = "FILE"  # compared by its sha256 instead of its path
    digests: dict[str, Any] = {}
    for key, entry in inputs.items():
        if isinstance(entry, list):
            digests[key] = [item.get("sha256") for item in entry if isinstance(item, Mapping)]
        elif isinstance(entry, Mapping):
            digests[key] = entry.get("sha256")
    return {"parameters": parameters, "inputs": digests}


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as read from its file: the run's state and what it was computed from."""

    path: Path
    state: RunState
    fingerprint: dict[str, Any]

    @property
    def seed(self) -> int | None:
        seed = self.fingerprint["parameters"].get("seed")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None

    def check(self, expected: Mapping[str, Any]) -> None:
        """Refuse (CheckpointError) when ``expected`` (a :func:`fingerprint`) differs."""
        theirs, ours = self.fingerprint["parameters"], expected["parameters"]
        for name in list(ours) + [n for n in theirs if n not in ours]:
            if theirs.get(name) != ours.get(name):
                raise self.refusal(
                    f"it was made with {option_value(name, _shown(theirs.get(name)))}, not {_shown(ours.get(name))}"
                )
        theirs, ours = self.fingerprint["inputs"], expected["inputs"]
        for key in list(ours) + [k for k in theirs if k not in ours]:
            if theirs.get(key) != ours.get(key):
                what = _INPUTS.get(key, key)
                verb = "are" if what.endswith("s") else "is"
                raise self.refusal(f"its {what} {verb} not the same as this run's (compared by sha256)")

    def refusal(self, reason: str) -> CheckpointError:
        return CheckpointError(
            f"cannot resume from '{self.path}': {reason}; resume with the same inputs and options, "
            f"or start again without {option_name('resume')}"
        )


def _shown(value: object) -> str:
    if value is None:
        return "(the default)"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def save_checkpoint(path: StrPath, state: RunState, expected: Mapping[str, Any]) -> None:
    """Write ``state`` and its fingerprint to ``path`` atomically (CheckpointError on failure)."""
    payload = {
        "format": FORMAT,
        "artstyle": __version__,
        "fingerprint": dict(expected),
        "step": state.step,
        "scale": state.scale,
        "image": state.image.detach().cpu(),
        "optimizer": state.optimizer,
        "optimizer_state": state.optimizer_state,
        "style_factor": state.style_factor,
    }
    try:
        with atomic_path(path) as temp:
            torch.save(payload, temp)
    except OSError as exc:
        raise CheckpointError(f"cannot write the checkpoint '{path}': {exc.strerror or exc}") from None


def read_checkpoint(path: StrPath) -> Checkpoint:
    """The checkpoint in ``path``; CheckpointError when it is missing, corrupt or not one of ours."""
    where = Path(os.fspath(path))
    if not where.exists():
        writes = option_value("checkpoint_every", "N")
        raise CheckpointError(
            f"there is no checkpoint '{where}' to resume from (a run writes one with {writes})", option="resume"
        )
    try:
        payload = torch.load(where, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise CheckpointError(f"cannot read the checkpoint '{where}': {exc.strerror or exc}") from None
    except Exception:  # a truncated or foreign file: the unpickler and the zip reader raise many kinds
        raise CheckpointError(f"'{where}' is not a readable artstyle checkpoint (truncated or corrupt)") from None
    return Checkpoint(where, _state(where, payload), payload["fingerprint"])


def _state(path: Path, payload: object) -> RunState:
    """The RunState of a loaded payload, every field checked (the file is untrusted)."""

    def bad(problem: str) -> CheckpointError:
        return CheckpointError(f"'{path}' is not a usable artstyle checkpoint ({problem})")

    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise bad("not in the format of this version")
    if payload.get("artstyle") != __version__:
        raise bad(f"made by artstyle {payload.get('artstyle')}, this is {__version__}")
    made_from = payload.get("fingerprint")
    if not (
        isinstance(made_from, dict)
        and isinstance(made_from.get("parameters"), dict)
        and isinstance(made_from.get("inputs"), dict)
    ):
        raise bad("no fingerprint")
    step, scale, image = payload.get("step"), payload.get("scale"), payload.get("image")
    if not (isinstance(step, int) and isinstance(scale, int) and step >= 1 and scale >= 1):
        raise bad("no iteration")
    if not (isinstance(image, torch.Tensor) and image.dim() == 4 and image.is_floating_point()):
        raise bad("no image")
    optimizer, state = payload.get("optimizer"), payload.get("optimizer_state")
    if not (optimizer is None or isinstance(optimizer, str)) or not (state is None or isinstance(state, dict)):
        raise bad("no optimizer state")
    factor = payload.get("style_factor")
    if not (factor is None or (isinstance(factor, float) and math.isfinite(factor) and factor > 0)):
        raise bad("no usable style weight factor")
    return RunState(step, scale, image, optimizer, state, factor)


class Checkpoints:
    """The checkpoint file of a job: written every N iterations (shielded from signals),
    read by ``--resume``, removed once the output of a run that used it is written."""

    def __init__(self, job: Job, signals: Signals) -> None:
        self.job, self.signals = job, signals
        self.path = checkpoint_path(job.output)
        self.expected: dict[str, Any] = {}
        self.step: int | None = None  # the iteration the file on disk holds

    def check(self) -> None:
        """Before any work: an earlier run's checkpoint is not replaced unnoticed."""
        if not self.job.checkpoint_every or self.job.resume or not os.path.lexists(self.path):
            return
        if not self.job.overwrite:
            raise CheckpointError(f"cannot write the checkpoint '{self.path}': the file already exists (--no-clobber)")
        resume = option_name("resume")
        warnings.warn(
            f"'{self.path}' holds an earlier run and will be replaced ({resume} continues that run instead)",
            ArtstyleWarning,
            stacklevel=2,
        )

    def load(self, inputs: dict[str, Any]) -> RunState | None:
        """The state to resume from (with ``resume``), checked against this run; the
        checkpoint's seed is taken when none was given."""
        job = self.job
        saved = read_checkpoint(self.path) if job.resume else None
        if saved is not None and job.config.seed is None and saved.seed is not None:
            job.config = job.config.replace(seed=saved.seed)
        if job.config.seed is None:  # only when resuming from a checkpoint without one
            job.config = job.config.replace(seed=secrets.randbelow(2**31))
        self.expected = fingerprint(job.config, inputs)
        if saved is None:
            return None
        saved.check(self.expected)
        self.step = saved.state.step
        return saved.state

    def save(self, state: RunState) -> None:
        with self.signals.shielded():
            save_checkpoint(self.path, state, self.expected)
        self.step = state.step

    def remove(self) -> None:
        if not (self.job.checkpoint_every or self.job.resume):
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            message = f"could not remove the checkpoint '{self.path}': {exc.strerror or exc}"
            warnings.warn(message, ArtstyleWarning, stacklevel=2)
