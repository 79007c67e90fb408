"""What a video job is: the input clip and excerpt, the paintings, the still-image options
every frame takes, and the temporal ones (Ruder et al. 2016) that tie the frames together.

The video options' defaults and choices live here, with no PyTorch, numpy or OpenCV, for
the command line's flags; the modules that act on them import them from here."""

from __future__ import annotations

from dataclasses import dataclass

from artstyle.config import Config
from artstyle.errors import ConfigError

#: The temporal term's default weight, against the relative content and style losses
#: (each about 1 at their targets' scale) and pixels in [0, 1]; measured in
#: benchmarks/video.py (docs/guide/video.md; the weights tried: docs/decisions.md).
TEMPORAL_WEIGHT = 200.0
#: Full-size L-BFGS iterations of each frame after the first (which gets the whole
#: coarse-to-fine run): it starts from the previous frame warped onto it. Without the Adam
#: warm-up, 7 reach a lower loss than 15 with it did, in under half the time
#: (benchmarks/video.py, docs/decisions.md).
FRAME_ITERATIONS = 7
#: A frame whose flow from the previous one is trusted on less than this share of its
#: pixels starts afresh (a scene cut): no temporal term, the whole run.
CUT_RELIABLE = 0.5
#: The H.264 / VP9 constant-quality factor (lower is better; 18 is near transparent).
CRF = 18
#: The optical flow methods (:mod:`artstyle.video.flow`), fastest first.
FLOWS = ("dis-fast", "dis-medium", "farneback")
#: Frames of a chunk on a cluster (:mod:`artstyle.video.chunks`), its warm-up not counted
#: (about 2 s at 24 fps).
CHUNK_FRAMES = 48
#: Frames a chunk starting mid-scene begins early, cross-faded with the chunk before.
OVERLAP = 4


def check_chunking(chunk_frames: int, overlap: int) -> None:
    """ConfigError unless ``chunk_frames`` >= 2 and 0 <= ``overlap`` < ``chunk_frames``."""
    if chunk_frames < 2:
        raise ConfigError(f"expected a whole number of at least 2, got {chunk_frames}", option="chunk_frames")
    if not 0 <= overlap < chunk_frames:
        problem = f"expected a whole number from 0 to {chunk_frames - 1} (below --chunk-frames), got {overlap}"
        raise ConfigError(problem, option="overlap")


@dataclass(frozen=True)
class VideoJob:
    """Everything ``artstyle video`` needs. ``config`` holds the still-image options (its
    ``size`` is the long side of the output frames); ``duration`` None runs to the end."""

    input: str
    styles: list[str]
    output: str
    config: Config
    start: float = 0.0
    duration: float | None = None
    temporal_weight: float = TEMPORAL_WEIGHT
    frame_iterations: int = FRAME_ITERATIONS
    flow: str = "dis-medium"
    crf: int = CRF
    resume: bool = False
    overwrite: bool = True

    def __post_init__(self) -> None:
        checks = (
            ("start", self.start >= 0, f"expected seconds of at least 0, got {self.start}"),
            (
                "duration",
                self.duration is None or self.duration > 0,
                f"expected seconds of more than 0, got {self.duration}",
            ),
            ("temporal_weight", self.temporal_weight >= 0, f"expected at least 0, got {self.temporal_weight}"),
            (
                "frame_iterations",
                self.frame_iterations >= 1,
                f"expected a whole number of at least 1, got {self.frame_iterations}",
            ),
            ("flow", self.flow in FLOWS, f"unknown flow method {self.flow!r} (choose from {', '.join(FLOWS)})"),
            ("crf", 0 <= self.crf <= 51, f"expected a whole number from 0 to 51, got {self.crf}"),
        )
        for option, ok, problem in checks:
            if not ok:
                raise ConfigError(problem, option=option)

    @property
    def temporal(self) -> bool:
        """Whether frames are tied together (else each frame is stylized on its own)."""
        return self.temporal_weight > 0

    def options(self) -> dict[str, object]:
        """The video options that change the result (for the work folder's record)."""
        return {
            "start": self.start,
            "duration": self.duration,
            "temporal_weight": self.temporal_weight,
            "frame_iterations": self.frame_iterations,
            "flow": self.flow,
        }
