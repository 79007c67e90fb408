"""Browser tier: ``artstyle serve`` driven in headless Chromium, as a user would use it.

The server (see conftest.py) runs the real bundled weights; every job is 64 px and a
handful of iterations, or is stopped early, so each test takes seconds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _browser import EXAMPLES, Server, download, open_page, set_option, status, upload, wait_for_state
from PIL import Image

from artstyle.imageio import read_metadata

pytestmark = [pytest.mark.real, pytest.mark.browser]

CONTENT = EXAMPLES / "content" / "chelsea.png"
STYLE = EXAMPLES / "styles" / "starry_night.jpg"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def small_job(page: Any, iterations: int, seed: int | None = None) -> None:
    set_option(page, "size", 64)
    set_option(page, "iterations", iterations)
    if seed is not None:
        set_option(page, "seed", seed)


def test_a_job_runs_from_upload_to_download(server: Server, browser: Any, tmp_path: Path) -> None:
    page = open_page(browser, server.url)
    assert status(page) == ""
    upload(page, CONTENT, [STYLE])
    small_job(page, iterations=60, seed=7)  # long enough that the page shows it running (bf16 is quick)
    page.click("#start")
    wait_for_state(page, "running", timeout=60)
    assert page.locator("#preview img").first.get_attribute("src")
    assert "Losses: content" in page.inner_text("#status")
    wait_for_state(page, "done", timeout=120)
    assert "Done: 60 iterations" in page.inner_text("#status")
    assert page.locator("#start").is_enabled() and not page.locator("#stop").is_enabled()

    saved = download(page, tmp_path)
    assert saved.name == "artstyle-7.png"
    assert saved.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(saved) as picture:
        assert max(picture.size) == 64
    metadata: Any = read_metadata(saved)
    assert metadata["parameters"]["size"] == 64
    assert metadata["parameters"]["iterations"] == 60
    assert metadata["parameters"]["seed"] == 7
    assert metadata["inputs"]["content"] == {"file": CONTENT.name, "sha256": sha256(CONTENT)}
    assert metadata["inputs"]["styles"] == [{"file": STYLE.name, "sha256": sha256(STYLE)}]
    assert "stopped_at" not in metadata
    assert page.outside_requests == []  # the page loads nothing from the internet
    page.context.close()


def test_the_examples_fill_the_inputs_and_stop_keeps_the_current_image(
    server: Server, browser: Any, tmp_path: Path
) -> None:
    page = open_page(browser, server.url)
    page.locator("#example-photos button").nth(1).click()  # chelsea.png (sorted by name)
    page.locator("#example-paintings button").nth(3).click()  # the_scream.jpg
    page.locator("#content img").first.wait_for()
    page.locator("#styles img").first.wait_for()
    small_job(page, iterations=1000)
    page.click("#start")
    wait_for_state(page, "running", timeout=60)
    page.click("#stop")
    wait_for_state(page, "stopped", timeout=60)
    assert "kept that picture" in page.inner_text("#status")

    metadata: Any = read_metadata(download(page, tmp_path))
    assert 1 <= metadata["stopped_at"] < 1000
    assert metadata["parameters"]["iterations"] == 1000
    assert metadata["inputs"]["content"]["sha256"] == sha256(CONTENT)
    assert metadata["inputs"]["styles"][0]["sha256"] == sha256(EXAMPLES / "styles" / "the_scream.jpg")
    page.context.close()


def test_jobs_queue_one_at_a_time_and_a_closed_tab_cancels_its_job(server: Server, browser: Any) -> None:
    first, second = open_page(browser, server.url), open_page(browser, server.url)
    for page, iterations in ((first, 1000), (second, 3)):
        upload(page, CONTENT, [STYLE])
        small_job(page, iterations)
    mark = server.mark()
    first.click("#start")
    wait_for_state(first, "running", timeout=60)
    started = server.wait_for_log(r"job \w+: started \(64 px, 1000 iterations", timeout=10, after=mark)
    job = started.split("job ", 1)[1].split(":", 1)[0]

    second.click("#start")
    second.get_by_text("queue: 1/1").wait_for(timeout=30_000)  # its place in the queue is shown
    wait_for_state(second, "waiting", timeout=10)

    first.context.close()  # the user closes the tab mid-job
    server.wait_for_log(rf"job {job}: stopped \(browser closed\) at iteration \d+/1000", timeout=60, after=mark)
    wait_for_state(second, "done", timeout=120)
    second.context.close()


def test_uploads_over_the_caps_are_refused_with_a_clear_message(server: Server, browser: Any, tmp_path: Path) -> None:
    too_heavy, too_big = tmp_path / "heavy.png", tmp_path / "big.png"
    noise = np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    Image.fromarray(noise).save(too_heavy)  # about 3 MB, over the 2 MB cap
    y, x = np.mgrid[0:1500, 0:1500]
    Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)).save(too_big)  # 2.25 MP
    page = open_page(browser, server.url)

    page.locator("#content input[type=file]").set_input_files(str(too_heavy))
    page.get_by_text("exceed the maximum allowed size").wait_for(timeout=30_000)

    upload(page, too_big, [STYLE])
    page.click("#start")
    page.get_by_text("The content image has 1500x1500 pixels; this server accepts at most 2 MP.").wait_for(
        timeout=30_000
    )
    assert status(page) == ""  # no job was started
    page.context.close()


def option_value(page: Any, name: str) -> str:
    return str(page.locator(f"#option-{name} input:not([type=range])").first.input_value())


def test_a_preset_sets_the_iterations_and_a_mask_goes_with_its_painting(
    server: Server, browser: Any, tmp_path: Path
) -> None:
    page = open_page(browser, server.url)
    page.locator("#option-preset label", has_text="draft").click()
    page.wait_for_function("document.querySelector('#option-coarse_iterations input').value === '30'")
    assert (option_value(page, "iterations"), option_value(page, "coarse_iterations")) == ("0", "30")
    page.locator("#option-preset label", has_text="default").click()
    page.wait_for_function("document.querySelector('#option-coarse_iterations input').value === '50'")

    mask = tmp_path / "left-half.png"
    Image.fromarray(np.tile((np.arange(64) < 32).astype(np.uint8) * 255, (48, 1))).save(mask)
    upload(page, CONTENT, [STYLE])
    page.get_by_text("Style masks (optional)").click()
    page.locator("#style-masks input[type=file]").set_input_files(str(mask))
    page.locator("#style-masks img").first.wait_for()
    small_job(page, iterations=3, seed=2)
    set_option(page, "coarse_iterations", 3)
    page.click("#start")
    wait_for_state(page, "done", timeout=120)
    metadata: Any = read_metadata(download(page, tmp_path))
    assert metadata["inputs"]["style_masks"] == [{"file": mask.name, "sha256": sha256(mask)}]
    page.context.close()


def test_strength_is_a_slider_that_counts_once_its_box_is_ticked(server: Server, browser: Any, tmp_path: Path) -> None:
    page = open_page(browser, server.url)
    slider = page.locator("#option-strength input[type=range]").first
    assert slider.is_disabled()  # off: the style weight sets the degree
    page.locator("#option-strength-on input[type=checkbox]").check()
    page.wait_for_function("!document.querySelector('#option-strength input[type=range]').disabled")
    upload(page, CONTENT, [STYLE])
    small_job(page, iterations=4, seed=3)
    set_option(page, "strength", 0.4)
    page.click("#start")
    wait_for_state(page, "done", timeout=120)
    metadata: Any = read_metadata(download(page, tmp_path))
    assert metadata["parameters"]["strength"] == 0.4
    assert metadata["found"]["style_weight"] > 0  # the weight the strength asked for
    page.context.close()
