"""Fixtures of the web tier: one ``artstyle serve`` and one headless Chromium per module.

The server runs the real bundled weights (as a user gets them) with a private decode
cache shared with the real tier, so the weights are decoded at most once per session.
Uploads are capped low (2 MB, 2 MP) so that the caps can be tested with small files.
Without Debian's chromium the tests skip, except under CI (``ARTSTYLE_REQUIRE_BROWSER=1``),
where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from _browser import REQUIRE_VARIABLE, Server, launch_chromium, missing_browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = missing_browser()
    if reason is not None:
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            pytest.fail(f"{REQUIRE_VARIABLE}=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    cache = tmp_path_factory.getbasetemp() / "cache"
    running = Server("--max-upload-mb", "2", "--max-megapixels", "2", env={"ARTSTYLE_CACHE_DIR": str(cache)})
    yield running
    code = running.stop()
    assert code == 130, "\n".join(running.log[-60:])  # Ctrl-C, as a user stops it
