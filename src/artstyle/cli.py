"""The ``artstyle`` command: ``artstyle CONTENT STYLE [STYLE ...] -o OUTPUT [options]``.

The only place that prints, shows progress and chooses exit codes:
0 success, 1 a run that failed (unreadable or unusable input or output file,
weights, device, disk, out of memory, a diverging optimisation, a missing or
mismatching checkpoint), 2 a bad command line or option value, 130 interrupted by
Ctrl-C and 143 stopped by SIGTERM (in both cases the current image is written to the
output first). ``--checkpoint-every N`` keeps the run's state in ``OUTPUT.ckpt`` and
``--resume`` continues from it (see :mod:`artstyle.checkpoint`). ``artstyle reproduce
OUTPUT`` re-runs a picture from the parameters embedded in it (see
:mod:`artstyle.reproduce`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import secrets
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TextIO, cast

import torch
from tqdm import tqdm

from artstyle import __version__
from artstyle.api import Result, Stylizer
from artstyle.checkpoint import checkpoint_path, fingerprint, read_checkpoint, save_checkpoint
from artstyle.config import PRESETS, Config, LayerWeights, flag, format_layers, preset_options
from artstyle.engine import Progress, RunState
from artstyle.errors import ArtstyleError, ArtstyleWarning, CheckpointError, ConfigError, DivergedError
from artstyle.imageio import (
    DEFAULT_MAX_PIXELS,
    check_bit_depth,
    check_jpeg_quality,
    check_max_pixels,
    check_output_path,
    pixel_limit,
    read_image,
    save_image,
)
from artstyle.tiling import min_tile_size

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage dump) with exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def add_output_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The flags that say how files are read and written (not part of :class:`Config`)."""
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"refuse input images of more than N pixels, checked before decoding (default: {DEFAULT_MAX_PIXELS})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The CLI flags, generated from the fields of :class:`Config` (the one source of defaults)."""
    parser = Parser(
        prog="artstyle",
        description="Repaint a content image in the style of one or more style images (Gatys et al. 2016). "
        "'artstyle reproduce OUTPUT' re-runs a picture from the parameters embedded in it; "
        "'artstyle serve' starts the web page (needs the [web] extra).",
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
    runs = parser.add_argument_group("interrupted and failed runs")
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
    parser.add_argument(
        "--style-masks",
        nargs="+",
        metavar="MASK",
        help="one greyscale mask per style image: where it is white, that style applies",
    )
    parser.add_argument("--content-mask", metavar="MASK", help="greyscale mask: where it is white, content is kept")
    parser.add_argument("--version", action="version", version=f"artstyle {__version__}")
    files = parser.add_argument_group("input and output files")
    files.add_argument(
        "--bit-depth",
        type=int,
        default=8,
        metavar="8|16",
        help="bits per channel of a .png or .tif (default: 8)",
    )
    files.add_argument(
        "--jpeg-quality",
        type=int,
        default=95,
        metavar="Q",
        help="quality 1-100 of a .jpg or .webp (default: 95)",
    )
    files.add_argument("--no-clobber", action="store_true", help="never overwrite an existing output file")
    add_output_options(files)
    group = parser.add_argument_group("style transfer options")
    group.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        help="a bundle of options, overridden by any given here: draft (a quick preview), "
        "default, fine (more iterations)",
    )
    for field in fields(Config):
        meta = field.metadata
        default = field.default if field.default is not MISSING else None
        if field.name in ("content_layers", "style_layers"):
            default = format_layers(cast(LayerWeights, default))
        if isinstance(default, bool):
            text = f"{meta['help']} (default: {'on' if default else 'off'})"
            group.add_argument(
                flag(field.name), dest=field.name, action=argparse.BooleanOptionalAction, default=None, help=text
            )
            continue
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


# --------------------------------------------------------------------------- #
# Signals, warnings and errors: the frame around every command
# --------------------------------------------------------------------------- #


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM (as ``KeyboardInterrupt`` is by SIGINT)."""


class Signals:
    """SIGINT raises ``KeyboardInterrupt`` and SIGTERM :class:`Terminated`, except inside
    :meth:`shielded`, where a signal is only remembered: a file being written is finished.

    Handlers are only installed in the main thread, and never for a signal that is
    ignored (a background job's SIGINT stays ignored, as the shell meant it).
    """

    def __init__(self) -> None:
        self.pending: int | None = None  # a signal number
        self._depth = 0
        self._saved: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._depth:
            if self.pending is None:
                self.pending = int(signum)
            return
        raise _interruption(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator[Signals]:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous = signal.getsignal(signum)
                if previous is not signal.SIG_IGN:
                    self._saved[signum] = previous
                    signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            for number, previous in self._saved.items():
                signal.signal(number, signal.SIG_DFL if previous is None else previous)

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def raise_pending(self) -> None:
        """Act on a signal that arrived while shielded."""
        if self.pending is not None and not self._depth:
            signum, self.pending = self.pending, None
            raise _interruption(signum)


def _interruption(signum: int) -> BaseException:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _exit_code(stop: BaseException) -> int:
    return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED


def _stop_word(stop: BaseException) -> str:
    return "stopped by SIGTERM" if isinstance(stop, Terminated) else "interrupted"


def _print_error(message: str) -> None:
    tqdm.write(f"artstyle: error: {message}", file=sys.stderr)


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Every warning becomes one ``artstyle: warning:`` line on stderr."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        text = str(message).strip().splitlines()
        tqdm.write(f"artstyle: warning: {text[0] if text else category.__name__}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always", ArtstyleWarning)
        warnings.showwarning = show
        yield


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    patterns = ("out of memory", "can't allocate memory", "not enough memory")
    return isinstance(exc, RuntimeError) and any(pattern in text for pattern in patterns)


def guarded(body: Callable[[Signals], int], max_pixels: object) -> int:
    """Run a command's ``body`` with signal handling, one-line warnings and the pixel limit,
    turning every expected failure into a one-line message and an exit code."""
    signals = Signals()
    try:
        with _warnings_as_lines(), signals.installed():
            limit = check_max_pixels(max_pixels)
            with pixel_limit(limit):
                return body(signals)
    except ConfigError as exc:
        _print_error(str(exc))
        return EXIT_USAGE
    except ArtstyleError as exc:
        _print_error(str(exc))
        return EXIT_FAILED
    except (KeyboardInterrupt, Terminated) as stop:
        print(f"artstyle: {_stop_word(stop)}; nothing written", file=sys.stderr)
        return _exit_code(stop)
    except OSError as exc:  # a file vanished or became unreadable mid-run
        name = f" '{exc.filename}'" if exc.filename else ""
        _print_error(f"{name.strip()} {exc.strerror or exc}".strip())
        return EXIT_FAILED


# --------------------------------------------------------------------------- #
# One run: read, stylize, write
# --------------------------------------------------------------------------- #


@dataclass
class Job:
    """Everything a run needs, from the command line or from a picture's metadata."""

    content: str
    styles: list[str]
    output: str
    config: Config
    quiet: bool = False
    save_every: int = 0
    bit_depth: int = 8
    jpeg_quality: int = 95
    overwrite: bool = True
    init_file: str | None = None
    style_masks: list[str] | None = None
    content_mask: str | None = None
    #: Stop after this iteration and write the image with ``{stop_key: step}`` in its
    #: metadata (to reproduce an interrupted run or an intermediate image).
    stop_at: int | None = None
    stop_key: str = "interrupted_at"
    #: The ``inputs`` metadata to record instead of describing the files anew.
    recorded_inputs: dict[str, Any] | None = None
    checkpoint_every: int = 0
    resume: bool = False
    keep_partial: bool = False

    def intermediate(self, step: int) -> Path:
        output = Path(self.output)
        return output.with_name(f"{output.stem}.{step:05d}{output.suffix}")


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _inputs(job: Job) -> dict[str, Any]:
    if job.recorded_inputs is not None:
        return job.recorded_inputs

    def describe(path: str) -> dict[str, str]:
        return {"file": Path(path).name, "sha256": sha256_of(path)}

    inputs: dict[str, Any] = {"content": describe(job.content), "styles": [describe(p) for p in job.styles]}
    if job.init_file is not None:
        inputs["init"] = describe(job.init_file)
    if job.style_masks:
        inputs["style_masks"] = [describe(p) for p in job.style_masks]
    if job.content_mask:
        inputs["content_mask"] = describe(job.content_mask)
    return inputs


class _Stop(BaseException):
    """Raised by the progress consumer when a run reaches :attr:`Job.stop_at`."""


class _ProgressConsumer:
    """Shows a progress bar, saves intermediate images, and keeps the latest image."""

    def __init__(self, job: Job, writer: _Writer, signals: Signals, initial: int = 0) -> None:
        self.job, self.writer, self.signals = job, writer, signals
        self.latest: Progress | None = None
        self.bar = tqdm(
            total=job.stop_at or job.config.iterations,
            initial=initial,
            disable=job.quiet,
            unit="it",
            dynamic_ncols=True,
            file=sys.stderr,
        )

    def __call__(self, progress: Progress) -> None:
        self.latest = progress
        if self.job.stop_at is None and self.bar.total != progress.iterations:
            self.bar.total = progress.iterations  # over all scales of a coarse-to-fine run
        losses = progress.losses
        scale = f"scale {progress.scale}/{progress.scales} " if progress.scales > 1 else ""
        self.bar.set_postfix_str(
            f"{scale}content {losses['content']:.3g} style {losses['style']:.3g} tv {losses['tv']:.3g}", refresh=False
        )
        self.bar.update(1)
        if self.job.stop_at is not None and progress.step >= self.job.stop_at:
            raise _Stop
        every = self.job.save_every
        if every and progress.step % every == 0 and progress.step < progress.iterations:
            self.writer.write(progress.image, self.job.intermediate(progress.step), {"step": progress.step})
        self.signals.raise_pending()  # a signal that came while a file was written

    def close(self) -> None:
        self.bar.close()


class _Writer:
    """Writes the images of one run: same format options and metadata, shielded from signals.

    An image written before the run has finished (an intermediate or interrupted one)
    gets the metadata of ``provisional``, a Result of the same options, seed and device.
    """

    def __init__(self, job: Job, signals: Signals, provisional: Result, inputs: dict[str, Any]) -> None:
        self.job, self.signals, self.provisional, self.inputs = job, signals, provisional, inputs

    def metadata(self, result: Result, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        metadata = result.metadata(self.inputs)
        metadata["output"] = {"bit_depth": self.job.bit_depth, "jpeg_quality": self.job.jpeg_quality}
        metadata["threads"] = torch.get_num_threads()
        return {**metadata, **(extra or {})}

    def write(self, image: torch.Tensor | Result, path: str | Path, extra: dict[str, Any] | None = None) -> None:
        if isinstance(image, Result):
            pixels: Any = image.tensor if image.tensor is not None else image.image
            metadata = self.metadata(image, extra)
        else:
            pixels, metadata = image, self.metadata(self.provisional, extra)
        with self.signals.shielded():
            save_image(
                pixels,
                path,
                metadata,
                jpeg_quality=self.job.jpeg_quality,
                bit_depth=self.job.bit_depth,
                overwrite=self.job.overwrite,
            )


class _Checkpoints:
    """The run's checkpoint file: written every N iterations (shielded from signals),
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
        warnings.warn(
            f"'{self.path}' holds an earlier run and will be replaced (--resume continues that run instead)",
            ArtstyleWarning,
            stacklevel=2,
        )

    def load(self, inputs: dict[str, Any]) -> RunState | None:
        """The state to resume from (with ``--resume``), checked against this run; the
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

    def hint(self) -> str:
        return f"; --resume continues from iteration {self.step}" if self.step is not None else ""


def _check_outputs(job: Job) -> None:
    check_output_path(job.output, bit_depth=job.bit_depth, overwrite=job.overwrite)
    if not job.overwrite and job.save_every:
        for step in range(job.save_every, job.config.iterations, job.save_every):
            check_output_path(job.intermediate(step), bit_depth=job.bit_depth, overwrite=False)


def _scaled_size(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    width, height = size
    if width >= height:
        return long_side, max(1, round(height * long_side / width))
    return max(1, round(width * long_side / height)), long_side


#: The tile size an out-of-memory message suggests: at 1024x768 px such tiles took a third of the
#: untiled pass's memory and 1.9 times its time (README, Large images and tiling).
SUGGESTED_TILE = 512


def _out_of_memory(job: Job, content_size: tuple[int, int], device: str) -> str:
    width, height = _scaled_size(content_size, job.config.size)
    hints = [f"a smaller --size (now {job.config.size})"]
    if job.config.optimizer == "lbfgs":
        hints.append("--optimizer adam (L-BFGS keeps 100 steps of history)")
    smallest = max(min_tile_size(job.config.layers), SUGGESTED_TILE)
    if job.config.tile_size > smallest:
        hints.append(f"a smaller --tile-size (now {job.config.tile_size})")
    elif not job.config.tile_size and job.config.size > smallest:
        hints.append(f"--tile-size {smallest}")
    if device != "cpu":
        hints.append("--device cpu")
    return f"out of memory stylizing at {width}x{height} px on {device}; try {', or '.join(hints)}"


def execute(job: Job, signals: Signals) -> int:
    """Read the inputs, run, and write the output; returns the exit code."""
    check_bit_depth(job.bit_depth)
    check_jpeg_quality(job.jpeg_quality)
    _check_outputs(job)
    checkpoints = _Checkpoints(job, signals)
    checkpoints.check()
    content = read_image(job.content)
    styles = [read_image(path) for path in job.styles]
    if job.init_file is not None:
        read_image(job.init_file)  # fail early, with the pixel limit, before loading the network
    if job.style_masks and len(job.style_masks) != len(job.styles):
        raise ConfigError(f"--style-masks: {len(job.style_masks)} masks for {len(job.styles)} style images")
    style_masks = [read_image(path) for path in job.style_masks] if job.style_masks else None
    content_mask = read_image(job.content_mask) if job.content_mask else None
    inputs = _inputs(job)
    resume = checkpoints.load(inputs)
    stylizer = Stylizer(weights=job.config.weights, device=job.config.device)
    device = str(stylizer.device)
    seed = job.config.seed or 0
    writer = _Writer(job, signals, Result(content, job.config, seed, device), inputs)
    consumer = _ProgressConsumer(job, writer, signals, initial=resume.step if resume is not None else 0)
    started = time.perf_counter()
    try:
        result = stylizer.run(
            content,
            styles,
            job.config,
            progress=consumer,
            style_masks=style_masks,
            content_mask=content_mask,
            checkpoint=checkpoints.save if job.checkpoint_every else None,
            checkpoint_every=job.checkpoint_every,
            resume=resume,
        )
    except (KeyboardInterrupt, Terminated, _Stop) as stop:
        consumer.close()
        return _write_latest(job, writer, consumer.latest, stop, checkpoints.hint())
    except DivergedError as exc:
        consumer.close()
        return _diverged(job, writer, exc, checkpoints.hint())
    except (MemoryError, RuntimeError) as exc:
        if not _is_out_of_memory(exc):
            raise
        consumer.close()
        message = _out_of_memory(job, content.size, device)
        _print_error(message + _keep_partial(job, writer, consumer.latest) + checkpoints.hint())
        return EXIT_FAILED
    finally:
        consumer.close()
    writer.write(result, job.output)
    checkpoints.remove()
    seconds = time.perf_counter() - started
    image = result.image
    _say(job, f"wrote {job.output} ({image.width}x{image.height}, seed {result.seed}, {seconds:.0f} s)")
    return EXIT_OK


def _say(job: Job, message: str) -> None:
    if not job.quiet:
        print(f"artstyle: {message}", file=sys.stderr)


def _write_latest(job: Job, writer: _Writer, latest: Progress | None, stop: BaseException, resumable: str = "") -> int:
    if isinstance(stop, _Stop):
        assert latest is not None
        writer.write(latest.image, job.output, {job.stop_key: latest.step})
        _say(job, f"wrote {job.output} (stopped at iteration {latest.step}, as the original)")
        return EXIT_OK
    if latest is None:
        print(f"artstyle: {_stop_word(stop)} before the first iteration; nothing written{resumable}", file=sys.stderr)
        return _exit_code(stop)
    writer.write(latest.image, job.output, {"interrupted_at": latest.step})
    print(
        f"artstyle: {_stop_word(stop)} at iteration {latest.step}/{latest.iterations}; "
        f"wrote the current image to {job.output}{resumable}",
        file=sys.stderr,
    )
    return _exit_code(stop)


def _diverged(job: Job, writer: _Writer, exc: DivergedError, resumable: str) -> int:
    """One line: what diverged, what to try, and what became of the output."""
    message = str(exc)
    if not job.keep_partial:
        message += "; nothing written (--keep-partial writes the last good image)"
    elif exc.image is None:
        message += "; no iteration had finished, nothing written"
    else:
        last = exc.step - 1
        writer.write(exc.image, job.output, {"interrupted_at": last, "diverged_at": exc.step})
        message += f"; wrote the last good image (iteration {last}) to {job.output}"
    _print_error(message + resumable)
    return EXIT_FAILED


def _keep_partial(job: Job, writer: _Writer, latest: Progress | None) -> str:
    """With ``--keep-partial``, write the latest image of a run that failed; what to add to its message."""
    if not job.keep_partial:
        return ""
    if latest is None:
        return "; no iteration had finished, nothing written"
    writer.write(latest.image, job.output, {"interrupted_at": latest.step})
    return f"; wrote the last image (iteration {latest.step}) to {job.output}"


# --------------------------------------------------------------------------- #
# The main command
# --------------------------------------------------------------------------- #


def _config(args: argparse.Namespace) -> Config:
    given = {f.name: getattr(args, f.name) for f in fields(Config) if getattr(args, f.name) is not None}
    options = {**preset_options(args.preset), **given}
    for name in ("save_every", "checkpoint_every"):
        if getattr(args, name) < 0:
            raise ConfigError(f"{flag(name)}: expected a whole number of at least 0, got {getattr(args, name)}")
    config = Config(**options)
    # Fix the seed here so that even an interrupted run records the one it used
    # (a resumed run takes its checkpoint's when none is given).
    if config.seed is not None or args.resume:
        return config
    return config.replace(seed=secrets.randbelow(2**31))


def _job(args: argparse.Namespace) -> Job:
    config = _config(args)
    init_file = None if config.init in ("content", "noise") else config.init
    return Job(
        content=args.content,
        styles=list(args.styles),
        output=args.output,
        config=config,
        quiet=args.quiet,
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to ``sys.exit``)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["reproduce"]:
        from artstyle.reproduce import main as reproduce

        return reproduce(arguments[1:])
    if arguments[:1] == ["serve"]:
        from artstyle.web import serve_main

        return serve_main(arguments[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    return guarded(lambda signals: execute(_job(args), signals), args.max_pixels)


if __name__ == "__main__":
    sys.exit(main())
