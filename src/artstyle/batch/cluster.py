"""A batch's pictures as Ray tasks (``artstyle batch ... --ray ADDRESS``; the ``[ray]`` extra).

The driver (the ``artstyle batch`` process) reads every input once and sends it to the
cluster: each painting set once (``ray.put``), each photo with its task. The style
targets of each painting set are computed once, by one task, and passed to the
pictures' tasks by reference. A task runs the picture's job in the run frame on a
worker, with ``cpus_per_job`` CPUs (PyTorch's thread count set to them) and a network
kept per worker process, into a temporary file there, and returns the file's bytes: only
the driver writes into the output directory, atomically. At most ``window`` tasks are in
flight; results come back in completion order (``ray.wait``). Tasks are retried when
their node is lost (``max_retries``), so a killed worker node costs only the pictures it
was running, which run again elsewhere.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from artstyle.batch.jobs import Item
from artstyle.batch.run import BatchReporter, Done, done_of
from artstyle.config import Config
from artstyle.engine import StyleTargets
from artstyle.engine.targets import content_dependent
from artstyle.errors import KEYWORDS, ArtstyleError, ConfigError, Spelling, current_spelling, spelled
from artstyle.files.atomic import atomic_write_bytes
from artstyle.files.convert import resize_long_side
from artstyle.files.metadata import sidecar_path
from artstyle.files.write import check_output_path
from artstyle.runs import FAILED, WRITTEN, InputImage, Job, Outcome, Signals, execute
from artstyle.runs.cluster import MAX_RETRIES, connect, task_slots, window_size, worker_stylizer
from artstyle.runs.execute import error_message
from artstyle.runs.job import read_input


@dataclass(frozen=True)
class Returned:
    """What a task sends back: the outcome in words and, for a written picture, its bytes."""

    kind: str
    error: str | None
    usage: bool
    seconds: float
    data: bytes | None = None
    sidecar: bytes | None = None


def stylize_task(
    job: Job, styles: list[InputImage], targets: StyleTargets | None, cpus: int, spelling: Spelling = KEYWORDS
) -> Returned:
    """On a worker: the picture's job in the run frame, into a temporary file; its bytes
    (messages in the driver's ``spelling``)."""
    torch.set_num_threads(cpus)
    with tempfile.TemporaryDirectory(prefix="artstyle-") as scratch, spelled(spelling):
        output = Path(scratch) / Path(job.output).name
        local = replace(job, styles=list(styles), output=str(output), style_targets=targets)
        outcome = execute(local, stylizer=worker_stylizer(job.config))
        if outcome.kind != WRITTEN:
            error = error_message(outcome.error) if outcome.error is not None else outcome.kind
            return Returned(outcome.kind, error, isinstance(outcome.error, ConfigError), outcome.seconds)
        sidecar = sidecar_path(output)
        extra = sidecar.read_bytes() if sidecar.exists() else None
        return Returned(WRITTEN, None, False, outcome.seconds, output.read_bytes(), extra)


def targets_task(content: InputImage, styles: list[InputImage], config: Config, cpus: int) -> StyleTargets:
    """On a worker: the style targets of a painting set at every scale a picture uses, on
    the CPU (a GPU's tensors would come back through Ray as that GPU's)."""
    torch.set_num_threads(cpus)
    targets = worker_stylizer(config).prepare(content.image, [s.image for s in styles], config).style_targets
    return targets.to(torch.device("cpu"))


@dataclass
class RayExecutor:
    """Runs a batch's jobs as Ray tasks on the cluster at ``address`` (see the module)."""

    address: str | None = None
    cpus_per_job: int | None = None
    window: int | None = None

    def run(self, jobs: Sequence[tuple[Item, Job]], reporter: BatchReporter, signals: Signals) -> Iterator[Done]:
        ray = connect(self.address)
        slots = task_slots(ray, jobs[0][1].config.device if jobs else "cpu", self.cpus_per_job)
        cpus = slots.cpus
        stylize = ray.remote(**slots.options(), max_retries=MAX_RETRIES)(stylize_task)
        targets = ray.remote(**slots.options(), max_retries=MAX_RETRIES)(targets_task)
        window = self.window or window_size(ray, slots)
        jobs = [
            (item, replace(job, config=job.config.replace(device=slots.device(job.config.device))))
            for item, job in jobs
        ]
        pending: dict[Any, tuple[Item, Job, float]] = {}
        shared: dict[tuple[str, ...], tuple[Any, Any]] = {}
        queue = list(jobs)
        try:
            while queue or pending:
                while queue and len(pending) < window:
                    item, job = queue.pop(0)
                    submitted = self._submit(ray, stylize, targets, item, job, cpus, shared)
                    if isinstance(submitted, Done):
                        yield submitted
                    else:
                        pending[submitted] = (item, job, time.perf_counter())
                if pending:
                    yield self._collect(ray, pending, signals)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    def _submit(
        self,
        ray: ModuleType,
        stylize: Any,
        targets: Any,
        item: Item,
        job: Job,
        cpus: int,
        shared: dict[tuple[str, ...], tuple[Any, Any]],
    ) -> Any:
        """Send one picture's task (its inputs read here first); a Done when they cannot be."""
        try:
            check_output_path(job.output, bit_depth=job.bit_depth)
            content = _input(str(job.content), job.config.size)
            if item.style_key not in shared:
                styles = list(job.styles)  # read once for the batch, full size: each scale resizes them
                reused = not content_dependent(job.config.preserve_color, job.config.match_luminance)
                style_ref = ray.put(styles)
                target_ref = targets.remote(content, style_ref, job.config, cpus) if reused else None
                shared[item.style_key] = (style_ref, target_ref)
        except (ArtstyleError, OSError) as exc:
            return done_of(item, Outcome(FAILED, job, error=exc))
        style_ref, target_ref = shared[item.style_key]
        spelling = current_spelling()
        return stylize.remote(replace(job, content=content, styles=[]), style_ref, target_ref, cpus, spelling)

    def _collect(self, ray: ModuleType, pending: dict[Any, tuple[Item, Job, float]], signals: Signals) -> Done:
        """Wait for the next task to end, write its picture (here, atomically); its Done."""
        (ready,), _ = ray.wait(list(pending), num_returns=1)
        item, job, started = pending.pop(ready)
        try:
            returned: Returned = ray.get(ready)
        except Exception as exc:  # a task that failed past its retries (its node lost each time)
            return Done(item, FAILED, f"{item.output}: the task failed on the cluster ({type(exc).__name__})")
        if returned.kind != WRITTEN or returned.data is None:
            return Done(item, returned.kind, returned.error, returned.seconds, returned.usage)
        with signals.shielded():
            if returned.sidecar is not None:
                atomic_write_bytes(sidecar_path(job.output), returned.sidecar)
            atomic_write_bytes(job.output, returned.data)
        signals.raise_pending()
        return Done(item, WRITTEN, None, time.perf_counter() - started)


def _input(path: str, long_side: int) -> InputImage:
    """A photo read on the driver, to send: one larger than the picture at the picture's
    size (as the run frame would resize it first: the same pixels, a fraction of the bytes;
    a 12-megapixel photo is 36 MB decoded)."""
    photo = read_input(path)
    if max(photo.image.size) <= long_side:
        return photo
    return replace(photo, image=resize_long_side(photo.image, long_side))
