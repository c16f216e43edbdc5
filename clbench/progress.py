"""Progress output: a bar per experience on a terminal, one line per experience otherwise."""

from __future__ import annotations

import sys
import time
from typing import Sequence, TextIO


class Reporter:
    """Writes to `stream` (stderr); silent when `quiet`."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False, tty: bool | None = None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty() if tty is None else tty
        self.label = ""
        self._last = 0.0

    def start_run(self, label: str) -> None:
        self.label = label

    def start_experience(self, index: int, count: int) -> None:
        self.prefix = f"{self.label} exp {index + 1}/{count}"

    def update(self, done: int, total: int) -> None:
        if self.quiet or not self.tty:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = int(width * done / max(total, 1))
        self.stream.write(f"\r{self.prefix} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        self.stream.flush()

    def end_experience(self, index: int, count: int, row: Sequence[float], train_s: float) -> None:
        if self.quiet:
            return
        seen = row[: index + 1]
        line = (f"{self.label} exp {index + 1}/{count}: train {train_s:.1f}s, "
                f"mean acc on seen {sum(seen) / len(seen):.4f}, on all {sum(row) / len(row):.4f}")
        self.stream.write(("\r" + line + " " * 10 + "\n") if self.tty else line + "\n")
        self.stream.flush()
