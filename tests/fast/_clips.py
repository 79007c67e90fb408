"""Small video clips for the video tests: a smooth picture panned across, encoded with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from _support import smooth_rgb


def scene(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth random picture, larger than a frame, to pan across."""
    return np.asarray(smooth_rgb(width, height, seed=seed))


def panned(picture: np.ndarray, count: int, size: tuple[int, int], step: int = 2) -> list[np.ndarray]:
    """``count`` frames of ``size`` (w, h) panning right across ``picture`` by ``step`` px a frame."""
    width, height = size
    return [np.ascontiguousarray(picture[:height, t * step : t * step + width]) for t in range(count)]


def make_clip(
    path: Path,
    frames: list[np.ndarray],
    rate: Fraction = Fraction(30000, 1001),
    audio: bool = True,
    rotation: int = 0,
) -> Path:
    """An H.264 clip (yuv444p-free: yuv420p) of ``frames``, with a sine tone when ``audio``."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate, options={"crf": "10"})
        video.width, video.height = frames[0].shape[1], frames[0].shape[0]
        video.pix_fmt = "yuv420p"
        if rotation:
            video.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=48000) if audio else None
        for pixels in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            tone(container, sound, seconds=len(frames) / float(rate))
    return path


def tone(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float) -> None:
    samples = np.sin(np.arange(int(48000 * seconds)) * 2 * np.pi * 440 / 48000).astype(np.float32)
    for start in range(0, samples.size, 1024):
        chunk = samples[start : start + 1024][None]
        frame = av.AudioFrame.from_ndarray(np.repeat(chunk, 2, axis=0), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = 48000, start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
