"""A clip in chunks, for a cluster (``artstyle video --ray``): where they begin and end,
and how two chunks meet.

A chunk is a stretch of consecutive frames that one task stylizes as one
:class:`~artstyle.video.run.FrameChain`: its first frame gets the still image's whole
run, every later one is tied to the one before. The clip is cut into chunks at every
scene cut (a chunk starts there, afresh, as the whole clip's loop would) and after every
``chunk_frames`` frames of a scene. A chunk that starts mid-scene (at a *seam*) begins
``overlap`` frames early: its chain is warmed up on the last frames of the chunk before,
so that its own first frame is a tied frame like its neighbours rather than a fresh run,
and over those frames the two chunks' outputs are cross-faded, the later one's weight
rising linearly (1/(K+1), ..., K/(K+1) for an overlap of K). The two chains never see
each other (they run at the same time), so their paint differs at the seam; the
cross-fade spreads that jump over K+1 frame steps instead of one. Measured in
benchmarks/video_ray.py (docs/guide/batch.md, A video on a Ray cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from artstyle.files.video import VideoFrame
from artstyle.video.flow import Grey, grey, link
from artstyle.video.job import CUT_RELIABLE, check_chunking

OWN, WARMUP, TAIL = "own", "warm-up", "tail"


@dataclass(frozen=True)
class Chunk:
    """Consecutive frames for one task: ``warmup`` leading frames that belong to the chunk
    before (the overlap), then the chunk's own, of which the last ``tail`` are the next
    chunk's warm-up. ``seam``: it begins mid-scene (not at the excerpt's start or a cut)."""

    frames: tuple[VideoFrame, ...]
    warmup: int = 0
    tail: int = 0
    seam: bool = False

    @property
    def first(self) -> int:
        """The number of its first own frame."""
        return self.frames[self.warmup].index

    def role(self, position: int) -> str:
        """What the chunk's ``position``-th frame is to it: :data:`WARMUP` (the chunk before
        owns it), :data:`TAIL` (its own, also the next chunk's warm-up) or :data:`OWN`."""
        if position < self.warmup:
            return WARMUP
        return TAIL if position >= len(self.frames) - self.tail else OWN

    def weight(self, position: int) -> float:
        """The later chunk's share of an overlap frame in the cross-fade (see the module)."""
        if position < self.warmup:
            return (position + 1) / (self.warmup + 1)
        offset = position - (len(self.frames) - self.tail)
        return (offset + 1) / (self.tail + 1)


def split(
    frames: Iterable[VideoFrame], cut: Callable[[VideoFrame], bool], chunk_frames: int, overlap: int
) -> Iterator[Chunk]:
    """The chunks of ``frames`` (read lazily: a chunk is given as soon as the frame after
    it is read), a new one at every frame ``cut`` says starts a scene (asked of every
    frame, in order) and after ``chunk_frames`` frames, the later beginning ``overlap``
    frames early."""
    check_chunking(chunk_frames, overlap)
    current: list[VideoFrame] = []
    warmup, seam = 0, False
    for frame in frames:
        cuts = cut(frame)
        if current and (cuts or len(current) - warmup >= chunk_frames):
            tail = 0 if cuts else overlap
            yield Chunk(tuple(current), warmup, tail, seam)
            current, warmup, seam = (current[len(current) - tail :] if tail else []), tail, not cuts
        current.append(frame)
    if len(current) > warmup:
        yield Chunk(tuple(current), warmup, 0, seam)


class CutFinder:
    """Asked of each frame in turn, says whether it starts a new scene: the flow from the
    frame before is trusted on less than :data:`~artstyle.video.job.CUT_RELIABLE` of it,
    the test a :class:`~artstyle.video.run.FrameChain` makes. ``found`` lists the cuts
    (frame number, share trusted)."""

    def __init__(self, method: str, enabled: bool = True) -> None:
        self.method, self.enabled = method, enabled
        self.previous: Grey | None = None
        self.found: list[tuple[int, float]] = []

    def __call__(self, frame: VideoFrame) -> bool:
        if not self.enabled:
            return False
        current, previous = grey(frame.pixels), self.previous
        self.previous = current
        if previous is None:
            return False
        reliable = float(link(current, previous, self.method)[1].mean())
        if reliable < CUT_RELIABLE:
            self.found.append((frame.index, reliable))
            return True
        return False
