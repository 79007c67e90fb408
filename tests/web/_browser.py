"""Drive ``artstyle serve`` in Debian's headless Chromium with Playwright.

Shared by the browser tests (test_browser.py) and ``docs/make_screenshot.py``. Playwright's own browser
downloads are never used: its driver launches ``/usr/bin/chromium`` (Debian's package).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CHROMIUM = Path("/usr/bin/chromium")
#: Set by .ci/run: there, a missing browser fails the browser tests instead of skipping them.
REQUIRE_VARIABLE = "ARTSTYLE_REQUIRE_BROWSER"
URL_LINE = re.compile(r"the page is at (http://\S+)")


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"Debian's chromium is not installed ({CHROMIUM} is missing): apt-get install chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed: pip install -e '.[dev]'"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """``python -m artstyle serve`` in a subprocess on a free localhost port.

    ``log`` collects the server's stderr lines (one per job start and end) as they come.
    """

    def __init__(self, *args: str, env: dict[str, str] | None = None, start_timeout: float = 120.0) -> None:
        self.port = free_port()
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            # Run as a background job (as CI does), this process ignores Ctrl-C and so would the
            # server it starts (artstyle keeps an ignored SIGINT ignored); give it a terminal's.
            signal.signal(signal.SIGINT, signal.default_int_handler)
        command = [sys.executable, "-m", "artstyle", "serve", "--port", str(self.port), *args]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONFAULTHANDLER": "1", **(env or {})},
            cwd=ROOT,
        )
        self.log: list[str] = []
        self._log_changed = threading.Condition()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self.url = self._wait_for_url(start_timeout)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._log_changed:
                self.log.append(line.rstrip("\n"))
                self._log_changed.notify_all()

    def _wait_for_url(self, timeout: float) -> str:
        assert self.process.stdout is not None
        found: list[str] = []

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                match = URL_LINE.search(line)
                if match:
                    found.append(match.group(1))
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not found:
            self.stop()
            raise RuntimeError(f"artstyle serve did not start within {timeout:.0f} s: {' | '.join(self.log)}")
        return found[0]

    def mark(self) -> int:
        """How many log lines there are now (for :meth:`wait_for_log`)."""
        with self._log_changed:
            return len(self.log)

    def wait_for_log(self, pattern: str, timeout: float, after: int = 0) -> str:
        """The first stderr line from number ``after`` on matching ``pattern``; fails after ``timeout`` s."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._log_changed:
            while True:
                for line in self.log[after:]:
                    if regex.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no server log line matches {pattern!r}; the log: {self.log}")
                self._log_changed.wait(left)

    def stop(self) -> int:
        """Ctrl-C the server (as a user would) and return its exit code.

        A server that has not stopped 30 s later gets SIGABRT, so that Python's fault handler
        writes every thread's stack into :attr:`log` (the reason it hung), then SIGKILL.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGABRT)
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        self._reader.join(5)
        return self.process.returncode


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless, through Playwright's driver."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)


def open_page(browser: Any, url: str, width: int = 1280, height: int = 1000) -> Any:
    """A fresh browser context (a new session for the server) with the page loaded.

    ``page.outside_requests`` collects every request that leaves the server (there
    should be none: the page must work offline).
    """
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = context.new_page()
    outside: list[str] = []
    page.on(
        "request",
        lambda request: None if request.url.startswith((url, "data:", "blob:")) else outside.append(request.url),
    )
    page.outside_requests = outside
    page.goto(url)
    page.wait_for_selector("#start")
    return page


def upload(page: Any, content: Path, styles: Sequence[Path]) -> None:
    """Upload files into the content image and the style gallery, as a user would."""
    page.locator("#content input[type=file]").set_input_files(str(content))
    page.locator("#styles input[type=file]").set_input_files([str(p) for p in styles])
    # Wait until the uploads are shown, i.e. the files reached the server.
    page.locator("#content img").first.wait_for()
    page.locator("#styles img").first.wait_for()


def set_option(page: Any, name: str, value: object) -> None:
    """Type a value into an option (sliders have a number box beside them)."""
    box = page.locator(f"#option-{name} input:not([type=range]), #option-{name} textarea").first
    box.fill(str(value))
    box.press("Tab")


def status(page: Any) -> str:
    """The state of the status panel: waiting, running, done, stopped or failed ('' before a job)."""
    return str(page.locator("#status .artstyle-status").get_attribute("data-state") or "")


def wait_for_state(page: Any, state: str, timeout: float) -> None:
    page.locator(f'#status .artstyle-status[data-state="{state}"]').wait_for(timeout=timeout * 1000)


def download(page: Any, directory: Path) -> Path:
    """Click the download button and save the file; returns its path."""
    with page.expect_download() as event:
        page.click("#download")
    target = directory / event.value.suggested_filename
    event.value.save_as(target)
    return target
