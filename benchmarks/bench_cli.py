"""`ok-ml --help` against a bare Python start, each a fresh process, best of five.

Run: `.venv/bin/python benchmarks/bench_cli.py`. The aim is under 0.5 s for the CLI's help.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from summary import record  # benchmarks/ is on sys.path when a script runs

REPEATS = 5
OK_ML = Path(sys.executable).parent / "ok-ml"


def best_of(command: list[str]) -> float:
    """The fastest wall time of a few runs of a command, in seconds."""
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    """Print the help's start time beside bare Python's."""
    bare = best_of([sys.executable, "-c", "pass"])
    help_ = best_of([str(OK_ML), "--help"])
    print(f"ok-ml --help {help_:.2f} s, bare python {bare:.2f} s (best of {REPEATS}); aim: under 0.5 s")
    record("ok-ml --help", help_, bare, "s", "bare python", "at most 0.5 s")


if __name__ == "__main__":
    main()
