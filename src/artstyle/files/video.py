"""Video files at the edge: probing and decoding an input, writing the output atomically.

Decoding and encoding use FFmpeg's libraries through PyAV (the ``[video]`` extra); no
ffmpeg process is started. :func:`probe_video` checks an input before any work (a video
stream, a first frame, the pixel limit) and :func:`read_frames` yields an excerpt's
frames as 8-bit RGB arrays at the processing size, with their timestamps.
:class:`VideoOutput` writes the stylized frames: H.264 (``.mp4``, ``.mkv``, ``.mov``) or
VP9 (``.webm``) in yuv420p, or a directory of numbered 16-bit PNGs. The input's frame
rate, time base, timestamps (shifted to start at 0), display rotation and sample aspect
ratio are kept, and its first audio stream is copied packet by packet (re-encoded only
where the container cannot hold its codec). Everything goes to a temporary file (or
directory) beside the output that replaces it only once complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from artstyle.errors import VideoReadError, VideoWriteError
from artstyle.files import limits
from artstyle.files.atomic import create_temp
from artstyle.files.problems import directory_problem

#: Output containers by extension; a directory (no extension, or an existing folder) gets PNGs.
VIDEO_FORMATS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov", ".webm": "webm"}
#: The audio codecs each container holds as they are (others are re-encoded to the first).
AUDIO_CODECS = {
    "mp4": ("aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"),
    "mov": ("aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s24le"),
    "matroska": ("aac", "mp3", "opus", "vorbis", "flac", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le"),
    "webm": ("opus", "vorbis"),
}
FRAMES = "frames"  # the output kind of a directory of PNGs


def _av() -> ModuleType:
    """PyAV, or a clear error when the ``[video]`` extra is not installed."""
    try:
        import av
    except ImportError:  # pragma: no cover - the extra is installed wherever video is tested
        raise VideoReadError("video needs the [video] extra: pip install 'artstyle[video]'") from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` found: the first video stream, as stored (before rotation)."""

    path: str
    width: int
    height: int
    rate: Fraction  # average frames per second, exact (30000/1001 stays so)
    time_base: Fraction
    start: float  # the stream's first timestamp, in seconds
    duration: float  # seconds (0 when the file does not say)
    frames: int  # frames the header announces (0 when it does not say)
    rotation: int  # display rotation in degrees, counter-clockwise
    sample_aspect_ratio: Fraction | None
    audio: str | None  # the codec of the first audio stream, if any


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame of an excerpt: its number in the excerpt (from 0), its timestamp
    in the stream's time base counted from the excerpt's start, and (H, W, 3) RGB pixels."""

    index: int
    pts: int
    pixels: npt.NDArray[np.uint8]


def _read_error(path: str, problem: str) -> VideoReadError:
    return VideoReadError(f"cannot read video '{path}': {problem}")


def _write_error(path: str, problem: str) -> VideoWriteError:
    return VideoWriteError(f"cannot write video '{path}': {problem}")


@contextlib.contextmanager
def _opened(path: str) -> Iterator[Any]:
    """The input container, with every failure to open it as one VideoReadError."""
    av = _av()
    if not os.path.exists(path):
        raise _read_error(path, "no such file")
    if os.path.isdir(path):
        raise _read_error(path, "is a directory, not a video")
    try:
        container = av.open(path, mode="r")
    except av.EOFError:
        raise _read_error(path, "the file ends before its first frame (empty or truncated)") from None
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise _read_error(path, f"not a video file ({_ffmpeg_problem(exc)})") from None
    except OSError as exc:
        raise _read_error(path, exc.strerror or str(exc)) from None
    try:
        yield container
    finally:
        container.close()


def _ffmpeg_problem(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).strip().rstrip(".")[:120]


def probe_video(path: str) -> VideoInfo:
    """Check that ``path`` is a video with a decodable first frame within the pixel limit
    (see :func:`~artstyle.files.limits.pixel_limit`), and describe its streams."""
    with _opened(path) as container:
        if not container.streams.video:
            raise _read_error(path, "no video stream (only " + _stream_kinds(container) + ")")
        stream = container.streams.video[0]
        _check_moving(path, container.format.name, stream.codec_context.name)
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > limits.max_pixels():
            raise _read_error(path, limits.too_large_problem(width * height, limits.max_pixels(), (width, height)))
        first = _first_frame(path, container, stream)
        time_base = Fraction(stream.time_base)
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        duration = float(stream.duration * time_base) if stream.duration else (container.duration or 0) / 1e6
        _check_complete(path, container, stream, duration, rate)
        return VideoInfo(
            path=path,
            width=first.width,
            height=first.height,
            rate=Fraction(rate),
            time_base=time_base,
            start=float((stream.start_time or 0) * time_base),
            duration=duration,
            frames=int(stream.frames or 0),
            rotation=int(getattr(first, "rotation", 0) or 0),
            sample_aspect_ratio=Fraction(stream.sample_aspect_ratio) if stream.sample_aspect_ratio else None,
            audio=audio,
        )


def _check_moving(path: str, container_format: str, codec: str) -> None:
    """Refuse what FFmpeg reads as a video but is not one: text (its ``tty`` demuxer shows
    any text file as ANSI art) and still images."""
    if container_format == "tty" or codec == "ansi":
        raise _read_error(path, "not a video file (text)")
    if container_format == "image2" or container_format.endswith("_pipe"):
        raise _read_error(path, "a still image, not a video (plain 'artstyle' stylizes images)")


def _check_complete(path: str, container: Any, stream: Any, duration: float, rate: Fraction) -> None:
    """Refuse, before any work, a video stream whose packets end well before the file's
    duration says (truncated, or corrupt midway: FFmpeg loses it there without an error).
    Reads the packets only, decoding nothing."""
    av = _av()
    if duration <= 0:
        return
    container.seek(0, stream=stream, backward=True, any_frame=False)
    last = None
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                last = packet.pts if last is None else max(last, packet.pts)
    except av.FFmpegError as exc:
        raise _read_error(path, f"corrupt video data ({_ffmpeg_problem(exc)})") from None
    start = stream.start_time or 0
    reached = 0.0 if last is None else float((last - start) * stream.time_base)
    if reached < duration - 0.1 - 2 / float(rate):  # the last frame lasts 1/rate; audio may run on a little
        raise _read_error(path, f"the video stream stops at {reached:.2f} s of {duration:.2f} s (truncated or corrupt)")


def _stream_kinds(container: Any) -> str:
    kinds = sorted({stream.type for stream in container.streams})
    return ", ".join(f"{kind} streams" for kind in kinds) if kinds else "no streams at all"


def _first_frame(path: str, container: Any, stream: Any) -> Any:
    av = _av()
    try:
        for frame in container.decode(stream):
            return frame
    except av.FFmpegError as exc:
        raise _read_error(path, f"corrupt video data at the first frame ({_ffmpeg_problem(exc)})") from None
    raise _read_error(path, "the video stream has no frames")


def even_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """The processing size: ``long_side`` on the long side, the aspect kept, both sides
    rounded to even numbers (yuv420p halves the colour planes), at least 2 each."""
    scale = long_side / max(width, height)
    return max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))


def read_frames(info: VideoInfo, start: float, end: float | None, size: tuple[int, int]) -> Iterator[VideoFrame]:
    """The frames whose timestamps lie in [``start``, ``end``) seconds from the stream's
    start (``end`` None: to the last), resized to ``size`` (width, height) as RGB.

    A stream corrupt midway raises VideoReadError naming the frame it reached."""
    av = _av()
    index, origin = 0, None
    with _opened(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if start > 0:
            container.seek(int((info.start + start) / info.time_base), stream=stream, backward=True)
        try:
            for frame in container.decode(stream):
                seconds = float((frame.pts or 0) * info.time_base) - info.start
                if seconds < start - 1e-6:
                    continue
                if end is not None and seconds >= end - 1e-6:
                    break
                origin = frame.pts if origin is None else origin
                pixels = frame.reformat(width=size[0], height=size[1], format="rgb24", interpolation="AREA")
                yield VideoFrame(index, int(frame.pts - origin), pixels.to_ndarray())
                index += 1
        except av.FFmpegError as exc:
            raise _read_error(info.path, f"corrupt video data after frame {index} ({_ffmpeg_problem(exc)})") from None


def output_kind(path: str) -> str:
    """The container of an output path (see :data:`VIDEO_FORMATS`), or :data:`FRAMES` for
    a directory; VideoWriteError for any other extension."""
    suffix = Path(path).suffix.lower()
    if suffix in VIDEO_FORMATS:
        return VIDEO_FORMATS[suffix]
    if not suffix or os.path.isdir(path):
        return FRAMES
    supported = ", ".join(sorted(VIDEO_FORMATS))
    raise _write_error(path, f"unsupported extension '{Path(path).suffix}' (supported: {supported}, or a directory)")


def check_video_output(path: str, *, overwrite: bool = True) -> str:
    """Check before any work that the output can be written; its kind (:func:`output_kind`).

    A directory output must not exist yet, or be empty (frames are never mixed with
    other files); a video file is replaced only with ``overwrite``."""
    if not path:
        raise VideoWriteError("cannot write video: the output path is empty")
    kind = output_kind(path)
    target = Path(path)
    if kind == FRAMES and target.is_dir() and any(target.iterdir()):
        raise _write_error(path, "the directory is not empty (frames go into a new or empty directory)")
    if kind != FRAMES and target.is_dir():
        raise _write_error(path, "is a directory")
    if kind != FRAMES and not overwrite and target.exists():
        raise _write_error(path, "the file already exists (not overwritten: --no-clobber)")
    problem = directory_problem(target.absolute().parent)
    if problem is not None:
        raise _write_error(path, problem)
    return kind


def frame_name(index: int) -> str:
    """The file name of frame ``index`` (from 0) in a PNG sequence: ``frame_000001.png`` is the first."""
    return f"frame_{index + 1:06d}.png"


def read_frame_png(path: str | os.PathLike[str]) -> npt.NDArray[np.float32]:
    """A frame PNG (8 or 16 bits) as (H, W, 3) float RGB in [0, 1]."""
    try:
        import cv2
    except ImportError:  # pragma: no cover - the extra is installed wherever video is tested
        raise VideoReadError("video needs the [video] extra: pip install 'artstyle[video]'") from None
    pixels = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)
    if pixels is None or pixels.ndim != 3:
        raise VideoReadError(f"cannot read frame '{os.fspath(path)}': not a colour PNG")
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    return np.ascontiguousarray(pixels[..., ::-1], dtype=np.float32) / np.float32(scale)


@dataclass(frozen=True)
class Encoding:
    """How the output is encoded: its size, the H.264/VP9 quality (CRF) and the excerpt,
    in seconds, whose audio is copied."""

    size: tuple[int, int]
    crf: int
    start: float
    end: float | None


class VideoOutput:
    """Writes the stylized frames of ``info``'s excerpt to ``path``, atomically: frames go
    to a temporary file or directory beside ``path``, which :meth:`finish` moves onto it;
    :meth:`abandon` (or leaving the ``with`` block by an exception) removes it."""

    def __init__(self, path: str, info: VideoInfo, encoding: Encoding) -> None:
        self.path, self.info, self.encoding = path, info, encoding
        self.kind = output_kind(path)
        self.count = 0
        target = Path(path).absolute()
        self.temp = create_temp(target)  # mode 0666 less the umask, as a file written in place
        self._muxer: _Muxer | None = None
        if self.kind == FRAMES:
            self.temp.unlink()
            self.temp.mkdir()
        else:
            self._muxer = _Muxer(str(self.temp), self.kind, info, encoding)

    def __enter__(self) -> VideoOutput:
        return self

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        if kind is not None:
            self.abandon()

    def write(self, frame: str | os.PathLike[str], pts: int) -> None:
        """Add the next frame, a frame PNG (copied as it is into a frame directory, encoded
        into a video), at ``pts`` (the stream's time base)."""
        try:
            if self._muxer is None:
                shutil.copyfile(frame, self.temp / frame_name(self.count))
            else:
                self._muxer.add(read_frame_png(frame), pts)
        except (OSError, _av().FFmpegError) as exc:
            raise _write_error(self.path, _ffmpeg_problem(exc)) from None
        self.count += 1

    def finish(self) -> None:
        """Close the encoder and move the complete output onto ``path``."""
        try:
            if self._muxer is not None:
                self._muxer.close()
            elif os.path.isdir(self.path):
                os.rmdir(self.path)  # empty (checked): replaced by the complete directory
            os.replace(self.temp, self.path)
        except (OSError, _av().FFmpegError) as exc:
            self.abandon()
            raise _write_error(self.path, _ffmpeg_problem(exc)) from None

    def abandon(self) -> None:
        if self._muxer is not None:
            self._muxer.abort()
        if self.temp.is_dir():
            shutil.rmtree(self.temp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.temp.unlink()


class _Muxer:
    """The output container: one video stream encoded from the frames, and the input's
    audio packets of the excerpt, interleaved by time."""

    def __init__(self, path: str, kind: str, info: VideoInfo, encoding: Encoding) -> None:
        av = _av()
        self.container = av.open(path, mode="w", format=kind)
        codec = "libvpx-vp9" if kind == "webm" else "libx264"
        options = {"crf": str(encoding.crf)}
        if kind == "webm":
            options["b"] = "0"  # constant quality
            options["row-mt"] = "1"
        else:
            options["preset"] = "medium"
        stream = self.container.add_stream(codec, rate=info.rate, options=options)
        stream.width, stream.height = encoding.size
        stream.pix_fmt = "yuv420p"
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        if info.sample_aspect_ratio:
            stream.codec_context.sample_aspect_ratio = info.sample_aspect_ratio
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        self.video = stream
        self.audio = _AudioCopy(self.container, kind, info, encoding) if info.audio else None

    def add(self, pixels: npt.NDArray[np.float32], pts: int) -> None:
        av = _av()
        rgb = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts, frame.time_base = pts, self.info_time_base
        for packet in self.video.encode(frame):
            self._mux(packet)

    @property
    def info_time_base(self) -> Fraction:
        return Fraction(self.video.time_base)

    def _mux(self, packet: Any) -> None:
        if self.audio is not None and packet.pts is not None:
            self.audio.mux_until(float(packet.pts * packet.time_base))
        self.container.mux(packet)

    def close(self) -> None:
        for packet in self.video.encode(None):
            self._mux(packet)
        if self.audio is not None:
            self.audio.mux_until(None)
        self.container.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.container.close()


class _AudioCopy:
    """The input's first audio stream over the excerpt, shifted to start with the video:
    its packets copied when the container holds the codec, else decoded and re-encoded
    (AAC, or Opus for WebM). Packets are read lazily, in step with the video."""

    def __init__(self, container: Any, kind: str, info: VideoInfo, encoding: Encoding) -> None:
        av = _av()
        self.output, self.encoding = container, encoding
        self.input = av.open(info.path, mode="r")
        source = self.input.streams.audio[0]
        self.source = source
        self.copy = source.codec_context.name in AUDIO_CODECS[kind]
        if self.copy:
            self.stream = container.add_stream_from_template(source)
        else:
            codec = "libopus" if kind == "webm" else "aac"
            rate = 48000 if kind == "webm" else source.codec_context.sample_rate or 48000
            self.stream = container.add_stream(codec, rate=rate)
            self.stream.layout = source.codec_context.layout.name if source.codec_context.layout else "stereo"
        self.offset = info.start + encoding.start  # seconds of the input at the output's 0
        if encoding.start > 0:
            self.input.seek(int(self.offset / source.time_base), stream=source, backward=True)
        self.packets = self.input.demux(source)
        self.pending: Any = None
        self.done = self.flushed = False

    def mux_until(self, seconds: float | None) -> None:
        """Mux the audio up to ``seconds`` of the output (None: all of the excerpt)."""
        while not self.done:
            packet = self.pending if self.pending is not None else next(self.packets, None)
            self.pending = None
            if packet is None or packet.pts is None:
                self.done = packet is None
                continue
            at = float(packet.pts * packet.time_base) - self.offset
            end = None if self.encoding.end is None else self.encoding.end - self.encoding.start
            if end is not None and at >= end:
                self.done = True
            elif seconds is not None and at > seconds:
                self.pending = packet
                return
            elif at >= -1e-6:
                self._put(packet)
        self._flush()

    def _put(self, packet: Any) -> None:
        if self.copy:
            shift = round(self.offset / packet.time_base)
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = self.stream
            self.output.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None
            for encoded in self.stream.encode(frame):
                self.output.mux(encoded)

    def _flush(self) -> None:
        if self.flushed:
            return
        self.flushed = True
        if not self.copy:
            for encoded in self.stream.encode(None):
                self.output.mux(encoded)
        self.input.close()
