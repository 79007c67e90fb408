"""Regenerate docs/web.jpg, the screenshot of the web page in the README and the documentation.

    python docs/make_screenshot.py

Starts ``artstyle serve`` (real bundled weights) on a free localhost port, opens it in
Debian's headless Chromium (``apt-get install chromium``), picks the example cat and The
Starry Night, runs a short job, and saves the finished page as a small JPEG. Uses the
browser tests' helpers (tests/web/_browser.py).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "web"))

from _browser import Server, launch_chromium, missing_browser, open_page, set_option, wait_for_state  # noqa: E402

OUTPUT = ROOT / "docs" / "web.jpg"
OPTIONS = {"size": 200, "iterations": 30, "seed": 1}
WIDTH = 1000  # of the JPEG, in pixels


def main() -> int:
    reason = missing_browser()
    if reason is not None:
        print(f"make_screenshot: {reason}", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    server = Server()
    try:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = open_page(browser, server.url, width=1280, height=900)
            page.locator("#example-photos button").nth(1).click()  # chelsea.png
            page.locator("#example-paintings button").nth(2).click()  # starry_night.jpg
            page.locator("#content img").first.wait_for()
            page.locator("#styles img").first.wait_for()
            for name, value in OPTIONS.items():
                set_option(page, name, value)
            page.click("#start")
            wait_for_state(page, "done", timeout=600)
            page.mouse.move(0, 0)  # no hover effects in the picture
            shot = page.screenshot(full_page=True)
            browser.close()
    finally:
        server.stop()
    with Image.open(io.BytesIO(shot)) as image:
        picture = image.convert("RGB")
    picture = picture.resize((WIDTH, round(picture.height * WIDTH / picture.width)), Image.Resampling.LANCZOS)
    picture.save(OUTPUT, quality=80, optimize=True)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
