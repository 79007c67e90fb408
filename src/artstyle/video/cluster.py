"""A video's chunks as Ray tasks (``artstyle video ... --ray ADDRESS``; the ``[ray]`` extra).

The driver (the ``artstyle video`` process) decodes the excerpt, finds its scene cuts as
it goes and splits it into chunks (:mod:`artstyle.video.chunks`). Each chunk is one task:
its decoded frames go with it, the paintings once for the whole job (``ray.put``); on a
worker it runs the same :class:`~artstyle.video.run.FrameChain` as a job in one process,
with ``cpus_per_job`` CPUs and a network kept per worker process, into a temporary
folder there, and returns the frames' 16-bit PNG bytes. Only the driver writes: each
chunk's frames into the work folder (an overlap's frames cross-faded once both chunks'
versions are in), then the video, as a job in one process does. At most ``window`` chunks
are in flight; tasks are retried when their node is lost (``max_retries``). A stopped job
keeps every finished chunk: ``--resume`` sends only the others.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from artstyle.errors import KEYWORDS, ArtstyleError, Spelling, current_spelling, spelled
from artstyle.files.atomic import atomic_write_bytes
from artstyle.files.metadata import read_metadata
from artstyle.files.video import VideoFrame, frame_name, read_frame_png
from artstyle.files.write import save_image
from artstyle.runs import WRITTEN, InputImage, Signals
from artstyle.runs.cluster import MAX_RETRIES, connect, task_slots, window_size, worker_stylizer
from artstyle.runs.execute import error_message
from artstyle.video.chunks import OWN, TAIL, WARMUP, Chunk, CutFinder, split
from artstyle.video.job import CHUNK_FRAMES, OVERLAP, VideoJob, check_chunking
from artstyle.video.run import Excerpt, FrameChain, FrameFailed, VideoReporter
from artstyle.video.work import WorkFolder


@dataclass(frozen=True)
class ChunkResult:
    """What a chunk's task sends back: how it ended and, when it did, every frame's PNG."""

    kind: str
    frames: tuple[tuple[int, bytes], ...] = ()
    cuts: tuple[int, ...] = ()
    error: str | None = None
    failed_frame: int | None = None


def chunk_task(
    chunk: Chunk, styles: list[InputImage], job: VideoJob, cpus: int, spelling: Spelling = KEYWORDS
) -> ChunkResult:
    """On a worker: the chunk's frames stylized as one chain, into a temporary folder; their
    bytes (messages in the driver's ``spelling``)."""
    torch.set_num_threads(cpus)
    chain = FrameChain(job, styles, worker_stylizer(job.config), VideoReporter(), Signals())
    frames: list[tuple[int, bytes]] = []
    with tempfile.TemporaryDirectory(prefix="artstyle-") as scratch, spelled(spelling):
        try:
            for frame in chunk.frames:
                path = Path(scratch) / frame_name(frame.index)
                chain.stylize(frame, path)
                frames.append((frame.index, path.read_bytes()))
        except FrameFailed as failed:
            error = error_message(failed.error) if failed.error is not None else None
            return ChunkResult(failed.kind, error=error, failed_frame=failed.index)
    return ChunkResult(WRITTEN, tuple(frames), tuple(chain.cuts))


@dataclass
class RayChunks:
    """Stylizes a video job's frames in chunks on the Ray cluster at ``address`` (see the
    module). ``crossfade`` False keeps the warm-up but not the cross-fade: an overlap's
    frames are then the owning chunk's alone (the benchmark's comparison)."""

    address: str | None = None
    cpus_per_job: int | None = None
    chunk_frames: int = CHUNK_FRAMES
    overlap: int = OVERLAP
    crossfade: bool = True
    window: int | None = None

    def __post_init__(self) -> None:
        check_chunking(self.chunk_frames, self.overlap)

    def options(self) -> dict[str, object]:
        return {"chunk_frames": self.chunk_frames, "overlap": self.overlap, "crossfade": self.crossfade}

    def stylize(self, excerpt: Excerpt, reporter: VideoReporter, signals: Signals) -> list[int]:
        ray = connect(self.address)
        slots = task_slots(ray, excerpt.job.config.device, self.cpus_per_job)
        cpus = slots.cpus
        task = ray.remote(**slots.options(), max_retries=MAX_RETRIES)(chunk_task)
        window = self.window or window_size(ray, slots)
        job = replace(excerpt.job, config=excerpt.job.config.replace(device=slots.device(excerpt.job.config.device)))
        styles = ray.put(excerpt.styles)
        stitcher = Stitcher(excerpt, reporter, signals, self.crossfade)
        stamps: list[int] = []
        pending: dict[Any, Chunk] = {}
        try:
            for chunk in self._chunks(excerpt, reporter, stamps):
                if stitcher.finished(chunk):  # in an earlier run (resumed)
                    continue
                while len(pending) >= window:
                    stitcher.take(*_next(ray, pending))
                pending[task.remote(chunk, styles, job, cpus, current_spelling())] = chunk
            while pending:
                stitcher.take(*_next(ray, pending))
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return stamps

    def _chunks(self, excerpt: Excerpt, reporter: VideoReporter, stamps: list[int]) -> Iterator[Chunk]:
        """The excerpt's chunks, read as they are needed; its scene cuts reported as found."""
        job = excerpt.job
        finder = CutFinder(job.flow, enabled=job.temporal)

        def frames() -> Iterator[VideoFrame]:
            for frame in excerpt.frames():
                stamps.append(frame.pts)
                yield frame

        def cut(frame: VideoFrame) -> bool:
            found = finder(frame)
            if found:
                excerpt.cuts.append(frame.index)
                reporter.scene_cut(*finder.found[-1])
            return found

        overlap = self.overlap if job.temporal else 0
        for chunk in split(frames(), cut, self.chunk_frames, overlap):
            if chunk.seam:
                excerpt.seams.append(chunk.first)
            yield chunk


def _next(ray: ModuleType, pending: dict[Any, Chunk]) -> tuple[Chunk, ChunkResult]:
    """The next chunk to end and its frames; FrameFailed when one of its frames failed."""
    (ready,), _ = ray.wait(list(pending), num_returns=1)
    chunk = pending.pop(ready)
    try:
        result: ChunkResult = ray.get(ready)
    except Exception as exc:  # a task that failed past its retries (its node lost each time)
        last = chunk.frames[-1].index + 1
        problem = f"the task of frames {chunk.frames[0].index + 1}-{last} failed on the cluster ({type(exc).__name__})"
        raise ArtstyleError(problem) from None
    if result.kind != WRITTEN:
        error = ArtstyleError(result.error) if result.error is not None else None
        raise FrameFailed(result.kind, error, result.failed_frame if result.failed_frame is not None else chunk.first)
    return chunk, result


@dataclass
class Stitcher:
    """Puts the chunks' frames into the work folder: a frame one chunk owns alone as it is;
    a frame of an overlap once both chunks' versions are in, cross-faded (each version
    kept in ``parts/`` meanwhile, so that a resumed job needs only the missing chunk)."""

    excerpt: Excerpt
    reporter: VideoReporter
    signals: Signals
    crossfade: bool = True
    work: WorkFolder = field(init=False)

    def __post_init__(self) -> None:
        self.work = self.excerpt.work

    def finished(self, chunk: Chunk) -> bool:
        """Whether every frame the chunk makes is in the work folder, as a frame or a part."""
        return all(self._kept(chunk, position) for position in range(len(chunk.frames)))

    def _kept(self, chunk: Chunk, position: int) -> bool:
        index, role = chunk.frames[position].index, chunk.role(position)
        if self.work.frame(index).is_file():
            return True
        if role == OWN or not self.crossfade:
            return role == WARMUP
        return self.work.part(index, "b" if role == WARMUP else "a").is_file()

    def take(self, chunk: Chunk, result: ChunkResult) -> None:
        """A chunk's frames, as its task returned them."""
        self.excerpt.cuts.extend(result.cuts)
        for position, (index, data) in enumerate(result.frames):
            role = chunk.role(position)
            if self.work.frame(index).is_file():  # in an earlier run, or its overlap is done
                continue
            with self.signals.shielded():
                if role == OWN or (not self.crossfade and role == TAIL):
                    self._final(index, data)
                elif self.crossfade:
                    self._part(index, "b" if role == WARMUP else "a", data, chunk.weight(position))
            self.signals.raise_pending()
        self.excerpt.done = self.work.count()

    def _final(self, index: int, data: bytes) -> None:
        atomic_write_bytes(self.work.frame(index), data)
        self.reporter.frame_done(index)

    def _part(self, index: int, version: str, data: bytes, weight: float) -> None:
        """Keep one version of an overlap frame; cross-fade it with the other once both are in."""
        atomic_write_bytes(self.work.part(index, version), data)
        earlier, later = self.work.part(index, "a"), self.work.part(index, "b")
        if not (earlier.is_file() and later.is_file()):
            return
        blend = (1 - weight) * read_frame_png(earlier) + weight * read_frame_png(later)
        metadata = {**(read_metadata(earlier) or {}), "crossfade": round(weight, 4)}
        save_image(np.clip(blend, 0.0, 1.0), self.work.frame(index), metadata, bit_depth=16)
        earlier.unlink()
        later.unlink()
        self.reporter.frame_done(index)
