"""The web page: ``artstyle serve`` starts a Gradio page with a live preview.

Front ends call the API, the API calls the engine: this module only turns uploads and
form values into API calls and :class:`~artstyle.engine.Progress` into page updates.

The parts that do not need Gradio are plain Python and tested as such:

* :func:`load_upload` checks an uploaded file (it must lie in the upload directory and
  stay under the byte and pixel caps, checked from the header before decoding) and
  decodes it with the library's typed errors;
* :class:`Studio` holds the one :class:`~artstyle.api.Stylizer` of the server and the
  jobs: :meth:`Studio.submit` validates a job, :meth:`Studio.run` runs it on a worker
  thread (one job at a time on the device) and yields :class:`Update` objects for the
  page, :meth:`Studio.stop` ends a job and keeps its current image.

:func:`build_app` lays out the page with Gradio, imported only there (and in
:func:`serve_main`), so the CLI and ``import artstyle`` never need it.

This module does not use ``from __future__ import annotations``: Gradio finds the
``gr.Request`` parameter of an event handler by evaluating its annotation, which must
therefore be a real object, not a string naming a lazily imported module.
"""

import argparse
import contextlib
import dataclasses
import functools
import hashlib
import html
import importlib.util
import io
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

from PIL import Image, UnidentifiedImageError

from artstyle.api import Result, Stylizer, make_config
from artstyle.color import COLOR_MODES
from artstyle.config import Config, flag
from artstyle.engine import Progress
from artstyle.errors import ArtstyleError, ConfigError, ImageReadError
from artstyle.imageio import as_image, resize_long_side, save_image, tensor_to_image
from artstyle.losses import STYLE_LOSSES

if TYPE_CHECKING:
    import gradio as gr

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
INSTALL_HINT = "pip install -e '.[web]'"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MEGABYTE = 2**20  # as Gradio counts them

#: The repository's example images (present in a source checkout, as after ``pip install -e``).
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


# --------------------------------------------------------------------------- #
# Limits and uploads
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Limits:
    """What one job may ask of the server."""

    max_upload_bytes: int = 25 * MEGABYTE
    max_pixels: int = 50_000_000
    max_size: int = 1024
    max_iterations: int = 1000
    max_styles: int = 4

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{item.name}: expected a whole number of at least 1, got {value!r}")


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


@dataclass(frozen=True)
class Upload:
    """A decoded uploaded image and what the output's metadata records of it."""

    image: Image.Image
    name: str
    sha256: str

    def describe(self) -> dict[str, str]:
        return {"file": self.name, "sha256": self.sha256}


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
    The default is always the Config field's.
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


CONTROLS: tuple[Control, ...] = (
    Control("size", "Size (px)", "slider", "long side of the picture", 64, None, 1, limit="max_size"),
    Control(
        "iterations",
        "Iterations",
        "slider",
        "at the full size; stop whenever it looks right",
        1,
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
    Control("style_weight", "Style weight", "number", "more: more painting", 0),
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
_LABELS = {flag(control.name): control.label for control in CONTROLS}


def control_default(control: Control, limits: Limits) -> Any:
    """The Config default, within this server's limits."""
    default = _DEFAULTS[control.name]
    if control.limit is not None and isinstance(default, int):
        return min(default, getattr(limits, control.limit))
    return default


def for_page(message: str) -> str:
    """An error message with the CLI flag it starts with replaced by the page's label."""
    name, colon, rest = message.partition(":")
    return f"{_LABELS[name]}:{rest}" if colon and name in _LABELS else message


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


class _Stopped(Exception):
    """Raised from the progress callback to end a run that was asked to stop."""


class Job:
    """One style-transfer request: validated inputs and the state of its run."""

    def __init__(self, session: str, content: Upload, styles: list[Upload], config: Config) -> None:
        self.id = secrets.token_hex(8)
        self.session = session
        self.content = content
        self.styles = styles
        self.config = config
        self.device = ""
        self.started_at: float | None = None
        self.latest: Progress | None = None
        self.result: Result | None = None
        self.error: str | None = None
        self.stop_reason: str | None = None
        self.running = False  # Studio.run has begun: it will forget the job when it ends
        self.finished = False
        self.condition = threading.Condition()

    @property
    def seed(self) -> int:
        return self.config.seed or 0

    @property
    def total_iterations(self) -> int:
        """Over all scales of a coarse-to-fine run, as the last progress event counted them."""
        return self.latest.iterations if self.latest else self.config.iterations

    def inputs(self) -> dict[str, Any]:
        return {"content": self.content.describe(), "styles": [style.describe() for style in self.styles]}

    def stop(self, reason: str) -> bool:
        """Ask the run to end after its current iteration; False if it has already ended."""
        with self.condition:
            if self.finished:
                return False
            if self.stop_reason is None:
                self.stop_reason = reason
            self.condition.notify_all()
            return True

    def on_progress(self, progress: Progress) -> None:
        """The run's progress callback: keeps the latest step, raises when asked to stop."""
        with self.condition:
            self.latest = progress
            self.condition.notify_all()
            if self.stop_reason is not None:
                raise _Stopped

    def has_news(self, shown: int) -> bool:
        """True once the run has ended or gone past step ``shown`` (call with the condition held)."""
        return self.finished or (self.latest is not None and self.latest.step != shown)

    def finish(self) -> None:
        with self.condition:
            self.finished = True
            self.condition.notify_all()


def _log_to_stderr(message: str) -> None:
    print(f"artstyle serve: {message}", file=sys.stderr, flush=True)


def _losses_text(losses: Mapping[str, float]) -> str:
    return " · ".join(f"{name} {losses[name]:.3g}" for name in ("content", "style", "tv", "total") if name in losses)


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
        """A validated Config from the page's values (blank values take the default)."""
        given = {name: value for name, value in options.items() if value is not None and value != ""}
        config = make_config(**given, weights=self.stylizer.weights_spec, device=self.stylizer.device_spec)
        if config.size > self.limits.max_size:
            raise ConfigError(f"--size: this server makes pictures of at most {self.limits.max_size} px")
        for name in ("iterations", "coarse_iterations"):
            if getattr(config, name) > self.limits.max_iterations:
                raise ConfigError(f"{flag(name)}: this server runs at most {self.limits.max_iterations} iterations")
        if config.style_weights is not None and len(config.style_weights) != styles:
            raise ConfigError(
                f"--style-weights: {len(config.style_weights)} weights for {styles} style image{'s' * (styles != 1)}"
            )
        # Fixed now, so that a stopped run records the seed it used.
        return config if config.seed is not None else config.replace(seed=secrets.randbelow(2**31))

    def submit(self, session: str, content: str | None, styles: Sequence[str], options: Mapping[str, Any]) -> Job:
        """Check a request and register its job (which waits for :meth:`run`).

        Raises ConfigError or ImageReadError with a message for the page.
        """
        if not content:
            raise ConfigError("Choose a content image first (upload one or pick an example).")
        if not styles:
            raise ConfigError("Add at least one style image (upload or pick an example).")
        if len(styles) > self.limits.max_styles:
            raise ConfigError(f"Use at most {self.limits.max_styles} style images.")
        config = self.config(options, len(styles))
        limits, root = self.limits, self.upload_root
        several = len(styles) > 1
        content_upload = load_upload(content, "content image", limits, root)
        style_uploads = [
            load_upload(path, f"style image {i}" if several else "style image", limits, root)
            for i, path in enumerate(styles, start=1)
        ]
        # Only the resized pictures wait in the queue, not the full-size uploads.
        content_upload = dataclasses.replace(content_upload, image=resize_long_side(content_upload.image, config.size))
        style_size = max(1, round(config.size * config.style_scale))
        style_uploads = [dataclasses.replace(s, image=resize_long_side(s.image, style_size)) for s in style_uploads]
        job = Job(session, content_upload, style_uploads, config)
        with self._registry:
            self._jobs[job.id] = job
        return job

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
                if latest is None:  # another job still holds the device
                    yield Update(WAITING, "Waiting for the device…")
                elif latest.step != shown:
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
        try:
            with self._device:
                if job.stop_reason is not None:
                    return
                job.started_at = time.monotonic()
                job.device = str(self.stylizer.device)
                size, iterations = job.config.size, job.config.iterations
                self.log(f"job {job.id}: started ({size} px, {iterations} iterations, seed {job.seed})")
                try:
                    job.result = self.stylizer.run(
                        job.content.image, [s.image for s in job.styles], job.config, progress=job.on_progress
                    )
                except _Stopped:
                    pass
                except ArtstyleError as exc:
                    job.error = for_page(str(exc))
                except Exception as exc:  # a server must outlive any one job
                    job.error = f"unexpected error: {type(exc).__name__}: {exc}"
                    traceback.print_exc()
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
        latest = job.latest
        total = job.total_iterations
        if job.error is not None:
            yield Update(FAILED, job.error, latest.step if latest else 0, total)
            return
        if job.result is None and latest is None:
            yield Update(STOPPED, "Stopped before the first iteration; there is no picture to download.")
            return
        if job.result is not None:
            image, metadata = job.result.image, job.result.metadata(job.inputs())
            seconds = time.monotonic() - (job.started_at or time.monotonic())
            state, message = DONE, f"Done: {total} iterations in {seconds:.0f} s, seed {job.seed}."
        else:
            assert latest is not None
            image = tensor_to_image(latest.image)
            metadata = Result(image, job.config, job.seed, job.device).metadata(job.inputs())
            metadata["stopped_at"] = latest.step
            state = STOPPED
            message = f"Stopped at iteration {latest.step} of {latest.iterations}; kept that picture (seed {job.seed})."
        losses = dict(latest.losses) if latest else {}
        step = latest.step if latest else total
        with tempfile.TemporaryDirectory(prefix="artstyle-job-") as directory:
            path = Path(directory) / f"artstyle-{job.seed}.png"
            try:
                save_image(image, path, metadata)
            except ArtstyleError as exc:
                yield Update(FAILED, f"The picture could not be saved for download: {exc}", step, total)
                return
            yield Update(state, message, step, total, losses, image, path)


def status_html(update: Update | None) -> str:
    """The status panel: a progress bar, what is happening and the current losses."""
    if update is None:
        return '<div class="artstyle-status"><p>Choose a photo and a painting, then press Start.</p></div>'
    parts = [f'<div class="artstyle-status" data-state="{update.state}">']
    if update.iterations:
        parts.append(f'<progress max="{update.iterations}" value="{update.step}"></progress>')
    parts.append(f'<p class="artstyle-message">{html.escape(update.message)}</p>')
    if update.losses:
        parts.append(f'<p class="artstyle-losses">Losses: {html.escape(_losses_text(update.losses))}</p>')
    parts.append("</div>")
    return "".join(parts)


# --------------------------------------------------------------------------- #
# The page
# --------------------------------------------------------------------------- #

_CSS = """
.artstyle-status progress { width: 100%; height: 0.9em; appearance: none; border: none; border-radius: 4px;
  overflow: hidden; background: var(--neutral-200, #e5e7eb); }
.artstyle-status progress::-webkit-progress-bar { background: var(--neutral-200, #e5e7eb); }
.artstyle-status progress::-webkit-progress-value { background: var(--color-accent, #f97316); }
.artstyle-status progress::-moz-progress-bar { background: var(--color-accent, #f97316); }
.artstyle-status[data-state="failed"] .artstyle-message { color: #b91c1c; font-weight: 600; }
.artstyle-losses { font-family: monospace; font-size: 0.9em; }
#preview img { width: 100%; height: 100%; object-fit: contain; }
"""

_INTRO = """# artstyle
Repaint a photo in the style of one or more paintings (neural style transfer, Gatys et al. 2016).
Upload a photo and a painting (or click the examples), press **Start**, watch the picture form,
and press **Stop** when you like it: the current picture is kept. Jobs run one at a time.
"""


def example_images(directory: Path = EXAMPLES_DIR) -> tuple[list[str], list[str]]:
    """The example content and style images, when the examples folder is there."""

    def images(folder: Path) -> list[str]:
        if not folder.is_dir():
            return []
        return [str(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]

    return images(directory / "content"), images(directory / "styles")


def _make_control(gr: Any, control: Control, limits: Limits) -> Any:
    value = control_default(control, limits)
    common: dict[str, Any] = {"label": control.label, "info": control.info, "elem_id": f"option-{control.name}"}
    if control.widget == "slider":
        maximum = getattr(limits, control.limit) if control.limit else control.maximum
        return gr.Slider(minimum=control.minimum, maximum=maximum, step=control.step, value=value, **common)
    if control.widget == "number":
        return gr.Number(value=value, minimum=control.minimum, placeholder=control.placeholder, **common)
    if control.widget == "radio":
        if isinstance(value, bool):  # on/off switches (Config accepts both spellings)
            value = "on" if value else "off"
        return gr.Radio(choices=list(control.choices), value=value, **common)
    if control.widget == "text":
        return gr.Textbox(value="" if value is None else str(value), placeholder=control.placeholder, **common)
    raise ValueError(f"unknown widget {control.widget!r} for {control.name}")


@dataclass
class _Page:
    """The page's components that the event handlers read or write."""

    job_id: Any
    content: Any
    styles: Any
    controls: dict[str, Any]
    preview: Any
    status: Any
    start: Any
    stop: Any
    download: Any


def build_app(studio: Studio, examples: tuple[list[str], list[str]] | None = None) -> "gr.Blocks":
    """The page, wired to ``studio``. Needs Gradio."""
    import gradio as gr

    app = gr.Blocks(title="artstyle", analytics_enabled=False, delete_cache=(1800, 7200))
    with app:
        page = _layout(gr, studio.limits, example_images() if examples is None else examples)
        _wire(gr, app, studio, page)
    return app


def _layout(gr: Any, limits: Limits, examples: tuple[list[str], list[str]]) -> _Page:
    content_examples, style_examples = examples
    job_id = gr.State(None)
    gr.Markdown(f"{_INTRO}\n{limits_text(limits)}")
    with gr.Row(equal_height=False):
        with gr.Column():
            content = gr.Image(
                label="Content image (a photo)",
                type="filepath",
                image_mode=None,  # so Gradio hands over the file without decoding it
                sources=["upload", "clipboard"],
                height=260,
                elem_id="content",
            )
            styles = gr.Gallery(
                label="Style images (one or more paintings)",
                type="filepath",
                file_types=["image"],
                interactive=True,
                columns=4,
                height=200,
                elem_id="styles",
            )
            if content_examples:
                gr.Examples(
                    [[p] for p in content_examples], inputs=[content], label="Example photos", elem_id="example-photos"
                )
            if style_examples:
                gr.Examples(
                    [[[p]] for p in style_examples],
                    inputs=[styles],
                    label="Example paintings",
                    elem_id="example-paintings",
                )
        with gr.Column():
            preview = gr.Image(label="Picture", type="pil", interactive=False, height=420, elem_id="preview")
            status = gr.HTML(status_html(None), elem_id="status")
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="start")
                stop = gr.Button("Stop", variant="stop", interactive=False, elem_id="stop")
            download = gr.DownloadButton("Download PNG (with its parameters)", visible=False, elem_id="download")
    controls: dict[str, Any] = {}
    with gr.Accordion("Options", open=True):
        for first in range(0, len(CONTROLS), CONTROLS_PER_ROW):
            with gr.Row():
                for control in CONTROLS[first : first + CONTROLS_PER_ROW]:
                    controls[control.name] = _make_control(gr, control, limits)
    return _Page(job_id, content, styles, controls, preview, status, start, stop, download)


def _show(gr: Any, update: Update) -> tuple[Any, ...]:
    """An update as the values of (picture, status, download, start, stop)."""
    picture = update.image if update.image is not None else gr.skip()
    if not update.final:
        return picture, status_html(update), gr.skip(), gr.skip(), gr.skip()
    result = gr.DownloadButton(value=str(update.result), visible=True) if update.result else gr.skip()
    return picture, status_html(update), result, gr.Button(interactive=True), gr.Button(interactive=False)


def _wire(gr: Any, app: Any, studio: Studio, page: _Page) -> None:
    def submit(values: dict[Any, Any], request: gr.Request) -> tuple[Any, ...]:
        paths = [item[0] if isinstance(item, (tuple, list)) else item for item in values[page.styles] or []]
        options = {name: values[component] for name, component in page.controls.items()}
        try:
            job = studio.submit(request.session_hash or "", values[page.content], paths, options)
        except ArtstyleError as exc:
            raise gr.Error(html.escape(for_page(str(exc))), print_exception=False) from None
        waiting = Update(WAITING, "Waiting in the queue…", 0, job.config.iterations)
        hidden = gr.DownloadButton(visible=False)
        return job.id, status_html(waiting), hidden, gr.Button(interactive=False), gr.Button(interactive=True)

    def run(job_id: str | None) -> Iterator[tuple[Any, ...]]:
        job = studio.job(job_id)
        if job is None:
            yield _show(gr, Update(FAILED, "This job is gone from the server; press Start again."))
            return
        with contextlib.closing(studio.run(job)) as updates:  # Gradio closes us when the browser goes away
            for update in updates:
                yield _show(gr, update)
                if update.state == FAILED:
                    raise gr.Error(html.escape(update.message), print_exception=False)

    def request_stop(job_id: str | None) -> None:
        studio.stop(job_id, "stopped")

    def unload(request: gr.Request) -> None:
        studio.close_session(request.session_hash or "")

    inputs = {page.content, page.styles, *page.controls.values()}
    outputs = [page.preview, page.status, page.download, page.start, page.stop]
    submitted = page.start.click(submit, inputs, [page.job_id, *outputs[1:]], show_progress="hidden", api_name="submit")
    submitted.success(
        run,
        [page.job_id],
        outputs,
        concurrency_limit=1,
        concurrency_id="device",
        show_progress="full",
        show_progress_on=[page.status],
        api_name="run",
    )
    page.stop.click(request_stop, [page.job_id], None, concurrency_limit=None, show_progress="hidden", api_name="stop")
    app.unload(unload)


# --------------------------------------------------------------------------- #
# artstyle serve
# --------------------------------------------------------------------------- #


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage dump) with exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _positive(kind: type[int] | type[float]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return parse


def build_serve_parser() -> argparse.ArgumentParser:
    limits = Limits()
    parser = _Parser(
        prog="artstyle serve",
        description="Start the artstyle web page (live preview, Start/Stop, download). Needs: " + INSTALL_HINT,
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}, "
        "this computer only; 0.0.0.0 opens it to the network, with no login)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    parser.add_argument("--weights", default="bundled", help="VGG19 weights, as for the artstyle command")
    parser.add_argument("--device", default="auto", help="compute device, as for the artstyle command")
    parser.add_argument(
        "--max-upload-mb",
        type=_positive(float),
        default=limits.max_upload_bytes / MEGABYTE,
        metavar="MB",
        help="largest upload accepted (default: %(default)g)",
    )
    parser.add_argument(
        "--max-megapixels",
        type=_positive(float),
        default=limits.max_pixels / 1e6,
        metavar="MP",
        help="most pixels in an uploaded image (default: %(default)g)",
    )
    parser.add_argument(
        "--max-size",
        type=_positive(int),
        default=limits.max_size,
        metavar="PX",
        help="largest picture a job may ask for (default: %(default)s)",
    )
    parser.add_argument(
        "--max-iterations",
        type=_positive(int),
        default=limits.max_iterations,
        metavar="N",
        help="most iterations a job may ask for (default: %(default)s)",
    )
    return parser


class _Terminated(Exception):
    """SIGTERM: stop the server cleanly."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def gradio_installed() -> bool:
    """Whether Gradio can be imported (found without importing it, which takes seconds)."""
    try:
        return importlib.util.find_spec("gradio") is not None
    except (ImportError, ValueError):  # ValueError: a module entry without a spec
        return False


def serve_main(argv: Sequence[str]) -> int:
    """``artstyle serve``: returns the exit code."""
    parser = build_serve_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if not 0 < args.port < 65536:
        print(f"artstyle serve: error: --port: expected 1 to 65535, got {args.port}", file=sys.stderr)
        return EXIT_USAGE
    if not gradio_installed():
        print(
            f"artstyle serve: error: the web page needs Gradio, which is not installed: {INSTALL_HINT}", file=sys.stderr
        )
        return EXIT_FAILED
    limits = Limits(
        max_upload_bytes=round(args.max_upload_mb * MEGABYTE),
        max_pixels=round(args.max_megapixels * 1e6),
        max_size=args.max_size,
        max_iterations=args.max_iterations,
    )
    try:
        stylizer = Stylizer(weights=args.weights, device=args.device)
        stylizer.network(Config().layers, "max")  # load and check the weights now, not at the first job
    except ConfigError as exc:
        print(f"artstyle serve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ArtstyleError as exc:
        print(f"artstyle serve: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return _serve(args.host, args.port, stylizer, limits)


def _serve(host: str, port: int, stylizer: Stylizer, limits: Limits) -> int:
    # Uploads and the files the page shows live in a private directory, removed on exit.
    private = Path(tempfile.mkdtemp(prefix="artstyle-serve-"))
    os.environ["GRADIO_TEMP_DIR"] = str(private)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    app = None
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main else None
    try:
        studio = Studio(stylizer, limits, upload_root=private)
        app = build_app(studio)
        try:
            app.launch(
                server_name=host,
                server_port=port,
                prevent_thread_lock=True,
                share=False,
                max_file_size=limits.max_upload_bytes,
                quiet=True,
                show_error=False,
                footer_links=[],
                enable_monitoring=False,
                mcp_server=False,
                ssr_mode=False,
                run_history=False,
                css=_CSS,
            )
        except OSError:  # Gradio's message names its own settings, not ours
            where = f"{host}:{port}"
            print(
                f"artstyle serve: error: cannot listen on {where} (the port is taken, or the address is not this "
                "machine's); try another --port or --host",
                file=sys.stderr,
            )
            return EXIT_FAILED
        shown = f"[{host}]" if ":" in host else host
        print(f"artstyle serve: the page is at http://{shown}:{port}/ (Ctrl-C stops the server)", flush=True)
        if host not in ("127.0.0.1", "localhost", "::1"):
            print(
                "artstyle serve: warning: anyone who can reach this address can use the page; it has no login",
                file=sys.stderr,
                flush=True,
            )
        threading.Event().wait()
    except KeyboardInterrupt:
        print("artstyle serve: interrupted; server stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _Terminated:
        print("artstyle serve: terminated; server stopped", file=sys.stderr)
        return EXIT_OK
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        if app is not None:
            with contextlib.suppress(Exception):
                app.close(verbose=False)
        shutil.rmtree(private, ignore_errors=True)
    return EXIT_OK
