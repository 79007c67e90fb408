"""``artstyle video``: the flow and its certainty, the temporal term, video files, the job.

Clips are made here with PyAV (tiny, a few frames); the network is the fast tier's random
one (``fake_bundled``), so a whole video job takes seconds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from _clips import make_clip, panned, scene, tone
from _support import FakeBundled, smooth_rgb
from PIL import Image
from test_robust_cli import FAST_FLAGS, signal_child

from artstyle.cli import main
from artstyle.engine import Progress
from artstyle.errors import ConfigError, VideoReadError, VideoWriteError
from artstyle.files.limits import pixel_limit
from artstyle.files.metadata import read_metadata
from artstyle.files.video import (
    Encoding,
    VideoOutput,
    check_video_output,
    even_size,
    frame_name,
    probe_video,
    read_frame_png,
    read_frames,
)
from artstyle.losses import temporal_loss
from artstyle.runs import WRITTEN
from artstyle.video import flow as flow_module
from artstyle.video.flow import certainty, grey, optical_flow, warp, warping_error
from artstyle.video.job import VideoJob
from artstyle.video.run import FrameChain, VideoReporter, run_video
from artstyle.video.work import work_path

CaptureFixture = pytest.CaptureFixture[str]


# --------------------------------------------------------------------------- #
# Clips
# --------------------------------------------------------------------------- #


def video_options(*extra: str) -> list[str]:
    return ["--size", "48", "--iterations", "2", "--coarse-iterations", "1", "--frame-iterations", "2", "-q",
            "--device", "cpu", "--seed", "3", *FAST_FLAGS, *extra]  # fmt: skip


def video_stats(path: Path) -> tuple[int, Fraction, Fraction, list[str]]:
    """Frames, average rate, time base and stream kinds of a written video."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, Fraction(stream.average_rate), Fraction(stream.time_base), [s.type for s in container.streams]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*partial*")) + sorted(p.name for p in directory.glob("*.work"))


# --------------------------------------------------------------------------- #
# Flow, certainty, warping
# --------------------------------------------------------------------------- #


def test_the_flow_of_a_pan_is_the_pan_and_warping_along_it_rebuilds_the_frame() -> None:
    before, after = panned(scene(120, 60, seed=2), 2, (96, 48), step=3)  # after = before moved 3 px left
    backward = optical_flow(grey(after), grey(before), "dis-medium")
    interior = backward[8:-8, 8:-12]
    assert abs(float(interior[..., 0].mean()) - 3.0) < 0.3 and abs(float(interior[..., 1].mean())) < 0.3
    warped = warp(torch.from_numpy(before).permute(2, 0, 1)[None].float() / 255, backward)
    target = torch.from_numpy(after).permute(2, 0, 1)[None].float() / 255
    mask = certainty(backward, optical_flow(grey(before), grey(after), "dis-medium"))
    assert warping_error(target, warped, mask) < 0.1 * warping_error(target, warp(target * 0 + 0.5, backward), mask)
    assert warping_error(target, warped, mask) < 1e-3


def test_certainty_is_zero_where_the_flow_leaves_the_frame_or_a_region_is_revealed() -> None:
    height, width = 40, 60
    backward = np.zeros((height, width, 2), np.float32)
    backward[..., 0] = 4.0  # everything came from 4 px to the right: the last 4 columns from outside
    forward = np.zeros_like(backward)
    forward[..., 0] = -4.0
    mask = certainty(backward, forward, smoothing=0)
    assert mask[:, -3:].max() == 0 and mask[:, :-6].min() == 1
    forward[10:20, 20:30] = 0.0  # the forward flow does not lead back there: a disocclusion
    mask = certainty(backward, forward, smoothing=0)
    assert mask[10:20, 17:25].max() == 0 and mask[30:, 5:40].min() == 1


def test_motion_boundaries_are_not_trusted() -> None:
    backward = np.zeros((30, 40, 2), np.float32)
    backward[:, 20:, 1] = 5.0  # the right half moved down: a boundary at column 20
    forward = np.zeros_like(backward)
    forward[:, 20:, 1] = -5.0
    mask = certainty(backward, forward, smoothing=0)
    assert mask[10:20, 19:21].max() == 0 and mask[10:20, 5:15].min() == 1


def test_every_flow_method_runs_and_an_unknown_one_is_refused() -> None:
    frames = panned(scene(80, 40), 2, (48, 32))
    for method in flow_module.FLOWS:
        assert optical_flow(grey(frames[0]), grey(frames[1]), method).shape == (32, 48, 2)
    with pytest.raises(ConfigError, match="unknown flow method"):
        optical_flow(grey(frames[0]), grey(frames[1]), "raft")


def test_the_temporal_loss_is_the_certainty_weighted_mean_square() -> None:
    image = torch.rand(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    previous = torch.rand(1, 3, 4, 5, dtype=torch.float64)
    trusted = torch.zeros(1, 1, 4, 5, dtype=torch.float64)
    trusted[..., :2, :] = 1.0
    expected = (image - previous)[..., :2, :].pow(2).sum() / (3 * 4 * 5)
    assert torch.allclose(temporal_loss(image, previous, trusted), expected)
    assert float(temporal_loss(previous, previous, torch.ones_like(trusted))) == 0.0
    assert torch.autograd.gradcheck(lambda x: temporal_loss(x, previous, trusted), (image,))
    with pytest.raises(ValueError, match="temporal_loss"):
        temporal_loss(image, previous[..., :3], trusted)


# --------------------------------------------------------------------------- #
# Video files
# --------------------------------------------------------------------------- #


def test_probe_reads_the_exact_rate_rotation_and_audio(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "r.mp4", panned(scene(80, 40), 4, (48, 32)), rotation=90)
    info = probe_video(str(path))
    assert (info.width, info.height, info.rate, info.rotation, info.audio) == (48, 32, Fraction(30000, 1001), 90, "aac")


def test_an_excerpt_takes_the_frames_of_its_seconds(clip: Path) -> None:
    info = probe_video(str(clip))
    frames = list(read_frames(info, 2 / float(info.rate), 5 / float(info.rate), (24, 16)))
    assert [frame.index for frame in frames] == [0, 1, 2] and frames[0].pts == 0
    assert frames[0].pixels.shape == (16, 24, 3) and frames[1].pts > 0


def test_even_sizes() -> None:
    assert even_size(1280, 720, 256) == (256, 144)
    assert even_size(101, 200, 75) == (38, 76)
    assert even_size(1000, 10, 64) == (64, 2)


def _write(path: Path, tmp_path: Path, info_of: Path, frames: list[np.ndarray]) -> None:
    info = probe_video(str(info_of))
    pngs = []
    for index, pixels in enumerate(frames):
        png = tmp_path / f"in_{index}.png"
        Image.fromarray(pixels).save(png)
        pngs.append(png)
    stamps = [frame.pts for frame in read_frames(info, 0.0, None, (48, 32))]
    with VideoOutput(str(path), info, Encoding((48, 32), 18, 0.0, None)) as output:
        for png, pts in zip(pngs, stamps, strict=True):
            output.write(png, pts)
        output.finish()


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov", ".webm"])
def test_every_container_keeps_the_frames_rate_and_sound(tmp_path: Path, clip: Path, suffix: str) -> None:
    frames = panned(scene(80, 40, seed=4), 8, (48, 32))
    output = tmp_path / f"out{suffix}"
    _write(output, tmp_path, clip, frames)
    count, rate, _, kinds = video_stats(output)
    assert count == 8 and rate == Fraction(30000, 1001) and kinds == ["video", "audio"]
    assert leftovers(tmp_path) == []


def test_the_rotation_and_time_base_are_kept(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "r.mp4", panned(scene(80, 40), 4, (48, 32)), rotation=90, audio=False)
    output = tmp_path / "out.mp4"
    _write(output, tmp_path, source, panned(scene(80, 40, seed=1), 4, (48, 32)))
    assert probe_video(str(output)).rotation == 90
    assert video_stats(output)[2] == video_stats(source)[2]


def test_a_frame_directory_gets_numbered_16_bit_pngs(tmp_path: Path, clip: Path) -> None:
    output = tmp_path / "frames"
    _write(output, tmp_path, clip, panned(scene(80, 40), 8, (48, 32)))
    assert sorted(p.name for p in output.iterdir()) == [frame_name(i) for i in range(8)]
    assert read_frame_png(output / frame_name(0)).shape == (32, 48, 3)


def test_a_failed_write_leaves_nothing(tmp_path: Path, clip: Path) -> None:
    info = probe_video(str(clip))
    with pytest.raises(RuntimeError), VideoOutput(str(tmp_path / "out.mp4"), info, Encoding((48, 32), 18, 0, None)):
        raise RuntimeError("stopped")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("notes.txt", "not a video file"),
        ("missing.mp4", "no such file"),
        (".", "is a directory"),
        ("photo.png", "a still image, not a video"),
        ("noise.mp4", "not a video file"),
    ],
)
def test_what_is_not_a_video_is_one_clear_error(tmp_path: Path, name: str, problem: str) -> None:
    (tmp_path / "notes.txt").write_text("hello\n" * 100)
    (tmp_path / "noise.mp4").write_bytes(bytes(range(256)) * 40)
    smooth_rgb(20, 20).save(tmp_path / "photo.png")
    path = tmp_path / name
    with pytest.raises(VideoReadError, match=f"cannot read video '{path}': {problem}"):
        probe_video(str(path))


def test_audio_only_and_empty_videos_are_refused(tmp_path: Path) -> None:
    sound = tmp_path / "sound.m4a"
    with av.open(str(sound), "w") as container:
        tone(container, container.add_stream("aac", rate=48000), seconds=0.2)
    with pytest.raises(VideoReadError, match="no video stream"):
        probe_video(str(sound))
    empty = tmp_path / "empty.mkv"
    with av.open(str(empty), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height = 16, 16
        container.start_encoding()  # the header, with no frames after it
    with pytest.raises(VideoReadError, match=r"(has no frames|ends before its first frame)"):
        probe_video(str(empty))


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_stream_broken_midway_is_refused_before_any_work(
    tmp_path: Path, style: Path, damage: str, capsys: CaptureFixture, fake_bundled: FakeBundled
) -> None:
    whole = make_clip(tmp_path / "whole.mkv", panned(scene(140, 40), 30, (48, 32)), audio=False).read_bytes()
    broken = bytearray(whole[: len(whole) // 2]) if damage == "truncated" else bytearray(whole)
    if damage == "garbage":
        broken[len(whole) // 3 : len(whole) // 3 + 2000] = bytes(range(250)) * 8
    path = tmp_path / "broken.mkv"
    path.write_bytes(bytes(broken))
    output = tmp_path / "out.mp4"
    assert main(["video", str(path), str(style), "-o", str(output), *video_options()]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot read video '{path}'" in err and "(truncated or corrupt)" in err
    assert not output.exists() and leftovers(tmp_path) == [] and fake_bundled.calls == 0


def test_huge_frames_are_refused_before_decoding(clip: Path) -> None:
    with pixel_limit(1000), pytest.raises(VideoReadError, match="image too large"):
        probe_video(str(clip))


@pytest.mark.parametrize(
    ("name", "problem"), [("out.avi", "unsupported extension '.avi'"), ("no/such/out.mp4", "does not exist")]
)
def test_bad_outputs_are_refused(tmp_path: Path, name: str, problem: str) -> None:
    with pytest.raises(VideoWriteError, match=problem):
        check_video_output(str(tmp_path / name))
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    with pytest.raises(VideoWriteError, match="not empty"):
        check_video_output(str(full))


# --------------------------------------------------------------------------- #
# The command
# --------------------------------------------------------------------------- #


@pytest.mark.usefixtures("fake_bundled")
def test_the_command_writes_the_video_with_its_sound(tmp_path: Path, clip: Path, style: Path) -> None:
    output = tmp_path / "out.mp4"
    assert main(["video", str(clip), str(style), "-o", str(output), *video_options()]) == 0
    count, rate, time_base, kinds = video_stats(output)
    assert (count, rate, kinds) == (8, Fraction(30000, 1001), ["video", "audio"])
    assert time_base == video_stats(clip)[2]
    assert leftovers(tmp_path) == []
    umask = os.umask(0o022)
    os.umask(umask)
    assert output.stat().st_mode & 0o777 == 0o666 & ~umask  # as any file written in place


@pytest.mark.usefixtures("fake_bundled")
def test_an_excerpt_into_a_frame_directory(tmp_path: Path, clip: Path, style: Path, capsys: CaptureFixture) -> None:
    output = tmp_path / "frames"
    excerpt = ["--start", f"{2 / 29.97:.4f}", "--duration", f"{3 / 29.97:.4f}"]
    assert main(["video", str(clip), str(style), "-o", str(output), *video_options(*excerpt)]) == 0
    assert sorted(p.name for p in output.iterdir()) == [frame_name(i) for i in range(3)]
    metadata = read_metadata(output / frame_name(1))
    assert metadata is not None and metadata["parameters"]["iterations"] == 2
    assert metadata["inputs"]["content"]["file"] == "clip.mp4#frame2"
    assert capsys.readouterr().err == ""


class Recorder(VideoReporter):
    """Remembers what a video job reports; stops the job (Ctrl-C) in frame ``stop_in``."""

    def __init__(self, stop_in: int | None = None) -> None:
        self.stop_in, self.fresh, self.cuts, self.terms = stop_in, {}, [], set()
        self.frame = -1

    def frame_started(self, index: int, fresh: str | None) -> None:
        self.frame = index
        self.fresh[index] = fresh

    def progress(self, progress: Progress) -> None:
        self.terms.update(progress.losses)
        if self.frame == self.stop_in:
            raise KeyboardInterrupt

    def scene_cut(self, index: int, reliable: float) -> None:
        self.cuts.append(index)


def job(clip: Path, style: Path, output: Path, **options: object) -> VideoJob:
    from artstyle.api import make_config

    config = make_config(size=48, iterations=2, coarse_iterations=1, seed=3, content_layers="relu2_2",
                         style_layers="relu1_1,relu2_1", device="cpu")  # fmt: skip
    return VideoJob(input=str(clip), styles=[str(style)], output=str(output), config=config, frame_iterations=2,
                    **options)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.usefixtures("fake_bundled")
def test_later_frames_carry_the_temporal_term_and_the_first_does_not(tmp_path: Path, clip: Path, style: Path) -> None:
    recorder = Recorder()
    outcome = run_video(job(clip, style, tmp_path / "out.mkv"), recorder)
    assert outcome.kind == WRITTEN and outcome.total == 8
    assert recorder.fresh == {0: "first", **dict.fromkeys(range(1, 8))}
    assert "temporal" in recorder.terms
    independent = Recorder()
    run_video(job(clip, style, tmp_path / "alone.mkv", temporal_weight=0.0), independent)
    assert set(independent.fresh.values()) == {"independent"} and "temporal" not in independent.terms


@pytest.mark.usefixtures("fake_bundled")
def test_only_the_first_frame_begins_with_the_adam_warm_up(
    tmp_path: Path, clip: Path, style: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tied frame starts from the previous one warped: L-BFGS from its first iteration."""
    from artstyle.engine import loop

    recorder, taken = Recorder(), []
    made = loop.make_optimizer

    def spy(name: str, *args: Any, **kwargs: Any) -> Any:
        taken.append((recorder.frame, name))
        return made(name, *args, **kwargs)

    monkeypatch.setattr(loop, "make_optimizer", spy)
    assert run_video(job(clip, style, tmp_path / "out.mkv"), recorder).kind == WRITTEN
    assert taken[0] == (0, "adam")
    assert {name for frame, name in taken if frame > 0} == {"lbfgs"}
    assert len({frame for frame, _ in taken}) == 8


@pytest.mark.usefixtures("fake_bundled")
def test_a_scene_cut_starts_afresh(tmp_path: Path, style: Path) -> None:
    frames = panned(scene(80, 40, seed=1), 4, (48, 32)) + panned(scene(80, 40, seed=8)[::-1], 4, (48, 32))
    cut = make_clip(tmp_path / "cut.mp4", frames, audio=False)
    recorder = Recorder()
    outcome = run_video(job(cut, style, tmp_path / "out.mp4"), recorder)
    assert outcome.ok and recorder.cuts == [4] and outcome.cuts == (4,) and recorder.fresh[4] == "scene cut"


@pytest.mark.usefixtures("fake_bundled")
def test_an_interrupted_job_keeps_its_frames_and_resume_finishes_it(
    tmp_path: Path, clip: Path, style: Path, fake_bundled: FakeBundled, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "out.mp4"
    stopped = run_video(job(clip, style, output), Recorder(stop_in=3))
    assert stopped.kind == "interrupted" and stopped.frames == 3 and not output.exists()
    work = work_path(str(output))
    assert sorted(p.name for p in work.glob("frame_*")) == [frame_name(i) for i in range(3)]
    kept = {name: (work / name).read_bytes() for name in (frame_name(0), frame_name(2))}
    recorder = Recorder()
    finished = run_video(job(clip, style, output, resume=True), recorder)
    assert finished.ok and sorted(recorder.fresh) == [3, 4, 5, 6, 7]  # frames 1-3 not redone
    assert video_stats(output)[0] == 8 and not work.exists()
    assert all(kept[name] for name in kept)


@pytest.mark.usefixtures("fake_bundled")
def test_with_strength_the_tied_frames_keep_the_weight_the_first_found_also_when_resumed(
    tmp_path: Path, clip: Path, style: Path
) -> None:
    """A weight found anew for every frame would flicker: the first frame finds it, the
    frames tied to it keep it, and a resumed job takes it from the first frame's file."""
    output = tmp_path / "out.mp4"
    plain = job(clip, style, output)
    strong = dataclasses.replace(plain, config=plain.config.replace(strength=0.8))
    assert run_video(strong, Recorder(stop_in=3)).kind == "interrupted"
    work = work_path(str(output))
    first = read_metadata(work / frame_name(0)) or {}
    found = first["found"]["style_weight"]
    assert first["parameters"]["strength"] == 0.8 and found != 2.0
    for index in (1, 2):
        parameters = (read_metadata(work / frame_name(index)) or {})["parameters"]
        assert parameters["strength"] is None and parameters["style_weight"] == found

    weights: list[float] = []
    real = FrameChain.stylize

    def stylize(chain: FrameChain, frame: object, path: Path) -> torch.Tensor:
        result = real(chain, frame, path)  # type: ignore[arg-type]
        weights.append((read_metadata(path) or {})["parameters"]["style_weight"])
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FrameChain, "stylize", stylize)
        resumed = dataclasses.replace(strong, resume=True)
        assert run_video(resumed, Recorder()).ok
    assert weights == [found] * 5  # frames 3-7


@pytest.mark.usefixtures("fake_bundled")
def test_resume_refuses_other_options_and_a_leftover_work_folder_is_not_overwritten(
    tmp_path: Path, clip: Path, style: Path, capsys: CaptureFixture
) -> None:
    output = tmp_path / "out.mp4"
    run_video(job(clip, style, output), Recorder(stop_in=2))
    argv = ["video", str(clip), str(style), "-o", str(output), *video_options()]
    assert main(argv) == 1
    assert "of an earlier run exists: --resume continues it" in capsys.readouterr().err
    assert main([*argv, "--resume", "--temporal-weight", "7"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other options: --temporal-weight 200.0 (now 7.0)" in err
    record = json.loads((work_path(str(output)) / "job.json").read_text())
    assert record["video"]["temporal_weight"] == 200.0


@pytest.mark.usefixtures("fake_bundled")
@pytest.mark.parametrize(
    ("extra", "code", "problem"),
    [
        (["--start", "60"], 2, "--start: 60 s is past the end of"),
        (["--temporal-weight", "-1"], 2, "--temporal-weight: expected at least 0"),
        (["--frame-iterations", "0"], 2, "--frame-iterations: expected a whole number of at least 1"),
        (["--crf", "99"], 2, "--crf: expected a whole number from 0 to 51"),
        (["--max-pixels", "100"], 1, "image too large"),
    ],
)
def test_bad_options_are_one_line_before_any_work(
    tmp_path: Path, clip: Path, style: Path, capsys: CaptureFixture, extra: list[str], code: int, problem: str
) -> None:
    output = tmp_path / "out.mp4"
    assert main(["video", str(clip), str(style), "-o", str(output), *video_options(*extra)]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and problem in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "style.png"]


@pytest.mark.usefixtures("fake_bundled")
def test_an_unwritable_output_and_no_clobber(tmp_path: Path, clip: Path, style: Path, capsys: CaptureFixture) -> None:
    assert main(["video", str(clip), str(style), "-o", str(tmp_path / "out.gif"), *video_options()]) == 1
    assert "unsupported extension '.gif'" in capsys.readouterr().err
    existing = tmp_path / "old.mp4"
    existing.write_bytes(b"old")
    assert main(["video", str(clip), str(style), "-o", str(existing), "--no-clobber", *video_options()]) == 1
    assert "already exists" in capsys.readouterr().err and existing.read_bytes() == b"old"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_keeps_the_finished_frames(tmp_path: Path, clip: Path, style: Path, signum: int, code: int) -> None:
    output = tmp_path / "out.mp4"
    argv = ["video", clip, style, "-o", output, *video_options()]
    argv[argv.index("--frame-iterations") + 1] = "100000"
    returncode, _, err = signal_child(argv, tmp_path, work_path(str(output)) / frame_name(0), signum)
    assert returncode == code, err
    (line,) = err.splitlines()
    assert line.endswith(f"at frame 2; 1 finished frames kept in {work_path(str(output))}, --resume continues"), line
    assert not output.exists() and sorted(os.listdir(work_path(str(output)))) == [frame_name(0), "job.json"]
