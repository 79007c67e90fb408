"""``artstyle video``: a clip stylized frame by frame, each frame tied to the one before.

Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos" (GCPR 2016). The first
frame (and the first after a scene cut) gets the still image's whole coarse-to-fine
run. Every later frame starts from the previous stylized frame, kept in float and warped
onto it by the backward optical flow, and is optimised for ``frame_iterations`` at full
size with one more named term, ``temporal``: the certainty-weighted squared difference
from that warped frame (:func:`~artstyle.losses.temporal_loss`). Where the flow is not
trusted (disocclusions, motion boundaries, the frame's edge), the start is the current
photo recoloured to the painting, as a still run starts.

Each frame is one job of the run frame (:func:`artstyle.runs.execute`): its signals,
atomic writes and failures are the still image's. Finished frames go to the work folder
(:mod:`artstyle.video.work`); the video is written from them at the end
(:class:`~artstyle.files.video.VideoOutput`). Nothing here prints: a
:class:`VideoReporter` is told what happens and :func:`run_video` returns a
:class:`VideoOutcome`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from artstyle.api import Stylizer
from artstyle.color import luminance, recolor
from artstyle.engine import Progress, Term
from artstyle.errors import ArtstyleError, ConfigError, VideoReadError
from artstyle.files.convert import image_to_tensor, resize_long_side
from artstyle.files.digest import sha256_file
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
from artstyle.runs import FAILED, WRITTEN, InputImage, Job, Outcome, Reporter, Signals, Terminated, execute
from artstyle.runs.execute import stop_kind, warnings_to
from artstyle.runs.job import read_input
from artstyle.video.flow import Grey, certainty, grey, optical_flow, warp
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

    def frame_done(self, index: int, outcome: Outcome) -> None:
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
    ``cuts`` the frames that started afresh at a scene cut, ``error`` what failed."""

    kind: str
    job: VideoJob
    frames: int = 0
    total: int = 0
    cuts: tuple[int, ...] = ()
    error: BaseException | None = None
    seconds: float = 0.0
    work: str | None = None
    failed_frame: int | None = None  # the frame whose run failed or diverged

    @property
    def ok(self) -> bool:
        return self.kind == WRITTEN


@dataclass
class _Previous:
    """The last frame: its input (grey, for the flow) and its stylized output in float."""

    grey: Grey
    output: torch.Tensor | None  # (1, 3, H, W) in [0, 1]; None while it is not needed


def run_video(
    job: VideoJob,
    reporter: VideoReporter | None = None,
    *,
    stylizer: Stylizer | None = None,
    signals: Signals | None = None,
) -> VideoOutcome:
    """Run ``job`` and say how it ended (never raises for bad input, signals or failures)."""
    reporter = reporter if reporter is not None else VideoReporter()
    run = _VideoRun(job, reporter, signals if signals is not None else Signals(), stylizer)
    try:
        with warnings_to(reporter.warning):
            return run.run()
    except (KeyboardInterrupt, Terminated) as stop:
        return run.outcome(stop_kind(stop))
    except _FrameFailed as failed:
        return run.outcome(failed.outcome.kind, error=failed.outcome.error, failed_frame=run.done)
    except (ArtstyleError, OSError) as exc:
        return run.outcome(FAILED, error=exc)
    finally:
        reporter.ended()


@dataclass
class _VideoRun:
    job: VideoJob
    reporter: VideoReporter
    signals: Signals
    stylizer: Stylizer | None
    started: float = field(default_factory=time.perf_counter)
    done: int = 0
    cuts: list[int] = field(default_factory=list)
    work: WorkFolder | None = None

    def outcome(
        self, kind: str, error: BaseException | None = None, total: int = 0, failed_frame: int | None = None
    ) -> VideoOutcome:
        if self.work is not None and kind != WRITTEN:
            self.done = max(self.done, self.work.count())  # a signal may come between a frame's file and its count
        kept = str(self.work.path) if self.work is not None and kind != WRITTEN and self.done else None
        seconds = time.perf_counter() - self.started
        return VideoOutcome(kind, self.job, self.done, total, tuple(self.cuts), error, seconds, kept, failed_frame)

    def run(self) -> VideoOutcome:
        job = self.job
        check_video_output(job.output, overwrite=job.overwrite)
        info = probe_video(job.input)
        start, end = _excerpt(job, info)
        size = even_size(info.width, info.height, job.config.size)
        styles = [read_input(path) for path in job.styles]
        self.work = WorkFolder(job.output, _record(job, info, styles, size))
        self.done = self.work.open(job.resume)
        self.stylizer = self.stylizer or Stylizer(weights=job.config.weights, device=job.config.device)
        total = _frame_count(info, start, end)
        self.reporter.started(total, self.done)
        stamps = self._frames(info, start, end, size, styles)
        if not stamps:
            raise VideoReadError(f"cannot read video '{job.input}': no frames between {start:g} s and the end")
        self.reporter.encoding(len(stamps))
        with VideoOutput(job.output, info, Encoding(size, job.crf, start, end)) as output:
            for index, pts in enumerate(stamps):
                output.write(self.work.frame(index), pts)
                self.signals.raise_pending()
            with self.signals.shielded():
                output.finish()
        self.work.remove()
        return self.outcome(WRITTEN, total=len(stamps))

    def _frames(
        self, info: VideoInfo, start: float, end: float | None, size: tuple[int, int], styles: list[InputImage]
    ) -> list[int]:
        """Stylize every frame not yet finished; the timestamps of all of them."""
        assert self.work is not None
        stamps: list[int] = []
        previous: _Previous | None = None
        palette = [image_to_tensor(resize_long_side(style.image, 256)) for style in styles]
        for frame in read_frames(info, start, end, size):
            stamps.append(frame.pts)
            if frame.index < self.done:  # finished in an earlier run (resumed)
                kept = frame.index == self.done - 1
                output = torch.from_numpy(self.work.read(frame.index)).permute(2, 0, 1)[None] if kept else None
                previous = _Previous(grey(frame.pixels), output)
                continue
            output = self._stylize(frame, previous, styles, palette)
            previous = _Previous(grey(frame.pixels), output)
            self.done = frame.index + 1
        return stamps

    def _stylize(
        self, frame: VideoFrame, previous: _Previous | None, styles: list[InputImage], palette: list[torch.Tensor]
    ) -> torch.Tensor:
        """One frame through the run frame; its stylized output in float."""
        assert self.work is not None
        content = image_to_tensor(Image.fromarray(frame.pixels))
        tie = self._tie(frame, previous, content, palette)
        config = self.job.config
        if tie is not None:
            config = config.replace(pyramid=False, iterations=self.job.frame_iterations)
        self.reporter.frame_started(frame.index, None if tie is not None else self._fresh(frame.index, previous))
        job = Job(
            content=_frame_input(self.job.input, frame),
            styles=list(styles),
            output=str(self.work.frame(frame.index)),
            config=config,
            bit_depth=16,
            init_tensor=tie[0] if tie is not None else None,
            extra_terms=tie[1] if tie is not None else (),
            write_stopped=False,
        )
        outcome = execute(job, _FrameReporter(self.reporter), stylizer=self.stylizer, signals=self.signals)
        if not outcome.ok or outcome.result is None or outcome.result.tensor is None:
            raise _FrameFailed(outcome)
        self.reporter.frame_done(frame.index, outcome)
        return outcome.result.tensor

    def _fresh(self, index: int, previous: _Previous | None) -> str:
        if not self.job.temporal:
            return "independent"
        return "first" if previous is None or index == 0 else "scene cut"

    def _tie(
        self, frame: VideoFrame, previous: _Previous | None, content: torch.Tensor, palette: list[torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[Term, ...]] | None:
        """The start and the temporal term of a frame tied to the previous one; None for a
        frame that starts afresh (the first, a scene cut, or every frame without the term)."""
        if not self.job.temporal or previous is None or previous.output is None:
            return None
        current = grey(frame.pixels)
        backward = optical_flow(current, previous.grey, self.job.flow)
        forward = optical_flow(previous.grey, current, self.job.flow)
        mask = certainty(backward, forward, frames=(current, previous.grey))
        reliable = float(mask.mean())
        if reliable < CUT_RELIABLE:
            self.cuts.append(frame.index)
            self.reporter.scene_cut(frame.index, reliable)
            return None
        warped = warp(previous.output, backward)
        trusted = torch.from_numpy(mask)[None, None]
        weights = list(self.job.config.style_weights or [1.0] * len(palette))
        term = Term("temporal", TemporalTarget(warped, trusted), self.job.temporal_weight)
        return starting_image(warped, trusted, content, palette, weights), (term,)


def starting_image(
    warped: torch.Tensor,
    trusted: torch.Tensor,
    content: torch.Tensor,
    palette: list[torch.Tensor],
    weights: list[float],
) -> torch.Tensor:
    """A tied frame's start: the warped previous output where the flow is trusted, the
    current photo recoloured to the paintings' palette (a still run's start) where it is
    not, blended by the certainty. Ruder et al. keep the warped pixels everywhere; in a
    disoccluded region those are the previous frame's paint smeared from its border."""
    return (trusted * warped + (1 - trusted) * recolor(content, palette, weights)).clamp(0, 1)


class TemporalTarget:
    """The temporal term's loss: :func:`~artstyle.losses.temporal_loss` against the warped
    previous frame (its luminance when only luminance is optimised) where it is trusted."""

    def __init__(self, warped: torch.Tensor, trusted: torch.Tensor) -> None:
        self.warped, self.trusted = warped, trusted

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        target = self.warped if image.shape[1] == 3 else luminance(self.warped)
        target, trusted = target.to(image.device, image.dtype), self.trusted.to(image.device, image.dtype)
        return temporal_loss(image, target, trusted)


class _FrameFailed(ArtstyleError):
    """A frame's job did not finish: its outcome says how (raised to end the video job)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(str(outcome.error) if outcome.error is not None else outcome.kind)
        self.outcome = outcome


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


def _record(job: VideoJob, info: VideoInfo, styles: list[InputImage], size: tuple[int, int]) -> dict[str, object]:
    """What the work folder's frames are computed from (see :class:`~artstyle.video.work.WorkFolder`)."""
    return {
        "input": {"file": Path(job.input).name, "sha256": sha256_file(job.input)},
        "styles": [style.describe() for style in styles],
        "parameters": parameters(job.config.to_dict()),
        "video": {**job.options(), "size": list(size)},
    }
