"""The server side of the web page, without Gradio: uploads, options, jobs.

Front ends run jobs in the run frame (:mod:`artstyle.runs`): this module only turns
uploads and form values into :class:`~artstyle.runs.Job` objects and the frame's
progress and outcomes into :class:`Update` objects for the page. It is plain Python and
tested as such:

* :func:`load_upload` checks an uploaded file (it must lie in the upload directory and
  stay under the byte and pixel caps, checked from the header before decoding) and
  decodes it with the library's typed errors;
* :class:`Studio` holds the one :class:`~artstyle.api.Stylizer` of the server and the
  jobs: :meth:`Studio.submit` validates a job, :meth:`Studio.run` runs it on a worker
  thread (one job at a time on the device) and yields :class:`Update` objects for the
  page, :meth:`Studio.stop` ends a job and keeps its current image.

The page itself (Gradio) is :mod:`artstyle.web.page`; ``artstyle serve`` is
:mod:`artstyle.cli.serve`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from artstyle.api import Result, Stylizer, make_config
from artstyle.choices import COLOR_MODES, STYLE_LOSSES
from artstyle.config import PRESETS, Config, preset_options
from artstyle.engine import Progress
from artstyle.errors import ArtstyleError, ConfigError, ImageReadError, Spelling, flag, spelled
from artstyle.files.convert import as_image, resize_long_side, tensor_to_image
from artstyle.runs import STOPPED as FRAME_STOPPED
from artstyle.runs import WRITTEN, InputImage, Outcome, Reporter, execute
from artstyle.runs import Job as FrameJob
from artstyle.web.limits import MEGABYTE, Limits

# --------------------------------------------------------------------------- #
# Limits and uploads
# --------------------------------------------------------------------------- #


def _megabytes(count: float) -> str:
    return f"{count / MEGABYTE:.3g} MB"


def limits_text(limits: Limits) -> str:
    """The caps, as the page states them."""
    return (
        f"On this server: images up to {_megabytes(limits.max_upload_bytes)} and {_megapixels(limits.max_pixels)}, "
        f"at most {limits.max_styles} paintings at once, pictures up to {limits.max_size} px "
        f"and {limits.max_iterations} iterations."
    )


def _megapixels(count: float) -> str:
    return f"{count / 1e6:.3g} MP"


#: A decoded uploaded image and what the output's metadata records of it.
Upload = InputImage


def load_upload(path: str, what: str, limits: Limits, upload_root: Path | None = None) -> Upload:
    """Read an uploaded image file, refusing anything outside ``upload_root`` or over the caps.

    The byte cap is checked from the file's size, the pixel cap from the image header
    (before any pixel is decoded); only then is the image decoded. ``what`` names the
    image in messages ("content image", "style image 2"). The file is only read: its
    name is kept as text for the metadata, never used to make a path.

    Raises ImageReadError with a one-line message for the page.
    """
    real = Path(os.path.realpath(path))
    if upload_root is not None and not real.is_relative_to(os.path.realpath(upload_root)):
        raise ImageReadError(f"The {what} is not an uploaded file.")
    try:
        with open(real, "rb") as handle:
            data = handle.read(limits.max_upload_bytes + 1)
    except OSError:
        raise ImageReadError(f"The {what} is no longer on the server; please upload it again.") from None
    if len(data) > limits.max_upload_bytes:
        raise ImageReadError(
            f"The {what} is larger than {_megabytes(limits.max_upload_bytes)}, the most this server accepts."
        )
    if not data:
        raise ImageReadError(f"The {what} is an empty file.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:  # reads the header only
                width, height = header.size
    except Image.DecompressionBombError:
        width, height = limits.max_pixels + 1, 1
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ImageReadError(f"The {what} is not an image file Pillow can read.") from None
    if width * height > limits.max_pixels:
        size = f"{width}x{height} pixels" if height > 1 else "too many pixels"
        raise ImageReadError(f"The {what} has {size}; this server accepts at most {_megapixels(limits.max_pixels)}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as opened:
            image = as_image(opened, what)
    return Upload(image, real.name, hashlib.sha256(data).hexdigest())


# --------------------------------------------------------------------------- #
# The options on the page
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Control:
    """One option on the page: a :class:`Config` field and how to show it.

    ``widget`` is ``slider``, ``number``, ``text`` or ``radio`` (with ``choices``).
    ``limit`` names the :class:`Limits` field that caps a slider on this server.
    The default is always the Config field's. An option that is off unless chosen
    (its default is None) has a ``switch``: the label of a tick box that turns it on;
    its slider rests at ``resting`` meanwhile (see :func:`switched_options`).
    """

    name: str
    label: str
    widget: str
    info: str = ""
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    limit: str | None = None
    choices: tuple[str, ...] = ()
    placeholder: str = ""
    switch: str = ""
    resting: float = 0.0


CONTROLS: tuple[Control, ...] = (
    Control("size", "Size (px)", "slider", "long side of the picture", 64, None, 1, limit="max_size"),
    Control(
        "iterations",
        "Iterations",
        "slider",
        "at the full size (0: the coarser scale upsampled); stop whenever it looks right",
        0,
        None,
        1,
        "max_iterations",
    ),
    Control(
        "coarse_iterations",
        "Coarse iterations",
        "slider",
        "at the smallest scale of coarse to fine",
        1,
        None,
        1,
        "max_iterations",
    ),
    Control("style_scale", "Style scale", "slider", "size of the brush strokes", 0.25, 2.0, 0.05),
    # A text box: Gradio's number box sends 0 when left empty, and empty must mean "a fresh seed".
    Control("seed", "Seed", "text", "blank: a fresh one, recorded in the download", placeholder="random"),
    Control(
        "strength",
        "Strength",
        "slider",
        "0: the recoloured photo, 1: the most painted; the same degree on any pair (the style weight is found)",
        0.0,
        1.0,
        0.05,
        switch="Set the painting's degree by strength (off: the style weight below)",
        resting=0.5,
    ),
    Control("style_weight", "Style weight", "number", "more: more painting (with strength off)", 0),
    Control("content_weight", "Content weight", "number", "more: more photo", 0),
    Control("tv_weight", "Smoothness weight", "number", "total-variation loss; more: smoother", 0),
    Control("style_weights", "Style blend", "text", "one weight per style image", placeholder="equal, or e.g. 3 1"),
    Control(
        "preserve_color",
        "Keep the photo's colours",
        "radio",
        "luminance: style in brightness only; histogram: painting recoloured",
        choices=COLOR_MODES,
    ),
    Control("style_loss", "Style loss", "radio", "gram: Gatys; meancov: mean and covariance", choices=STYLE_LOSSES),
    Control("pyramid", "Coarse to fine", "radio", "start small and grow to the full size", choices=("on", "off")),
)
#: How many options share a row on the page.
CONTROLS_PER_ROW = 4

_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Config)}
#: The page's label of each option it shows, and of the options it takes otherwise.
LABELS = {control.name: control.label for control in CONTROLS} | {
    "preset": "Preset",
    "style_masks": "Style masks",
}
_FLAG_LABELS = {flag(name): label for name, label in LABELS.items()}
#: The page's words for options in messages: its labels (an option it does not show, by its keyword).
PAGE_WORDS = Spelling(lambda option: LABELS.get(option, option))


def control_default(control: Control, limits: Limits) -> Any:
    """The Config default, within this server's limits."""
    default = _DEFAULTS[control.name]
    if control.limit is not None and isinstance(default, int):
        return min(default, getattr(limits, control.limit))
    return default


def switched_options(values: Mapping[str, Any], switched_on: Mapping[str, bool]) -> dict[str, Any]:
    """The page's option values, with ``off`` for each option whose switch is not ticked.

    ``switched_on`` maps the name of each control with a ``switch`` to its tick box.
    """
    return {name: value if switched_on.get(name, True) else "off" for name, value in values.items()}


def preset_values(preset: str, limits: Limits) -> dict[str, Any]:
    """The value under ``preset`` of each control that some preset sets (the others keep
    what the user chose), within this server's limits."""
    config = Config(**preset_options(preset))
    values = {}
    for control in CONTROLS:
        if any(control.name in options for options in PRESETS.values()):
            value = getattr(config, control.name)
            values[control.name] = min(value, getattr(limits, control.limit)) if control.limit else value
    return values


def page_message(error: ArtstyleError) -> str:
    """An error as the page says it: an option's problem under the page's label for it."""
    if isinstance(error, ConfigError) and error.option in LABELS:
        part = f" {error.part}" if error.part else ""
        return f"{LABELS[error.option]}{part}: {error.problem}"
    return str(error)


def for_page(message: str) -> str:
    """A message that starts with a CLI flag, with the page's label instead (kept for one
    release: the page itself uses :func:`page_message`)."""
    name, colon, rest = message.partition(":")
    return f"{_FLAG_LABELS[name]}:{rest}" if colon and name in _FLAG_LABELS else message


# --------------------------------------------------------------------------- #
# Jobs
# --------------------------------------------------------------------------- #

WAITING, RUNNING, DONE, STOPPED, FAILED = "waiting", "running", "done", "stopped", "failed"


@dataclass(frozen=True)
class Update:
    """What the page shows at one moment of a job.

    ``image`` is a picture to show (None: keep the one shown); ``result`` is the PNG to
    offer for download, which exists only until the job's generator is resumed.
    """

    state: str
    message: str
    step: int = 0
    iterations: int = 0
    losses: Mapping[str, float] = field(default_factory=dict)
    image: Image.Image | None = None
    result: Path | None = None

    @property
    def final(self) -> bool:
        return self.state in (DONE, STOPPED, FAILED)


class Job(Reporter):
    """One style-transfer request: validated inputs and the state of its run.

    It is the run frame's :class:`~artstyle.runs.Reporter` for its run: it keeps the
    latest step for the page and asks the frame to stop once :meth:`stop` was called.
    """

    def __init__(
        self,
        session: str,
        content: Upload,
        styles: list[Upload],
        config: Config,
        style_masks: list[Upload] | None = None,
    ) -> None:
        self.id = secrets.token_hex(8)
        self.session = session
        self.content = content
        self.styles = styles
        self.style_masks = style_masks
        self.config = config
        self.device = ""
        self.started_at: float | None = None
        self.latest: Progress | None = None
        self.outcome: Outcome | None = None
        self.error: str | None = None
        self.stop_reason: str | None = None
        self.running = False  # Studio.run has begun: it will forget the job when it ends
        self.directory: Path | None = None  # where the run writes its PNG
        self.finished = False
        self.condition = threading.Condition()

    @property
    def seed(self) -> int:
        return self.config.seed or 0

    @property
    def result(self) -> Result | None:
        """The finished run's :class:`~artstyle.api.Result` (None: stopped, failed or not done)."""
        return self.outcome.result if self.outcome is not None else None

    @property
    def total_iterations(self) -> int:
        """Over all scales of a coarse-to-fine run, as the last progress event counted them."""
        return self.latest.iterations if self.latest else self.config.iterations

    def frame_job(self, output: Path) -> FrameJob:
        """The run frame's job: these uploads, writing the PNG to ``output``."""
        return FrameJob(
            content=self.content,
            styles=list(self.styles),
            output=str(output),
            config=self.config,
            style_masks=list(self.style_masks) if self.style_masks else None,
        )

    def stop(self, reason: str) -> bool:
        """Ask the run to end after its current iteration; False if it has already ended."""
        with self.condition:
            if self.finished:
                return False
            if self.stop_reason is None:
                self.stop_reason = reason
            self.condition.notify_all()
            return True

    def progress(self, progress: Progress) -> None:
        """Keep the latest step (the run frame calls this after every iteration)."""
        with self.condition:
            self.latest = progress
            self.condition.notify_all()

    def stop_requested(self) -> bool:
        return self.stop_reason is not None

    def has_news(self, shown: int) -> bool:
        """True once the run has ended or gone past step ``shown`` (call with the condition held)."""
        return self.finished or (self.latest is not None and self.latest.step != shown)

    def finish(self) -> None:
        with self.condition:
            self.finished = True
            self.condition.notify_all()


def _log_to_stderr(message: str) -> None:
    print(f"artstyle serve: {message}", file=sys.stderr, flush=True)


def losses_text(losses: Mapping[str, float]) -> str:
    return " · ".join(f"{name} {losses[name]:.3g}" for name in ("content", "style", "tv", "total") if name in losses)


def _named(paths: Sequence[str], what: str) -> list[tuple[str, str]]:
    """Each path with its name in messages: ``style image``, or ``style image 2`` of several."""
    several = len(paths) > 1
    return [(path, f"{what} {i}" if several else what) for i, path in enumerate(paths, start=1)]


class Studio:
    """The server side of the page: one Stylizer, a registry of jobs, one job at a time.

    Args:
        stylizer: loads the network once and runs every job.
        limits: the caps on uploads, size and iterations.
        upload_root: uploads must lie inside this directory (None: anywhere).
        preview_interval: at most one preview per this many seconds (and one at the end).
        log: where one line per job start and end goes.
    """

    def __init__(
        self,
        stylizer: Stylizer,
        limits: Limits | None = None,
        *,
        upload_root: Path | None = None,
        preview_interval: float = 1.0,
        log: Callable[[str], None] = _log_to_stderr,
    ) -> None:
        if not preview_interval > 0:
            raise ConfigError(f"preview_interval: expected a positive number of seconds, got {preview_interval!r}")
        self.stylizer = stylizer
        self.limits = limits or Limits()
        self.upload_root = upload_root
        self.preview_interval = preview_interval
        self.log = log
        self._device = threading.Lock()  # held by the job running on the device
        self._registry = threading.Lock()
        self._jobs: dict[str, Job] = {}

    # ----- requests ------------------------------------------------------- #

    def config(self, options: Mapping[str, Any], styles: int) -> Config:
        """A validated Config from the page's values (blank values take the default, or the
        preset's: the value of ``preset``, if any, names one of :data:`~artstyle.config.PRESETS`);
        errors name the options by the page's labels."""
        with spelled(PAGE_WORDS):
            config = self._checked(options, styles)
        # Fixed now, so that a stopped run records the seed it used.
        return config if config.seed is not None else config.replace(seed=secrets.randbelow(2**31))

    def _checked(self, options: Mapping[str, Any], styles: int) -> Config:
        """The Config of the page's values, within this server's limits."""
        given = {name: value for name, value in options.items() if value is not None and value != ""}
        preset = given.pop("preset", None)
        config = make_config(preset, **given, weights=self.stylizer.weights_spec, device=self.stylizer.device_spec)
        if config.size > self.limits.max_size:
            raise ConfigError(f"this server makes pictures of at most {self.limits.max_size} px", option="size")
        for name in ("iterations", "coarse_iterations"):
            if getattr(config, name) > self.limits.max_iterations:
                raise ConfigError(f"this server runs at most {self.limits.max_iterations} iterations", option=name)
        if config.style_weights is not None and len(config.style_weights) != styles:
            count = f"{len(config.style_weights)} weights for {styles} style image{'s' * (styles != 1)}"
            raise ConfigError(count, option="style_weights")
        return config

    def submit(
        self,
        session: str,
        content: str | None,
        styles: Sequence[str],
        options: Mapping[str, Any],
        style_masks: Sequence[str] | None = None,
    ) -> Job:
        """Check a request and register its job (which waits for :meth:`run`).

        ``style_masks``, when given, are one greyscale mask per style image (white: that
        style applies there). Raises ConfigError or ImageReadError with a message for the page.
        """
        if not content:
            raise ConfigError("Choose a content image first (upload one or pick an example).")
        if not styles:
            raise ConfigError("Add at least one style image (upload or pick an example).")
        if len(styles) > self.limits.max_styles:
            raise ConfigError(f"Use at most {self.limits.max_styles} style images.")
        if style_masks and len(style_masks) != len(styles):
            problem = f"{len(style_masks)} masks for {len(styles)} style image{'s' * (len(styles) != 1)}"
            raise ConfigError(problem, option="style_masks")
        config = self.config(options, len(styles))
        # Only the resized pictures wait in the queue, not the full-size uploads.
        content_upload = self._upload(content, "content image", config.size)
        style_size = max(1, round(config.size * config.style_scale))
        style_uploads = [self._upload(path, name, style_size) for path, name in _named(styles, "style image")]
        masks = [self._upload(path, name, config.size) for path, name in _named(style_masks or [], "style mask")]
        job = Job(session, content_upload, style_uploads, config, masks or None)
        with self._registry:
            self._jobs[job.id] = job
        return job

    def _upload(self, path: str, what: str, long_side: int) -> Upload:
        upload = load_upload(path, what, self.limits, self.upload_root)
        return dataclasses.replace(upload, image=resize_long_side(upload.image, long_side))

    def job(self, job_id: str | None) -> Job | None:
        with self._registry:
            return self._jobs.get(job_id or "")

    def stop(self, job_id: str | None, reason: str = "stopped") -> bool:
        """End a job after its current iteration, keeping its image; False if there is none."""
        job = self.job(job_id)
        return job is not None and job.stop(reason)

    def close_session(self, session: str, reason: str = "browser closed") -> int:
        """Stop every job of a browser session (its tab was closed); returns how many.

        Jobs that never began to run are forgotten at once; running ones when they end.
        """
        with self._registry:
            jobs = [job for job in self._jobs.values() if job.session == session]
            for job in jobs:
                if not job.running:
                    del self._jobs[job.id]
        return sum(job.stop(reason) for job in jobs)

    def _forget(self, job: Job) -> None:
        with self._registry:
            self._jobs.pop(job.id, None)

    # ----- running -------------------------------------------------------- #

    def run(self, job: Job) -> Generator[Update, None, None]:
        """Run ``job`` on a worker thread and yield what the page should show.

        Yields a waiting or progress update at most every ``preview_interval`` seconds,
        then one final update (done, stopped or failed). Closing the generator (the
        browser went away) stops the job. The final PNG lives in a private temporary
        directory that is removed when the generator is resumed or closed.
        """
        job.running = True
        worker = threading.Thread(target=self._work, args=(job,), name=f"artstyle-job-{job.id}", daemon=True)
        worker.start()
        try:
            shown = 0
            while True:
                with job.condition:
                    job.condition.wait_for(functools.partial(job.has_news, shown), timeout=self.preview_interval)
                    finished, latest = job.finished, job.latest
                if finished:
                    break
                if latest is None:  # not started yet (another job may hold the device)
                    yield Update(WAITING, "Waiting for the device…")
                    continue  # the first iteration is shown as soon as it comes
                if latest.step != shown:
                    shown = latest.step
                    yield Update(
                        RUNNING,
                        f"Iteration {latest.step} of {latest.iterations}",
                        latest.step,
                        latest.iterations,
                        dict(latest.losses),
                        tensor_to_image(latest.image),
                    )
                else:  # a long step: nothing new to show yet
                    continue
                with job.condition:  # at most one preview per interval
                    job.condition.wait_for(lambda: job.finished, timeout=self.preview_interval)
            yield from self._final(job)
        finally:
            job.stop("browser closed")
            self._forget(job)

    def _work(self, job: Job) -> None:
        """The worker thread: the job's run in the run frame, one job at a time on the device."""
        try:
            with self._device:
                if job.stop_reason is not None:
                    return
                job.started_at = time.monotonic()
                job.device = str(self.stylizer.device)
                size, iterations = job.config.size, job.config.iterations
                self.log(f"job {job.id}: started ({size} px, {iterations} iterations, seed {job.seed})")
                job.directory = Path(tempfile.mkdtemp(prefix="artstyle-job-"))
                try:
                    with spelled(PAGE_WORDS):
                        outcome = execute(
                            job.frame_job(job.directory / f"artstyle-{job.seed}.png"), job, stylizer=self.stylizer
                        )
                except Exception as exc:  # a server must outlive any one job
                    job.error = f"unexpected error: {type(exc).__name__}: {exc}"
                    traceback.print_exc()
                else:
                    job.outcome = outcome
                    job.error = _failure(outcome)
        finally:
            job.finish()
            self.log(f"job {job.id}: {self._outcome(job)}")

    @staticmethod
    def _outcome(job: Job) -> str:
        step = f"at iteration {job.latest.step}/{job.latest.iterations}" if job.latest else "before it started"
        if job.error is not None:
            return f"failed {step}: {job.error}"
        if job.result is not None:
            return f"done ({job.total_iterations} iterations)"
        return f"stopped ({job.stop_reason}) {step}"

    def _final(self, job: Job) -> Iterator[Update]:
        """The last update of a job, with the PNG to download while it is shown (the job's
        directory is removed when the generator is resumed or closed)."""
        latest, total, outcome = job.latest, job.total_iterations, job.outcome
        try:
            if job.error is not None:
                yield Update(FAILED, job.error, latest.step if latest else 0, total)
            elif outcome is None or outcome.written is None or latest is None:
                yield Update(STOPPED, "Stopped before the first iteration; there is no picture to download.")
            elif outcome.result is not None:
                seconds = time.monotonic() - (job.started_at or time.monotonic())
                message = f"Done: {total} iterations in {seconds:.0f} s, seed {job.seed}."
                yield Update(
                    DONE, message, latest.step, total, dict(latest.losses), outcome.result.image, Path(outcome.written)
                )
            else:
                message = (
                    f"Stopped at iteration {latest.step} of {latest.iterations}; kept that picture (seed {job.seed})."
                )
                image = tensor_to_image(latest.image)
                yield Update(STOPPED, message, latest.step, total, dict(latest.losses), image, Path(outcome.written))
        finally:
            if job.directory is not None:
                shutil.rmtree(job.directory, ignore_errors=True)


def _failure(outcome: Outcome) -> str | None:
    """The page's message for a run that did not end with a picture as asked (None: it did)."""
    if outcome.kind in (WRITTEN, FRAME_STOPPED):
        return None
    if outcome.error is None:  # interrupted: only a signal to the server does that
        return f"The run was {outcome.kind}."
    if isinstance(outcome.error, ArtstyleError):
        return page_message(outcome.error)
    return f"{type(outcome.error).__name__}: {outcome.error}"
