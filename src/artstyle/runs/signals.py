"""Signals during a run: SIGINT and SIGTERM stop it, but never in the middle of writing a file."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM (as ``KeyboardInterrupt`` is by SIGINT)."""


class Signals:
    """SIGINT raises ``KeyboardInterrupt`` and SIGTERM :class:`Terminated`, except inside
    :meth:`shielded`, where a signal is only remembered: a file being written is finished.

    Handlers are only installed (:meth:`installed`) in the main thread, and never for a
    signal that is ignored (a background job's SIGINT stays ignored, as the shell meant
    it). A front end that runs jobs on other threads (the web page) uses one without
    installing it: shielding then costs nothing.
    """

    def __init__(self) -> None:
        self.pending: int | None = None  # a signal number
        self._depth = 0
        self._saved: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._depth:
            if self.pending is None:
                self.pending = int(signum)
            return
        raise interruption(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator[Signals]:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous = signal.getsignal(signum)
                if previous is not signal.SIG_IGN:
                    self._saved[signum] = previous
                    signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            for number, previous in self._saved.items():
                signal.signal(number, signal.SIG_DFL if previous is None else previous)

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def raise_pending(self) -> None:
        """Act on a signal that arrived while shielded."""
        if self.pending is not None and not self._depth:
            signum, self.pending = self.pending, None
            raise interruption(signum)


def interruption(signum: int) -> BaseException:
    """The exception a signal raises: :class:`Terminated` for SIGTERM, else ``KeyboardInterrupt``."""
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
