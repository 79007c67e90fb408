"""Fast tests of the web page's server side (artstyle.web), without a browser.

The job functions are driven directly with random weights (``fake_bundled``) on 32-48 px
images: submitting checks uploads and options, running yields previews and a final PNG
with its parameters, Stop keeps the current image, closing the run (a closed browser
tab) stops the job, and jobs take the device one at a time. ``artstyle serve`` is run
up to the point where it would start listening.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _support import FakeBundled, random_rgb, smooth_rgb
from PIL import Image

from artstyle import cli, web
from artstyle.api import Stylizer, stylize
from artstyle.config import Config
from artstyle.errors import ConfigError, ImageReadError
from artstyle.imageio import read_metadata
from artstyle.web import CONTROLS, DONE, FAILED, RUNNING, STOPPED, Limits, Studio, Update

FAST = {"content_layers": "relu2_2", "style_layers": "relu1_1,relu2_1"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    """The server's upload directory with a 48 x 40 photo and two small paintings in it."""
    root = tmp_path / "uploads"
    root.mkdir()
    smooth_rgb(48, 40, seed=1).save(root / "photo.png")
    random_rgb(40, 40, seed=2).save(root / "painting.png")
    random_rgb(36, 44, seed=3).save(root / "other.jpg", quality=90)
    return root


def make_studio(uploads: Path, limits: Limits | None = None, log: list[str] | None = None) -> Studio:
    messages = log if log is not None else []
    return Studio(Stylizer(device="cpu"), limits, upload_root=uploads, preview_interval=0.01, log=messages.append)


def options(**changes: Any) -> dict[str, Any]:
    return {"size": 32, "iterations": 4, "seed": 3, **FAST, **changes}


def submit(studio: Studio, uploads: Path, session: str = "tab", **changes: Any) -> web.Job:
    return studio.submit(session, str(uploads / "photo.png"), [str(uploads / "painting.png")], options(**changes))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def finished(job: web.Job, timeout: float = 60.0) -> bool:
    with job.condition:
        return job.condition.wait_for(lambda: job.finished, timeout=timeout)


# --------------------------------------------------------------------------- #
# Running a job
# --------------------------------------------------------------------------- #


def test_a_job_yields_previews_then_the_final_png_with_its_parameters(fake_bundled: FakeBundled, uploads: Path) -> None:
    studio = make_studio(uploads)
    job = submit(studio, uploads)
    previews: list[Update] = []
    final: Update | None = None
    for update in studio.run(job):
        if update.final:
            final = update
            assert update.result is not None and update.result.read_bytes()[:8] == PNG_SIGNATURE
            metadata: Any = read_metadata(update.result)
            result_dir = update.result.parent
        else:
            previews.append(update)
    assert final is not None and final.state == DONE
    assert final.message.startswith("Done: 4 iterations") and "seed 3" in final.message
    running = [u for u in previews if u.state == RUNNING]
    assert running and all(u.image is not None and u.image.size == (32, 27) for u in running)
    assert [u.step for u in running] == sorted({u.step for u in running})  # each step shown once, in order
    assert set(final.losses) >= {"content", "style", "tv", "total"}
    assert metadata["parameters"]["seed"] == 3 and metadata["parameters"]["iterations"] == 4
    assert metadata["inputs"] == {
        "content": {"file": "photo.png", "sha256": sha256(uploads / "photo.png")},
        "styles": [{"file": "painting.png", "sha256": sha256(uploads / "painting.png")}],
    }
    assert not result_dir.exists()  # the job's private directory went with the job
    assert studio.job(job.id) is None
    # The same picture as the API makes with the same inputs and seed.
    expected = stylize(uploads / "photo.png", uploads / "painting.png", device="cpu", **options())
    assert final.image is not None
    np.testing.assert_array_equal(np.asarray(final.image), np.asarray(expected))


def test_the_draft_preset_runs_below_its_coarsest_size(fake_bundled: FakeBundled, uploads: Path) -> None:
    # 32 px is under twice the draft's 128 px: one scale, which gets its 30 coarse iterations.
    studio = make_studio(uploads)
    job = submit(studio, uploads, preset="draft", iterations=None)
    final = [update for update in studio.run(job) if update.final]
    assert final[0].state == DONE and final[0].message.startswith("Done: 30 iterations")


def test_stop_ends_the_job_and_keeps_the_current_image(fake_bundled: FakeBundled, uploads: Path) -> None:
    studio = make_studio(uploads)
    job = submit(studio, uploads, iterations=500)
    updates = studio.run(job)
    for update in updates:
        if update.state == RUNNING:
            assert studio.stop(job.id)
            break
    final = [update for update in updates if update.final]
    assert len(final) == 1 and final[0].state == STOPPED
    assert final[0].result is not None and not final[0].result.exists()  # removed once the generator moved on
    assert job.latest is not None and 1 <= job.latest.step < 500
    assert final[0].message.startswith(f"Stopped at iteration {job.latest.step} of 500")
    assert final[0].image is not None and final[0].image.size == (32, 27)


def test_a_stopped_job_offers_its_picture_with_the_step_it_stopped_at(
    fake_bundled: FakeBundled, uploads: Path, tmp_path: Path
) -> None:
    studio = make_studio(uploads)
    job = submit(studio, uploads, iterations=500)
    for update in studio.run(job):
        if update.state == RUNNING:
            studio.stop(job.id)
        if update.final:
            assert update.result is not None
            metadata: Any = read_metadata(update.result)
            with Image.open(update.result) as saved:
                assert update.image is not None
                np.testing.assert_array_equal(np.asarray(saved.convert("RGB")), np.asarray(update.image))
    assert job.latest is not None
    assert metadata["stopped_at"] == job.latest.step
    assert metadata["parameters"]["iterations"] == 500 and metadata["parameters"]["seed"] == 3


def test_closing_the_run_like_a_closed_tab_stops_the_job(fake_bundled: FakeBundled, uploads: Path) -> None:
    log: list[str] = []
    studio = make_studio(uploads, log=log)
    job = submit(studio, uploads, iterations=1000)
    updates = studio.run(job)
    assert next(u for u in updates if u.state == RUNNING)
    updates.close()  # what Gradio does when the browser goes away
    assert finished(job)
    assert job.stop_reason == "browser closed" and job.result is None
    assert job.latest is not None and job.latest.step < 1000
    assert studio.job(job.id) is None
    assert log[-1].startswith(f"job {job.id}: stopped (browser closed) at iteration")


def test_closing_a_session_stops_its_jobs_only(fake_bundled: FakeBundled, uploads: Path) -> None:
    studio = make_studio(uploads)
    mine, queued, other = (submit(studio, uploads, s, iterations=1000) for s in ("tab", "tab", "other tab"))
    updates = studio.run(mine)
    next(u for u in updates if u.state == RUNNING)
    assert studio.close_session("tab") == 2
    final = [u for u in updates if u.final]
    assert final[0].state == STOPPED and mine.stop_reason == "browser closed"
    assert studio.job(queued.id) is None  # never started: forgotten at once
    assert studio.job(other.id) is other and other.stop_reason is None


def test_a_job_stopped_before_it_starts_ends_without_a_picture(fake_bundled: FakeBundled, uploads: Path) -> None:
    studio = make_studio(uploads)
    job = submit(studio, uploads)
    assert studio.stop(job.id)
    updates = list(studio.run(job))
    assert [u.state for u in updates] == [STOPPED]
    assert updates[0].result is None and "before the first iteration" in updates[0].message
    assert not studio.stop(job.id)  # nothing left to stop
    assert fake_bundled.calls == 0  # no work was done


def test_jobs_take_the_device_one_at_a_time(fake_bundled: FakeBundled, uploads: Path) -> None:
    log: list[str] = []
    studio = make_studio(uploads, log=log)
    jobs = [submit(studio, uploads, f"tab {i}", iterations=3) for i in range(3)]
    states: dict[str, list[str]] = {}

    def consume(job: web.Job) -> None:
        states[job.id] = [update.state for update in studio.run(job)]

    threads = [threading.Thread(target=consume, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(states[job.id][-1] == DONE for job in jobs)
    events = [line.split(": ", 1)[1].split(" ")[0] for line in log]
    assert events == ["started", "done"] * 3  # never two jobs on the device at once


def test_a_run_that_fails_reports_why(fake_bundled: FakeBundled, uploads: Path) -> None:
    studio = make_studio(uploads)
    job = submit(studio, uploads, size=8, style_layers="relu5_1")  # too small for relu5_1's four poolings
    updates = list(studio.run(job))
    assert updates[-1].state == FAILED
    assert "is 8x7 px; layer relu5_1 needs at least 16 px" in updates[-1].message
    assert updates[-1].result is None


# --------------------------------------------------------------------------- #
# Checking requests and uploads
# --------------------------------------------------------------------------- #


def test_blank_options_take_the_defaults_and_a_fresh_seed_is_fixed(uploads: Path) -> None:
    studio = make_studio(uploads)
    config = studio.config({"size": 64, "style_weight": None, "style_weights": "", "seed": ""}, styles=1)
    assert config.style_weight == Config().style_weight and config.style_weights is None
    assert config.seed is not None and config.weights == "bundled" and config.device == "cpu"


def test_the_perceptual_controls_pass_through(uploads: Path) -> None:
    values = {"preserve_color": "luminance", "style_loss": "meancov", "pyramid": "off"}
    config = make_studio(uploads).config(values, styles=1)
    assert (config.preserve_color, config.style_loss, config.pyramid) == ("luminance", "meancov", False)
    assert make_studio(uploads).config({"pyramid": "on"}, styles=1).pyramid is True


def test_the_strength_slider_passes_through_and_is_off_until_switched_on(uploads: Path) -> None:
    studio = make_studio(uploads)
    assert studio.config({"strength": 0.75}, styles=1).strength == 0.75
    assert studio.config({"strength": "off"}, styles=1).strength is None
    control = next(control for control in CONTROLS if control.name == "strength")
    assert control.widget == "slider" and control.switch and web.control_default(control, Limits()) is None
    assert (control.minimum, control.maximum) == (0.0, 1.0) and 0 < control.resting < 1


def test_an_option_whose_switch_is_off_is_sent_as_off(uploads: Path) -> None:
    values = {"strength": 0.35, "size": 64}
    assert web.switched_options(values, {"strength": False}) == {"strength": "off", "size": 64}
    assert web.switched_options(values, {"strength": True}) == values
    studio = make_studio(uploads)
    assert studio.config(web.switched_options(values, {"strength": False}), styles=1).strength is None
    assert studio.config(web.switched_options(values, {"strength": True}), styles=1).strength == 0.35


@pytest.mark.parametrize(
    ("values", "styles", "message"),
    [
        ({"size": 2048}, 1, "Size (px): this server makes pictures of at most 1024 px"),
        ({"iterations": 5000}, 1, "Iterations: this server runs at most 1000 iterations"),
        ({"style_weights": "3 1"}, 1, "Style blend: 2 weights for 1 style image"),
        ({"seed": "seven"}, 1, "Seed: expected a whole number, got 'seven'"),
        ({"style_weight": -1}, 1, "Style weight: expected a finite number at least 0"),
        ({"strength": 1.5}, 1, "Strength: expected a number from 0 to 1, got 1.5"),
    ],
)
def test_bad_options_are_refused_with_the_pages_labels(
    uploads: Path, values: dict[str, Any], styles: int, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_studio(uploads).config(values, styles)
    assert web.for_page(str(caught.value)).startswith(message)


def test_submit_needs_a_photo_and_at_most_the_allowed_number_of_paintings(uploads: Path) -> None:
    studio = make_studio(uploads, Limits(max_styles=2))
    photo, painting = str(uploads / "photo.png"), str(uploads / "painting.png")
    with pytest.raises(ConfigError, match="Choose a content image"):
        studio.submit("tab", None, [painting], options())
    with pytest.raises(ConfigError, match="Add at least one style image"):
        studio.submit("tab", photo, [], options())
    with pytest.raises(ConfigError, match="at most 2 style images"):
        studio.submit("tab", photo, [painting] * 3, options())


def test_submit_keeps_only_pictures_resized_for_the_job(uploads: Path) -> None:
    studio = make_studio(uploads)
    job = studio.submit(
        "tab", str(uploads / "photo.png"), [str(uploads / "painting.png")], options(size=24, style_scale=0.5)
    )
    assert job.content.image.size == (24, 20)
    assert job.styles[0].image.size == (12, 12)


def test_an_upload_over_the_byte_cap_is_refused(uploads: Path) -> None:
    path = uploads / "photo.png"
    cap = path.stat().st_size - 1
    with pytest.raises(ImageReadError, match=r"^The content image is larger than .* MB, the most this server"):
        web.load_upload(str(path), "content image", Limits(max_upload_bytes=cap), uploads)
    assert web.load_upload(str(path), "content image", Limits(max_upload_bytes=cap + 1), uploads).image.size == (
        48,
        40,
    )


def test_the_pixel_cap_is_checked_from_the_header_before_decoding(uploads: Path) -> None:
    # A 200 x 200 PNG cut off after its header: decoding it would fail as "truncated".
    whole = uploads / "whole.png"
    random_rgb(200, 200).save(whole)
    cut = uploads / "cut.png"
    cut.write_bytes(whole.read_bytes()[:100])
    with pytest.raises(ImageReadError, match=r"has 200x200 pixels; this server accepts at most 0\.01 MP"):
        web.load_upload(str(cut), "style image 2", Limits(max_pixels=10_000), uploads)
    with pytest.raises(ImageReadError, match="truncated or corrupt"):
        web.load_upload(str(cut), "style image 2", Limits(), uploads)


def test_a_decompression_bomb_is_refused_by_the_pixel_cap(uploads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses 2 x this outright
    path = uploads / "bomb.png"
    random_rgb(60, 60).save(path)
    with pytest.raises(ImageReadError, match="has too many pixels"):
        web.load_upload(str(path), "content image", Limits(max_pixels=2000), uploads)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is an empty file"), (b"not an image at all", "is not an image file Pillow can read")],
)
def test_files_that_are_not_images_are_refused(uploads: Path, content: bytes, message: str) -> None:
    path = uploads / "upload.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=message):
        web.load_upload(str(path), "content image", Limits(), uploads)


def test_only_files_in_the_upload_directory_are_read(uploads: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.png"
    random_rgb(8, 8).save(outside)
    link = uploads / "link.png"
    link.symlink_to(outside)
    for path in (outside, link, uploads / ".." / "secret.png"):
        with pytest.raises(ImageReadError, match="not an uploaded file"):
            web.load_upload(str(path), "content image", Limits(), uploads)
    with pytest.raises(ImageReadError, match="no longer on the server"):
        web.load_upload(str(uploads / "gone.png"), "content image", Limits(), uploads)


def test_status_panel_escapes_messages_and_shows_progress() -> None:
    text = web.status_html(Update(FAILED, "<script>alert(1)</script>", 3, 10, {"content": 1.5, "total": 2.0}))
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert '<progress max="10" value="3">' in text and 'data-state="failed"' in text
    assert "content 1.5 · total 2" in text
    assert "data-state" not in web.status_html(None)


# --------------------------------------------------------------------------- #
# The page's options
# --------------------------------------------------------------------------- #


def test_every_control_is_a_config_option_with_its_default() -> None:
    names = {f.name for f in fields(Config)}
    assert {control.name for control in CONTROLS} <= names
    assert len({control.name for control in CONTROLS}) == len(CONTROLS)
    small = Limits(max_size=256, max_iterations=20)
    defaults = {control.name: web.control_default(control, small) for control in CONTROLS}
    assert defaults["size"] == 256 and defaults["iterations"] == defaults["coarse_iterations"] == 20  # capped
    assert defaults["style_weight"] == Config().style_weight and defaults["seed"] is None


def test_limits_must_be_positive_whole_numbers() -> None:
    with pytest.raises(ConfigError, match="max_size"):
        Limits(max_size=0)
    assert "images up to 25 MB and 50 MP, at most 4 paintings" in web.limits_text(Limits())


# --------------------------------------------------------------------------- #
# artstyle serve, up to the point where it would listen
# --------------------------------------------------------------------------- #


def test_serve_without_gradio_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` fail
    assert cli.main(["serve"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "needs Gradio" in err and "pip install -e '.[web]'" in err


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--port", "0"], 2, "--port: expected 1 to 65535"),
        (["--max-size", "-5"], 2, "expected a positive number"),
        (["--colour"], 2, "unrecognized arguments"),
        (["--device", "tpu"], 2, "--device: expected one of"),
        (["--weights", "no-such-file.pth"], 1, "no-such-file.pth"),
    ],
)
def test_serve_refuses_bad_options_in_one_line(
    fake_bundled: FakeBundled, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    assert cli.main(["serve", *argv]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_serve_help_names_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--max-upload-mb", "--max-megapixels", "--max-size", "--max-iterations"):
        assert option in out


def test_the_example_images_are_found() -> None:
    content, styles = web.example_images()
    assert any(path.endswith("chelsea.png") for path in content)
    assert len(styles) >= 2
    assert web.example_images(Path("/nonexistent")) == ([], [])


# --------------------------------------------------------------------------- #
# Style masks, presets and the page's labels
# --------------------------------------------------------------------------- #


def test_style_masks_go_with_their_paintings_into_the_run(fake_bundled: FakeBundled, uploads: Path) -> None:
    Image.new("L", (48, 40), 255).save(uploads / "left.png")
    Image.new("L", (48, 40), 0).save(uploads / "right.png")
    studio = make_studio(uploads)
    paintings = [str(uploads / "painting.png"), str(uploads / "other.jpg")]
    masks = [str(uploads / "left.png"), str(uploads / "right.png")]
    job = studio.submit("tab", str(uploads / "photo.png"), paintings, options(), masks)
    assert job.style_masks is not None and [m.name for m in job.style_masks] == ["left.png", "right.png"]
    final = list(studio.run(job))[-1]
    assert final.state == DONE and final.result is not None
    assert not final.result.exists()  # the download went with the finished generator
    with pytest.raises(ConfigError) as caught:
        studio.submit("tab", str(uploads / "photo.png"), paintings, options(), masks[:1])
    assert web.page_message(caught.value) == "Style masks: 1 masks for 2 style images"


def test_a_masked_job_records_its_masks(fake_bundled: FakeBundled, uploads: Path) -> None:
    Image.new("L", (48, 40), 255).save(uploads / "mask.png")
    studio = make_studio(uploads)
    job = studio.submit(
        "tab", str(uploads / "photo.png"), [str(uploads / "painting.png")], options(), [str(uploads / "mask.png")]
    )
    for update in studio.run(job):
        if update.final:
            assert update.state == DONE and update.result is not None
            metadata: Any = read_metadata(update.result)
    assert metadata["inputs"]["style_masks"] == [{"file": "mask.png", "sha256": sha256(uploads / "mask.png")}]


def test_a_preset_sets_the_options_it_names_and_the_server_caps_them(uploads: Path) -> None:
    studio = make_studio(uploads)
    draft = studio.config({"preset": "draft"}, styles=1)
    assert (draft.min_size, draft.coarse_iterations, draft.iterations) == (128, 30, 0)
    assert studio.config({"preset": "fine", "iterations": 7}, styles=1).iterations == 7  # a given value wins
    assert web.preset_values("draft", Limits()) == {"iterations": 0, "coarse_iterations": 30}
    assert web.preset_values("default", Limits()) == {"iterations": 30, "coarse_iterations": 50}
    assert web.preset_values("fine", Limits(max_iterations=120)) == {"iterations": 100, "coarse_iterations": 120}
    with pytest.raises(ConfigError) as caught:
        studio.config({"preset": "sketchy"}, styles=1)
    assert web.page_message(caught.value) == "Preset: expected one of draft, default, fine, got 'sketchy'"


def test_the_page_names_options_by_its_labels_without_reading_messages(uploads: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_studio(uploads).config({"style_layers": "relu1_1:-2"}, styles=1)
    assert caught.value.option == "style_layers" and caught.value.part == "relu1_1"
    # Not an option of the page: named by its keyword.
    assert web.page_message(caught.value) == "style_layers relu1_1: expected a finite number at least 0, got '-2'"
    with pytest.raises(ConfigError) as caught:
        make_studio(uploads).config({"tv_weight": "smooth"}, styles=1)
    assert web.page_message(caught.value) == "Smoothness weight: expected a number, got 'smooth'"
