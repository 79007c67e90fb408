"""The run frame: a job in, an outcome out, nothing printed; the same layer under every front end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _support import FakeBundled, random_rgb, smooth_rgb
from PIL import Image

from artstyle import cli
from artstyle.api import make_config
from artstyle.engine import Progress
from artstyle.errors import ImageReadError
from artstyle.imageio import read_image, read_metadata, save_image
from artstyle.runs import FAILED, STOPPED, WRITTEN, InputImage, Job, Reporter, execute

FAST = {"content_layers": "relu2_2", "style_layers": "relu1_1,relu2_1", "device": "cpu"}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"content": tmp_path / "content.png", "style": tmp_path / "style.png"}
    smooth_rgb(40, 32, seed=1).save(paths["content"])
    random_rgb(32, 32, seed=2).save(paths["style"])
    return paths


def job(files: dict[str, Path], output: Path, **changes: Any) -> Job:
    config = make_config(size=40, iterations=4, coarse_iterations=4, pyramid=False, seed=3, **FAST)
    return Job(str(files["content"]), [str(files["style"])], str(output), config, **changes)


class Recorder(Reporter):
    def __init__(self, stop_after: int | None = None) -> None:
        self.events: list[Any] = []
        self.stop_after = stop_after

    def started(self, iterations: int, initial: int) -> None:
        self.events.append(("started", iterations, initial))

    def progress(self, progress: Progress) -> None:
        self.events.append(progress.step)

    def warning(self, message: str) -> None:
        self.events.append(("warning", message))

    def stop_requested(self) -> bool:
        return self.stop_after is not None and self.events[-1] == self.stop_after

    def ended(self) -> None:
        self.events.append("ended")


def test_a_job_is_written_and_reported_without_a_line_printed(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reporter = Recorder()
    outcome = execute(job(files, tmp_path / "out.png"), reporter)
    assert outcome.kind == WRITTEN and outcome.ok and outcome.written == str(tmp_path / "out.png")
    assert (outcome.step, outcome.iterations, outcome.began) == (4, 4, True)
    assert reporter.events == [("started", 4, 0), 1, 2, 3, 4, "ended"]
    assert outcome.result is not None and read_image(tmp_path / "out.png").size == (40, 32)
    assert capsys.readouterr() == ("", "")


def test_a_front_end_stops_a_job_and_gets_the_current_picture(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path
) -> None:
    outcome = execute(job(files, tmp_path / "out.png"), Recorder(stop_after=2))
    assert outcome.kind == STOPPED and outcome.ok and outcome.step == 2
    metadata = read_metadata(tmp_path / "out.png")
    assert metadata is not None and metadata["stopped_at"] == 2 and metadata["interrupted_at"] == 2


def test_bad_input_is_an_outcome_with_its_typed_error_and_nothing_written(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    outcome = execute(job({**files, "content": broken}, tmp_path / "out.png"))
    assert outcome.kind == FAILED and not outcome.ok and not outcome.began
    assert isinstance(outcome.error, ImageReadError) and str(broken) in str(outcome.error)
    assert not (tmp_path / "out.png").exists()


def test_images_in_memory_are_inputs_with_their_recorded_names(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path
) -> None:
    content = InputImage(Image.open(files["content"]).convert("RGB"), "photo.png", "a" * 64)
    style = InputImage(Image.open(files["style"]).convert("RGB"), "painting.png", "b" * 64)
    outcome = execute(Job(content, [style], str(tmp_path / "out.png"), job(files, tmp_path).config))
    assert outcome.kind == WRITTEN
    metadata = read_metadata(tmp_path / "out.png")
    assert metadata is not None
    assert metadata["inputs"] == {
        "content": {"file": "photo.png", "sha256": "a" * 64},
        "styles": [{"file": "painting.png", "sha256": "b" * 64}],
    }


def test_warnings_of_a_job_go_to_its_reporter(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path
) -> None:
    tiny = tmp_path / "tiny.png"
    random_rgb(1, 1).save(tiny)
    reporter = Recorder()
    assert execute(job({**files, "style": tiny}, tmp_path / "out.png"), reporter).kind == WRITTEN
    warnings = [event[1] for event in reporter.events if isinstance(event, tuple) and event[0] == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith("style image is only 1x1 px")


def test_reproduce_stops_where_a_picture_stopped_at(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A picture stopped on the web page records only ``stopped_at``: reproduce stops there too."""
    original = tmp_path / "stopped.png"
    assert execute(job(files, original), Recorder(stop_after=3)).kind == STOPPED
    metadata = read_metadata(original)
    assert metadata is not None
    del metadata["interrupted_at"]
    save_image(read_image(original), original, metadata)
    assert cli.main(["reproduce", str(original), "-o", str(tmp_path / "again.png")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[-2] == f"artstyle: wrote {tmp_path / 'again.png'} (stopped at iteration 3, as the original)"
    assert err[-1].endswith("is identical to the original, byte for byte")
