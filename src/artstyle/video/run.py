"""``artstyle video``: a clip stylized frame by frame, each frame tied to the one before.

Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos" (GCPR 2016). The first
frame (and the first after a scene cut) gets the still image's whole coarse-to-fine
run. Every later frame starts from the previous stylized frame, kept in float and warped
onto it by the backward optical flow, and is optimised for ``frame_iterations`` at full
size, by L-BFGS from its first iteration (no Adam warm-up: its fixed steps pushed the
warped start's loss up by a quarter, and 10 of 15 iterations went to climbing back),
with one more named term, ``temporal``: the certainty-weighted squared difference
from that warped frame (:func:`~artstyle.losses.temporal_loss`). Where the flow is not
trusted (disocclusions, motion boundaries, the frame's edge), the start is the current
photo recoloured to the painting, as a still run starts.

Each frame is one job of the run frame (:func:`artstyle.runs.execute`): its signals,
atomic writes and failures are the still image's. A :class:`FrameChain` stylizes
consecutive frames so; a :class:`FrameExecutor` runs the excerpt's frames through chains:
:class:`InProcess` here, in one chain, or :class:`artstyle.video.cluster.RayChunks` in
chunks on a Ray cluster. Finished frames go to the work folder
(:mod:`artstyle.video.work`); the video is written from them at the end
(:class:`~artstyle.files.video.VideoOutput`). Nothing here prints: a
:class:`VideoReporter` is told what happens and :func:`run_video` returns a
:class:`VideoOutcome`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from PIL import Image

from artstyle.api import Stylizer
from artstyle.color import luminance, recolor
from artstyle.engine import Progress, Term
from artstyle.errors import ArtstyleError, ConfigError, VideoReadError
from artstyle.files.convert import image_to_tensor, resize_long_side
from artstyle.files.digest import sha256_file
from artstyle.files.metadata import read_metadata
from artstyle.files.video import (
    Encoding,
    VideoFrame,
    VideoInfo,
    VideoOutput,
    check_video_output,
    even_size,
    probe_video,
    read_frames,
)
from artstyle.losses import temporal_loss
from artstyle.runs import FAILED, WRITTEN, InputImage, Job, Reporter, Signals, Terminated, execute
from artstyle.runs.execute import stop_kind, warnings_to
from artstyle.runs.job import read_input
from artstyle.video.flow import Grey, grey, link, warp
from artstyle.video.job import CUT_RELIABLE, VideoJob
from artstyle.video.work import WorkFolder, parameters


class VideoReporter:
    """How a front end follows a video job; every method does nothing unless overridden."""

    def started(self, frames: int, done: int) -> None:
        """The job begins: about ``frames`` frames in the excerpt, ``done`` finished already (resumed)."""

    def frame_started(self, index: int, fresh: str | None) -> None:
        """Frame ``index`` (from 0) begins; ``fresh`` says why it gets a whole run of its
        own (``"first"``, ``"scene cut"``, ``"independent"``), None when tied to the last."""

    def progress(self, progress: Progress) -> None:
        """After every iteration of the current frame."""

    def frame_done(self, index: int) -> None:
        """Frame ``index`` is finished and kept."""

    def scene_cut(self, index: int, reliable: float) -> None:
        """The flow into frame ``index`` is trusted on only ``reliable`` of its pixels."""

    def encoding(self, frames: int) -> None:
        """All ``frames`` frames are done; the video is being written."""

    def warning(self, message: str) -> None:
        """Something handled that the user should know."""

    def ended(self) -> None:
        """The job is over, however it ended."""


@dataclass(frozen=True)
class VideoOutcome:
    """What became of a video job: ``kind`` as a still job's (WRITTEN, INTERRUPTED, ...),
    ``frames`` finished (kept in the work folder when the job did not end WRITTEN),
    ``cuts`` the frames that started afresh at a scene cut, ``seams`` those where a
    chunk began on a cluster (:mod:`artstyle.video.cluster`), ``error`` what failed."""

    kind: str
    job: VideoJob
    frames: int = 0
    total: int = 0
    cuts: tuple[int, ...] = ()
    error: BaseException | None = None
    seconds: float = 0.0
    work: str | None = None
    failed_frame: int | None = None  # the frame whose run failed or diverged
    seams: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return self.kind == WRITTEN


@dataclass
class Excerpt:
    """The frames a video job stylizes, and where they go: what a :class:`FrameExecutor`
    is given. ``done`` frames (consecutive from the first) are finished in the work folder;
    executors add to it, to ``cuts`` and to ``seams`` as they go."""

    job: VideoJob
    info: VideoInfo
    start: float
    end: float | None
    size: tuple[int, int]
    styles: list[InputImage]
    work: WorkFolder
    done: int = 0
    cuts: list[int] = field(default_factory=list)
    seams: list[int] = field(default_factory=list)

    def frames(self) -> Iterator[VideoFrame]:
        """The excerpt's frames at the output size, decoded one at a time."""
        return read_frames(self.info, self.start, self.end, self.size)


class FrameExecutor(Protocol):
    """Stylizes an excerpt's frames into its work folder: :class:`InProcess` here, one after
    another; :class:`artstyle.video.cluster.RayChunks` in chunks on a Ray cluster."""

    def options(self) -> dict[str, object]:
        """What it changes in the frames (kept in the work folder's record)."""
        ...

    def stylize(self, excerpt: Excerpt, reporter: VideoReporter, signals: Signals) -> list[int]:
        """Every frame not finished yet into the work folder; the timestamps of all."""
        ...


def run_video(
    job: VideoJob,
    reporter: VideoReporter | None = None,
    *,
    stylizer: Stylizer | None = None,
    signals: Signals | None = None,
    executor: FrameExecutor | None = None,
) -> VideoOutcome:
    """Run ``job`` and say how it ended (never raises for bad input, signals or failures)."""
    reporter = reporter if reporter is not None else VideoReporter()
    executor = executor if executor is not None else InProcess(stylizer)
    run = _VideoRun(job, reporter, signals if signals is not None else Signals(), executor)
    try:
        with warnings_to(reporter.warning):
            return run.run()
    except (KeyboardInterrupt, Terminated) as stop:
        return run.outcome(stop_kind(stop))
    except FrameFailed as failed:
        return run.outcome(failed.kind, error=failed.error, failed_frame=failed.index)
    except (ArtstyleError, OSError) as exc:
        return run.outcome(FAILED, error=exc)
    finally:
        reporter.ended()


@dataclass
class _VideoRun:
    job: VideoJob
    reporter: VideoReporter
    signals: Signals
    executor: FrameExecutor
    started: float = field(default_factory=time.perf_counter)
    excerpt: Excerpt | None = None

    def outcome(
        self, kind: str, error: BaseException | None = None, total: int = 0, failed_frame: int | None = None
    ) -> VideoOutcome:
        excerpt = self.excerpt
        if excerpt is None:
            return VideoOutcome(kind, self.job, error=error, seconds=time.perf_counter() - self.started)
        kept = None
        if kind != WRITTEN:
            work = excerpt.work
            # A signal may come between a frame's file and its count.
            excerpt.done = max(excerpt.done, work.count(), work.stored())
            if work.path.is_dir() and work.empty():
                work.remove()  # nothing to resume: a rerun starts as the first did
            kept = str(work.path) if work.path.is_dir() else None
        seconds = time.perf_counter() - self.started
        cuts, seams = tuple(sorted(set(excerpt.cuts))), tuple(sorted(excerpt.seams))
        return VideoOutcome(kind, self.job, excerpt.done, total, cuts, error, seconds, kept, failed_frame, seams)

    def run(self) -> VideoOutcome:
        job = self.job
        check_video_output(job.output, overwrite=job.overwrite)
        info = probe_video(job.input)
        start, end = _excerpt(job, info)
        size = even_size(info.width, info.height, job.config.size)
        styles = [read_input(path) for path in job.styles]
        work = WorkFolder(job.output, _record(job, info, styles, size, self.executor.options()))
        done = work.open(job.resume)  # the folder is this job's from here on (not before: a leftover stays as it is)
        self.excerpt = excerpt = Excerpt(job, info, start, end, size, styles, work, done)
        self.reporter.started(_frame_count(info, start, end), excerpt.done)
        stamps = self.executor.stylize(excerpt, self.reporter, self.signals)
        if not stamps:
            raise VideoReadError(f"cannot read video '{job.input}': no frames between {start:g} s and the end")
        self.reporter.encoding(len(stamps))
        with VideoOutput(job.output, info, Encoding(size, job.crf, start, end)) as output:
            for index, pts in enumerate(stamps):
                output.write(work.frame(index), pts)
                self.signals.raise_pending()
            with self.signals.shielded():
                output.finish()
        work.remove()
        excerpt.done = len(stamps)
        return self.outcome(WRITTEN, total=len(stamps))


@dataclass
class InProcess:
    """Stylizes the frames here, one after another, each tied to the one before."""

    stylizer: Stylizer | None = None

    def options(self) -> dict[str, object]:
        return {}

    def stylize(self, excerpt: Excerpt, reporter: VideoReporter, signals: Signals) -> list[int]:
        job, work = excerpt.job, excerpt.work
        self.stylizer = self.stylizer or Stylizer(weights=job.config.weights, device=job.config.device)
        chain = FrameChain(job, excerpt.styles, self.stylizer, reporter, signals, excerpt.cuts)
        stamps: list[int] = []
        for frame in excerpt.frames():
            stamps.append(frame.pts)
            if frame.index < excerpt.done:  # finished in an earlier run (resumed)
                last = frame.index == excerpt.done - 1
                chain.follow(frame, torch.from_numpy(work.read(frame.index)).permute(2, 0, 1)[None] if last else None)
                chain.recall(work.frame(frame.index))
                continue
            chain.stylize(frame, work.frame(frame.index))
            excerpt.done = frame.index + 1
            reporter.frame_done(frame.index)
        return stamps


@dataclass
class _Previous:
    """The last frame: its input (grey, for the flow) and its stylized output in float."""

    grey: Grey
    output: torch.Tensor | None  # (1, 3, H, W) in [0, 1]; None while it is not needed


@dataclass
class FrameChain:
    """Consecutive frames of one clip, each stylized by one job of the run frame and tied
    to the one before (see the module). The first, and the first after a scene cut, get
    a whole run of their own; ``cuts`` gets the scene cuts' frame numbers. With
    ``strength``, those whole runs find the style weight and the tied frames keep the
    latest one found (``style_weight``): a weight found anew for each frame would flicker."""

    job: VideoJob
    styles: list[InputImage]
    stylizer: Stylizer
    reporter: VideoReporter
    signals: Signals
    cuts: list[int] = field(default_factory=list)
    previous: _Previous | None = None
    style_weight: float | None = None

    def __post_init__(self) -> None:
        self.palette = [image_to_tensor(resize_long_side(style.image, 256)) for style in self.styles]

    def recall(self, path: Path) -> None:
        """Take the style weight that a finished frame (resuming) found with ``strength``, if it did."""
        if self.job.config.strength is None:
            return
        found = (read_metadata(path) or {}).get("found")
        if isinstance(found, dict) and isinstance(found.get("style_weight"), float):
            self.style_weight = found["style_weight"]

    def follow(self, frame: VideoFrame, output: torch.Tensor | None) -> None:
        """``frame`` was stylized earlier into ``output`` (needed for the next frame only)."""
        self.previous = _Previous(grey(frame.pixels), output)

    def stylize(self, frame: VideoFrame, path: Path) -> torch.Tensor:
        """``frame`` through the run frame into the 16-bit PNG ``path``; its output in float.
        Raises :class:`FrameFailed` when its job does not finish."""
        content = image_to_tensor(Image.fromarray(frame.pixels))
        tie = self._tie(frame, content)
        config = self.job.config
        if tie is not None:
            config = config.replace(pyramid=False, iterations=self.job.frame_iterations)
            if config.strength is not None and self.style_weight is not None:
                config = config.replace(strength=None, style_weight=self.style_weight)
        self.reporter.frame_started(frame.index, None if tie is not None else self._fresh(frame.index))
        job = Job(
            content=_frame_input(self.job.input, frame),
            styles=list(self.styles),
            output=str(path),
            config=config,
            bit_depth=16,
            init_tensor=tie[0] if tie is not None else None,
            warmup=tie is None,
            extra_terms=tie[1] if tie is not None else (),
            write_stopped=False,
        )
        outcome = execute(job, _FrameReporter(self.reporter), stylizer=self.stylizer, signals=self.signals)
        if not outcome.ok or outcome.result is None or outcome.result.tensor is None:
            raise FrameFailed(outcome.kind, outcome.error, frame.index)
        if tie is None:
            self.style_weight = outcome.result.style_weight
        self.follow(frame, outcome.result.tensor)
        return outcome.result.tensor

    def _fresh(self, index: int) -> str:
        if not self.job.temporal:
            return "independent"
        return "first" if self.previous is None or index == 0 else "scene cut"

    def _tie(self, frame: VideoFrame, content: torch.Tensor) -> tuple[torch.Tensor, tuple[Term, ...]] | None:
        """The start and the temporal term of a frame tied to the previous one; None for a
        frame that starts afresh (the first, a scene cut, or every frame without the term)."""
        previous = self.previous
        if not self.job.temporal or previous is None or previous.output is None:
            return None
        backward, mask = link(grey(frame.pixels), previous.grey, self.job.flow)
        reliable = float(mask.mean())
        if reliable < CUT_RELIABLE:
            self.cuts.append(frame.index)
            self.reporter.scene_cut(frame.index, reliable)
            return None
        warped = warp(previous.output, backward)
        trusted = torch.from_numpy(mask)[None, None]
        weights = list(self.job.config.style_weights or [1.0] * len(self.palette))
        term = Term("temporal", TemporalTarget(warped, trusted), self.job.temporal_weight)
        start = starting_image(warped, trusted, content, self.palette, weights, self.job.config.palette)
        return start, (term,)


def starting_image(
    warped: torch.Tensor,
    trusted: torch.Tensor,
    content: torch.Tensor,
    palette: list[torch.Tensor],
    weights: list[float],
    matching: str = "distribution",
) -> torch.Tensor:
    """A tied frame's start: the warped previous output where the flow is trusted, the
    current photo recoloured to the paintings' palette (a still run's start) where it is
    not, blended by the certainty. Ruder et al. keep the warped pixels everywhere; in a
    disoccluded region those are the previous frame's paint smeared from its border."""
    return (trusted * warped + (1 - trusted) * recolor(content, palette, weights, matching)).clamp(0, 1)


class TemporalTarget:
    """The temporal term's loss: :func:`~artstyle.losses.temporal_loss` against the warped
    previous frame (its luminance when only luminance is optimised) where it is trusted.
    The target is made on the image's device once, at the first evaluation, not copied
    there at every one."""

    def __init__(self, warped: torch.Tensor, trusted: torch.Tensor) -> None:
        self.warped, self.trusted = warped, trusted
        self._on: dict[tuple[torch.device, torch.dtype, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        key = (image.device, image.dtype, image.shape[1])
        if key not in self._on:
            target = self.warped if image.shape[1] == 3 else luminance(self.warped)
            self._on[key] = (target.to(image.device, image.dtype), self.trusted.to(image.device, image.dtype))
        target, trusted = self._on[key]
        return temporal_loss(image, target, trusted)


class FrameFailed(ArtstyleError):
    """Frame ``index``'s job did not finish: ``kind`` says how (FAILED, DIVERGED, ...) and
    ``error`` why (raised to end the video job)."""

    def __init__(self, kind: str, error: BaseException | None, index: int) -> None:
        super().__init__(str(error) if error is not None else kind)
        self.kind, self.error, self.index = kind, error, index


class _FrameReporter(Reporter):
    """A frame job's reporter: iterations and warnings go to the video's reporter."""

    def __init__(self, video: VideoReporter) -> None:
        self.video = video

    def progress(self, progress: Progress) -> None:
        self.video.progress(progress)

    def warning(self, message: str) -> None:
        self.video.warning(message)


def _excerpt(job: VideoJob, info: VideoInfo) -> tuple[float, float | None]:
    """The excerpt in seconds from the stream's start, checked against the clip's length."""
    if info.duration and job.start >= info.duration:
        problem = f"{job.start:g} s is past the end of '{job.input}' ({info.duration:.2f} s long)"
        raise ConfigError(problem, option="start")
    end = None if job.duration is None else job.start + job.duration
    return job.start, end


def _frame_count(info: VideoInfo, start: float, end: float | None) -> int:
    """About how many frames the excerpt has (for the progress bar)."""
    length = info.duration if end is None else min(end, info.duration or end)
    if info.frames and start == 0 and end is None:
        return info.frames
    return max(1, round((length - start) * float(info.rate)))


def _frame_input(video: str, frame: VideoFrame) -> InputImage:
    """A frame as the run frame's content image, named by its clip and number."""
    digest = hashlib.sha256(frame.pixels.tobytes()).hexdigest()
    return InputImage(Image.fromarray(frame.pixels), f"{Path(video).name}#frame{frame.index + 1}", digest)


def _record(
    job: VideoJob, info: VideoInfo, styles: list[InputImage], size: tuple[int, int], executed: dict[str, object]
) -> dict[str, object]:
    """What the work folder's frames are computed from (see :class:`~artstyle.video.work.WorkFolder`)."""
    return {
        "input": {"file": Path(job.input).name, "sha256": sha256_file(job.input)},
        "styles": [style.describe() for style in styles],
        "parameters": parameters(job.config.to_dict()),
        "video": {**job.options(), "size": list(size), **executed},
    }
