"""Progress reporting for long runs: per stage, frames done / total.

The library calls a ``progress(stage, done, total)`` callable when one is given; the CLI passes a
:class:`ConsoleProgress`. Nothing is printed by library code itself.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

__all__ = ["ConsoleProgress", "Progress"]


class Progress(Protocol):
    """A progress callback: ``done`` of ``total`` items of ``stage`` are finished."""

    def __call__(self, stage: str, done: int, total: int) -> None:
        """Report ``done`` of ``total`` items of ``stage``."""


class ConsoleProgress:
    """One updating line per stage on a terminal; a line every 10% (and the last) otherwise.

    With ``summary_only`` (the CLI's choice when the stream is not a terminal: a pipe, a log
    file) only one line per finished stage is written, and stages with nothing to do (``0/0``)
    or that end exactly like the previous one (a second pass of ``hashing 142/142``) not at all.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        min_interval_s: float = 0.2,
        summary_only: bool = False,
    ):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) and not summary_only
        self.summary_only = summary_only
        self._finished: tuple[str, int] | None = None
        self.min_interval_s = min_interval_s
        self._stage: str | None = None
        self._last = 0.0
        self._last_decile = -1
        self._t0 = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        """Update the stage's line (a new line when the stage changes)."""
        now = time.monotonic()
        if stage != self._stage:
            if self._stage is not None and self.tty:
                self.stream.write("\n")
            self._stage, self._last_decile, self._t0 = stage, -1, now
        finished = total > 0 and done >= total
        elapsed = now - self._t0
        line = f"{stage:<12} {done:>6}/{total:<6} {elapsed:6.1f}s"
        if self.tty:
            if finished or now - self._last >= self.min_interval_s:
                self.stream.write("\r" + line + ("\n" if finished else ""))
                self.stream.flush()
                self._last = now
                if finished:
                    self._stage = None
            return
        if self.summary_only:
            if finished and self._finished != (stage, total):
                self.stream.write(f"{stage:<12} {done:>6}/{total:<6} {elapsed:6.1f}s\n")
                self.stream.flush()
                self._finished = (stage, total)
            if finished:
                self._stage = None
            return
        decile = int(10 * done / total) if total else 10
        if decile > self._last_decile or finished:
            self._last_decile = decile
            self.stream.write(line + "\n")
            self.stream.flush()
            if finished:
                self._stage = None
