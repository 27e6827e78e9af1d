"""What the terminal shows while a run works: each stage as it starts and ends, bars for long loops, and
third-party output (DVC, MLflow, librdkafka, warnings) kept in a log file instead."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

BAR_WIDTH = 30


class Progress:
    """Stage and loop progress on a terminal stream; plain lines, no redrawing, when it is not a TTY."""

    def __init__(self, out: TextIO | None = None):
        self.out = out if out is not None else sys.stdout
        self.tty = self.out.isatty()

    @classmethod
    def silent(cls) -> Progress:
        """Progress that goes nowhere, for callers that report by themselves."""
        return cls(io.StringIO())

    def line(self, text: str = "") -> None:
        """One line of output, flushed at once so progress shows as it happens."""
        print(text, file=self.out, flush=True)

    @contextlib.contextmanager
    def stage(self, name: str, indent: str = "") -> Iterator[None]:
        """Announce a stage, then say how it ended and how long it took."""
        self.line(f"{indent}▸ {name} ...")
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self.line(f"{indent}✗ {name} failed after {time.perf_counter() - start:.1f} s")
            raise
        self.line(f"{indent}✓ {name} {time.perf_counter() - start:.1f} s")

    @contextlib.contextmanager
    def bar(self, label: str, total: int | None = None, indent: str = "  ") -> Iterator[Bar]:
        """A progress bar over `total` items of a loop (a counter when unknown), closed with the count and the time."""
        bar = Bar(self, label, total, indent)
        try:
            yield bar
        finally:
            bar.close()


class Bar:
    """One loop's progress: redrawn in place on a TTY, summarized in one line elsewhere."""

    def __init__(self, progress: Progress, label: str, total: int | None, indent: str):
        self.progress, self.label, self.total, self.indent = progress, label, total, indent
        self.done = 0
        self.start = time.perf_counter()
        self._draw()

    def advance(self, items: int = 1) -> None:
        """Count items as done."""
        self.done += items
        self._draw()

    def _draw(self) -> None:
        if not self.progress.tty:
            return
        self.progress.out.write(f"\r{self.indent}{self.label} {self._drawing()}")
        self.progress.out.flush()

    def _drawing(self) -> str:
        if not self.total:
            return f"{self.done} ..."
        filled = BAR_WIDTH * min(self.done, self.total) // self.total
        return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.done}/{self.total}"

    def _count(self) -> str:
        return f"{self.done}/{self.total}" if self.total else str(self.done)

    def close(self) -> None:
        """Finish the bar's line with the count and elapsed time."""
        if self.progress.tty:
            self.progress.out.write("\r\033[K")
        self.progress.line(f"{self.indent}{self.label}: {self._count()} in {time.perf_counter() - self.start:.1f} s")


@contextlib.contextmanager
def output_to_log(path: Path) -> Iterator[TextIO]:
    """Send everything written to stdout and stderr (libraries, C extensions, warnings) to `path`; yield the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    with open(path, "a", encoding="utf-8") as log:
        log.write(f"\n===== {dt.datetime.now().isoformat(timespec='seconds')} pid {os.getpid()}: {' '.join(sys.argv)}\n")
        log.flush()
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            terminal.close()
