"""``artstyle video --ray``: a clip split into chunks (at scene cuts and every N frames,
with an overlap), the chunks' frames stitched in order with the overlap cross-faded, a
stopped job resumed with only the missing chunks, and a clip on the session's local Ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _clips import panned, scene
from test_video import CaptureFixture, video_options, video_stats

from artstyle.api import make_config
from artstyle.cli import main
from artstyle.errors import ConfigError
from artstyle.files.metadata import read_metadata
from artstyle.files.video import VideoFrame, frame_name, probe_video, read_frame_png
from artstyle.files.write import save_image
from artstyle.runs import WRITTEN, Signals
from artstyle.video.chunks import OWN, TAIL, WARMUP, Chunk, CutFinder, split
from artstyle.video.cluster import ChunkResult, Stitcher
from artstyle.video.job import VideoJob, check_chunking
from artstyle.video.run import Excerpt, VideoReporter, run_video
from artstyle.video.work import WorkFolder


def frames(count: int) -> list[VideoFrame]:
    return [VideoFrame(index, index * 10, np.zeros((2, 2, 3), np.uint8)) for index in range(count)]


def owned(chunk: Chunk) -> list[int]:
    return [frame.index for position, frame in enumerate(chunk.frames) if chunk.role(position) != WARMUP]


def test_chunks_split_every_n_frames_and_at_cuts_each_mid_scene_one_starting_early() -> None:
    chunks = list(split(frames(10), lambda frame: frame.index == 6, chunk_frames=4, overlap=1))
    assert [owned(chunk) for chunk in chunks] == [[0, 1, 2, 3], [4, 5], [6, 7, 8, 9]]
    assert [[f.index for f in chunk.frames] for chunk in chunks] == [[0, 1, 2, 3], [3, 4, 5], [6, 7, 8, 9]]
    assert [(c.warmup, c.tail, c.seam) for c in chunks] == [(0, 1, False), (1, 0, True), (0, 0, False)]
    assert [c.first for c in chunks] == [0, 4, 6]
    plain = list(split(frames(7), lambda frame: False, chunk_frames=3, overlap=0))
    assert [owned(c) for c in plain] == [[0, 1, 2], [3, 4, 5], [6]] and [c.seam for c in plain] == [False, True, True]


def test_both_sides_of_an_overlap_give_each_frame_the_same_rising_weight() -> None:
    first, second, _ = split(frames(20), lambda frame: False, chunk_frames=8, overlap=3)
    assert [first.role(p) for p in range(8)] == [OWN] * 5 + [TAIL] * 3
    tail = {f.index: first.weight(p) for p, f in enumerate(first.frames) if first.role(p) == TAIL}
    warm = {f.index: second.weight(p) for p, f in enumerate(second.frames) if second.role(p) == WARMUP}
    assert tail == warm == {5: 0.25, 6: 0.5, 7: 0.75}


@pytest.mark.parametrize(("chunk_frames", "overlap", "option"), [(1, 0, "chunk_frames"), (4, 4, "overlap"),
                                                                 (4, -1, "overlap")])  # fmt: skip
def test_bad_chunking_is_refused(chunk_frames: int, overlap: int, option: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_chunking(chunk_frames, overlap)
    assert caught.value.option == option


def test_the_cut_finder_finds_a_change_of_scene_and_not_a_pan() -> None:
    pan = panned(scene(80, 40, seed=1), 4, (48, 32))
    other = panned(scene(80, 40, seed=8)[::-1], 2, (48, 32))
    finder = CutFinder("dis-medium")
    found = [finder(VideoFrame(i, i, pixels)) for i, pixels in enumerate(pan + other)]
    assert found == [False, False, False, False, True, False] and [i for i, _ in finder.found] == [4]
    assert not CutFinder("dis-medium", enabled=False)(VideoFrame(0, 0, pan[0]))


# --------------------------------------------------------------------------- #
# Stitching
# --------------------------------------------------------------------------- #


def png(tmp_path: Path, value: float, index: int) -> bytes:
    path = tmp_path / f"made_{value}_{index}.png"
    save_image(np.full((4, 6, 3), value, np.float32), path, {"frame": index}, bit_depth=16)
    return path.read_bytes()


class Done(VideoReporter):
    def __init__(self) -> None:
        self.done: list[int] = []

    def frame_done(self, index: int) -> None:
        self.done.append(index)


def stitcher(tmp_path: Path, reporter: VideoReporter, crossfade: bool = True) -> Stitcher:
    work = WorkFolder(str(tmp_path / "out.mp4"), {"input": "x"})
    work.open(resume=False)
    excerpt = Excerpt(None, None, 0.0, None, (6, 4), [], work)  # type: ignore[arg-type]
    return Stitcher(excerpt, reporter, Signals(), crossfade)


def result(tmp_path: Path, chunk: Chunk, value: float) -> ChunkResult:
    return ChunkResult(WRITTEN, tuple((f.index, png(tmp_path, value, f.index)) for f in chunk.frames))


def test_chunks_arriving_in_any_order_are_stitched_with_the_overlap_cross_faded(tmp_path: Path) -> None:
    first, second = split(frames(7), lambda frame: False, chunk_frames=4, overlap=2)
    reporter = Done()
    stitch = stitcher(tmp_path, reporter)
    stitch.take(second, result(tmp_path, second, 0.8))  # the later chunk ends first
    assert reporter.done == [4, 5, 6] and stitch.finished(second) and not stitch.finished(first)
    assert stitch.excerpt.done == 0
    stitch.take(first, result(tmp_path, first, 0.2))
    work = stitch.work
    assert sorted(reporter.done) == list(range(7)) and stitch.excerpt.done == 7
    values = [float(read_frame_png(work.frame(i)).mean()) for i in range(7)]
    assert values == pytest.approx([0.2, 0.2, 0.4, 0.6, 0.8, 0.8, 0.8], abs=1e-4)
    assert read_metadata(work.frame(2)) == {"frame": 2, "crossfade": pytest.approx(1 / 3, abs=1e-4)}
    assert not any((work.path / "parts").iterdir())


def test_a_stopped_job_keeps_each_chunk_and_its_overlap_halves(tmp_path: Path) -> None:
    first, second, third = split(frames(10), lambda frame: False, chunk_frames=4, overlap=1)
    stitch = stitcher(tmp_path, Done())
    stitch.take(first, result(tmp_path, first, 0.2))
    assert stitch.finished(first) and not stitch.finished(second)
    assert not stitch.work.frame(3).exists() and stitch.work.part(3, "a").exists()  # waits for the next chunk
    assert stitch.excerpt.done == 3 and not stitch.work.empty()
    (tmp_path / "second").mkdir()
    again = stitcher(tmp_path / "second", Done(), crossfade=False)
    again.take(second, result(tmp_path, second, 0.8))  # warm-up only: the overlap frame stays the owner's
    assert again.finished(second) and not again.work.frame(3).exists() and again.work.frame(4).exists()
    assert not again.finished(third)


# --------------------------------------------------------------------------- #
# On the session's local Ray
# --------------------------------------------------------------------------- #


def ray_job(clip: Path, style: Path, output: Path, weights: str, **options: object) -> VideoJob:
    config = make_config(size=48, iterations=2, coarse_iterations=1, seed=3, content_layers="relu2_2",
                         style_layers="relu1_1,relu2_1", device="cpu", weights=weights)  # fmt: skip
    return VideoJob(input=str(clip), styles=[str(style)], output=str(output), config=config, frame_iterations=2,
                    **options)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.ray
def test_a_video_in_chunks_on_ray_is_the_whole_clip_in_order(
    tmp_path: Path, clip: Path, style: Path, local_ray: Any, random_weights: str
) -> None:
    from artstyle.video.cluster import RayChunks

    here = run_video(ray_job(clip, style, tmp_path / "here", random_weights))
    outcome = run_video(ray_job(clip, style, tmp_path / "ray", random_weights),
                        executor=RayChunks(cpus_per_job=1, chunk_frames=3, overlap=1))  # fmt: skip
    assert here.ok and outcome.kind == WRITTEN and outcome.total == 8 and outcome.seams == (3, 6)
    written = sorted(p.name for p in (tmp_path / "ray").iterdir())
    assert written == [frame_name(i) for i in range(8)] and not (tmp_path / "ray.work").exists()
    same = [
        np.array_equal(read_frame_png(tmp_path / "here" / n), read_frame_png(tmp_path / "ray" / n)) for n in written
    ]
    assert same[:2] == [True, True]  # the first chunk is the clip's own start
    assert not same[3]  # a later chunk's chain starts afresh (warmed up on frame 3)
    crossfades = [(read_metadata(tmp_path / "ray" / name) or {}).get("crossfade") for name in written]
    assert crossfades == [None, None, 0.5, None, None, 0.5, None, None]


class StopAt(Done):
    """Stops the job (Ctrl-C) once frame ``index`` is in."""

    def __init__(self, index: int | None = None) -> None:
        super().__init__()
        self.index = index

    def frame_done(self, index: int) -> None:
        super().frame_done(index)
        if index == self.index:
            raise KeyboardInterrupt


@pytest.mark.ray
def test_a_stopped_job_on_ray_resumes_with_only_the_chunks_it_lacks(
    tmp_path: Path, clip: Path, style: Path, local_ray: Any, random_weights: str
) -> None:
    from artstyle.video.cluster import RayChunks

    output = tmp_path / "out.mkv"
    chunks = RayChunks(cpus_per_job=1, chunk_frames=3, overlap=1, window=1)  # one chunk at a time: a known order
    stopped = run_video(ray_job(clip, style, output, random_weights), StopAt(3), executor=chunks)
    assert stopped.kind == "interrupted" and stopped.work is not None and stopped.frames == 4 and not output.exists()
    resumed = StopAt()
    finished = run_video(ray_job(clip, style, output, random_weights, resume=True), resumed, executor=chunks)
    assert finished.ok and resumed.done == [4, 5, 6, 7]  # the first chunk was not sent again
    assert video_stats(output)[0] == 8 and not Path(stopped.work).exists()


@pytest.mark.ray
def test_the_command_runs_a_video_on_ray(
    tmp_path: Path, clip: Path, style: Path, local_ray: Any, random_weights: str, capsys: CaptureFixture
) -> None:
    output = tmp_path / "out.mp4"
    ray = ["--ray", "auto", "--cpus-per-job", "1", "--chunk-frames", "4", "--weights", random_weights]
    assert main(["video", str(clip), str(style), "-o", str(output), *video_options(*ray)]) == 0
    assert probe_video(str(output)).frames == 8 and capsys.readouterr().err == ""


def test_chunk_options_need_ray_and_sensible_values(
    tmp_path: Path, clip: Path, style: Path, capsys: CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    output = ["video", str(clip), str(style), "-o", str(tmp_path / "out.mp4")]
    assert main([*output, *video_options("--chunk-frames", "8")]) == 2
    assert "--chunk-frames: only applies on a Ray cluster" in capsys.readouterr().err
    assert main([*output, *video_options("--ray", "127.0.0.2:1", "--chunk-frames", "4", "--overlap", "4")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overlap: expected a whole number from 0 to 3" in err
    assert main([*output, *video_options("--ray", "127.0.0.2:1")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot connect to the Ray cluster at 127.0.0.2:1" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "style.png"]
