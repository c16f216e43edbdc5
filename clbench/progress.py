"""Progress output: a bar per experience on a terminal, one line per experience otherwise."""

from __future__ import annotations

import sys
import time
from typing import Sequence, TextIO


class Reporter:
    """Writes to `stream` (stderr); silent when `quiet`.

    On a terminal each experience gets a tqdm bar (iterations, rate, elapsed and ETA); otherwise only
    one line per finished experience.
    """

    def __init__(self, stream: TextIO | None = None, quiet: bool = False, tty: bool | None = None,
                 refresh_s: float = 0.1):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty() if tty is None else tty
        self.refresh_s = refresh_s  # least time between two redraws of the bar
        self.label = ""
        self.prefix = ""
        self._bar = None

    def start_run(self, label: str) -> None:
        self.label = label

    def start_experience(self, index: int, count: int) -> None:
        self.prefix = f"{self.label} exp {index + 1}/{count}"
        self._close_bar()

    def update(self, done: int, total: int) -> None:
        if self.quiet or not self.tty:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.prefix, unit="it", file=self.stream, leave=False,
                             dynamic_ncols=True, mininterval=self.refresh_s)
        self._bar.update(done - self._bar.n)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def end_experience(self, index: int, count: int, row: Sequence[float | None], train_s: float) -> None:
        if self.quiet:
            return
        seen = row[: index + 1]
        if all(acc is not None for acc in seen):
            accuracy = f"mean acc on seen {sum(seen) / len(seen):.4f}"
        else:  # an evaluation plan evaluated only some test experiences after this one
            accuracy = f"acc on experience {index + 1} {row[index]:.4f}"
        if all(acc is not None for acc in row):
            accuracy += f", on all {sum(row) / len(row):.4f}"
        line = f"{self.label} exp {index + 1}/{count}: train {train_s:.1f}s, {accuracy}"
        self._close_bar()
        self.stream.write(line + "\n")
        self.stream.flush()


class SweepReporter:
    """One progress line for a sweep: cells done / running / failed / skipped, elapsed, ETA from finished cells.

    On a terminal the line is redrawn in place; otherwise one line per finished cell. Called as
    `reporter(kind, record)` by `clbench.sweep.run_sweep`.
    """

    def __init__(self, cells: int, skipped: int, stream: TextIO | None = None, quiet: bool = False,
                 tty: bool | None = None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty() if tty is None else tty
        self.cells, self.skipped = cells, skipped
        self.done = self.failed = self.retried = 0
        self.slots = 1
        self.cell_seconds: list[float] = []
        self.started = time.monotonic()

    def __call__(self, kind: str, record: dict) -> None:
        if kind == "start":
            self.slots, self.started = max(1, record["slots"]), time.monotonic()
        elif kind == "retry":
            self.retried += 1
            self._warn_retry(record)
        elif kind == "done":
            self.done += 1
            self.failed += record["status"] != "ok"
            self.cell_seconds.append(record.get("timing", {}).get("worker_wall", 0.0))
        if not self.quiet and (self.tty or kind == "done"):
            end = "" if self.tty and self.done < self.cells else "\n"
            self.stream.write(("\r" if self.tty else "") + self.line() + end)
            self.stream.flush()

    def _warn_retry(self, record: dict) -> None:
        """One line, even when quiet: which cell is retried and why (the final record keeps only the last try)."""
        cell = f"{record['benchmark']}/{record['strategy']}/{record['scenario']}/seed {record['seed']}"
        self.stream.write(("\r\033[K" if self.tty and not self.quiet else "")
                          + f"clbench: warning: {cell} {record['status']}{what_went_wrong(record.get('error'))}; "
                          "retrying\n")
        self.stream.flush()

    def line(self) -> str:
        left = self.cells - self.done
        elapsed = time.monotonic() - self.started
        eta = ""
        if self.cell_seconds and left:
            eta = f", ETA {duration(sum(self.cell_seconds) / len(self.cell_seconds) * left / self.slots)}"
        retried = f", {self.retried} retried" if self.retried else ""
        return (f"sweep: {self.done}/{self.cells} done, {min(left, self.slots)} running, {self.failed} failed"
                f"{retried}, {self.skipped} skipped; {duration(elapsed)} elapsed{eta}")


def what_went_wrong(error: dict | None) -> str:
    """' in experience 3 (ValueError: ...)' or ' in experience 2 (loss nan at iteration 17)' from a record's error."""
    error = error or {}
    experience = error.get("experience")
    where = f" in experience {experience + 1}" if isinstance(experience, int) and experience >= 0 else ""
    if "loss" in error:
        return f"{where} (loss {error['loss']} at iteration {error.get('iteration')})"
    return f"{where} ({error.get('type', 'error')}: {error.get('message', '')})"


def duration(seconds: float) -> str:
    """12s, 3m05s, 2h07m."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
