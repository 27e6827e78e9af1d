"""The table `make bench` ends with: each figure of the product beside its baseline from the same run, and its aim.

A benchmark calls `record(...)` for each of its headline figures; when `OK_ML_BENCH_SUMMARY` names a file (as
`benchmarks/run_all.py` sets it) the row is appended there as one JSON line, otherwise nothing happens.
`timed` is the one stopwatch the benchmarks share.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

SUMMARY_FILE = "OK_ML_BENCH_SUMMARY"


def timed(action):
    """(seconds, result) of calling `action`."""
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


@dataclass(frozen=True)
class Row:
    """One figure: the product's and its baseline's, in one unit, and the aim on their ratio."""

    what: str
    product: float
    baseline: float
    unit: str
    baseline_name: str
    # On the ratio ("at most 1.25x", "at least 0.7x") or on the product's own figure in its unit ("at most 0.5 s").
    aim: str = ""

    @property
    def ratio(self) -> float:
        """product / baseline (infinite when the baseline is zero)."""
        return self.product / self.baseline if self.baseline else float("inf")

    @property
    def met(self) -> bool | None:
        """Whether the ratio is within its aim (None without one)."""
        if not self.aim:
            return None
        words = self.aim.split()
        on_ratio = words[-1].endswith("x")
        limit, value = (float(words[-1][:-1]), self.ratio) if on_ratio else (float(words[-2]), self.product)
        return value <= limit if words[1] == "most" else value >= limit


def record(what: str, product: float, baseline: float, unit: str, baseline_name: str, aim: str = "") -> Row:
    """Note a headline figure for the final table (when run under run_all.py) and return it."""
    row = Row(what, product, baseline, unit, baseline_name, aim)
    target = os.environ.get(SUMMARY_FILE)
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(row)) + "\n")
    return row


def read_rows(path: Path) -> list[Row]:
    """The rows recorded so far."""
    if not path.exists():
        return []
    return [Row(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def _figure(value: float, unit: str) -> str:
    return f"{value:,.3g} {unit}" if abs(value) < 100 else f"{value:,.0f} {unit}"


def table(rows: list[Row]) -> str:
    """The rows as an aligned text table."""
    header = ("what", "product", "baseline (same run)", "ratio", "aim", "")
    lines = [header]
    for row in rows:
        verdict = {True: "met", False: "NOT met", None: ""}[row.met]
        lines.append((row.what, _figure(row.product, row.unit), f"{_figure(row.baseline, row.unit)} ({row.baseline_name})",
                      f"{row.ratio:.2f}x", row.aim, verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)
