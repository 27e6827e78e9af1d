"""Generating and registering days of the large synthetic world, against writing the same parquet files and their md5.

    .venv/bin/python benchmarks/bench_generation.py [--days N] [--preset large]

The product is what `ok-ml run` does to seed an empty registry: draw each day, write it as parquet, validate it
against its contract, DVC add + push, one git commit. The baseline is the floor of any registration: writing the
same tables with pyarrow and computing their md5 (the tables drawn beforehand, untimed). Both run in this process
on the same machine, in a temporary folder; peak RSS is the process's after the product's step.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ok_ml_assets.orchestration import register_versions
from ok_ml_assets.pipeline_types.recommendation_als.synthetic import world_versions
from ok_ml_assets.registry import DataRegistry, load_catalog
from ok_ml_assets.registry.store import file_md5
from ok_ml_assets.settings import PROJECT_ROOT
from ok_ml_assets.synthetic import generate_world

sys.path.insert(0, str(Path(__file__).resolve().parent))
from summary import record  # noqa: E402

CATALOG = PROJECT_ROOT / "data_registry" / "catalog.yml"


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def warm_registry(root: Path) -> DataRegistry:
    """A registry with one tiny version, so DVC, DuckDB and the repository's creation are not in the timings."""
    registry = DataRegistry(root / "registry", str(root / "remote"), load_catalog(CATALOG))
    day = next(generate_world("tiny", days=1, start=dt.date(2020, 1, 1)).days())
    register_versions(registry, [("subscriptions", day.tag, day.subscriptions)], "warm-up")
    return registry


def register_days(registry: DataRegistry, preset: str, days: int) -> tuple[float, int, int]:
    """Seconds to generate and register `days` days as `ok-ml run` does, rows and parquet bytes registered."""
    start = time.perf_counter()
    versions = register_versions(registry, world_versions(generate_world(preset, days=days)), f"synthetic:{preset}:7")
    elapsed = time.perf_counter() - start
    return elapsed, sum(v.rows for v in versions), sum(v.size_bytes for v in versions)


def write_and_hash(folder: Path, preset: str, days: int) -> tuple[float, float, int]:
    """(seconds to draw the days, seconds to write them with pyarrow and md5 each file, parquet bytes)."""
    drawn, written, size = 0.0, 0.0, 0
    tables = iter(world_versions(generate_world(preset, days=days)))
    while True:
        start = time.perf_counter()
        item = next(tables, None)
        drawn += time.perf_counter() - start
        if item is None:
            return drawn, written, size
        name, tag, frame = item
        start = time.perf_counter()
        path = folder / f"{name}-{tag}.parquet"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
        file_md5(path)
        written += time.perf_counter() - start
        size += path.stat().st_size
        path.unlink()


def line(label: str, seconds: float, rows: int, size: int, note: str = "") -> None:
    """One aligned line: seconds, rows/s and MB/s."""
    print(f"  {label:52} {seconds:8.1f} s {rows / seconds / 1e6:7.2f} M rows/s {size / seconds / 1e6:7.1f} MB/s  {note}".rstrip())


def main() -> None:
    """Run the product and its baseline, print both and record the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--preset", default="large")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-generation-") as tmp:
        root = Path(tmp)
        registry = warm_registry(root)
        product, rows, size = register_days(registry, arguments.preset, arguments.days)
        peak = peak_rss_mb()
        drawn, baseline, _ = write_and_hash(root, arguments.preset, arguments.days)
    print(f"\ngenerate and register {arguments.days} days of the {arguments.preset} world "
          f"({rows:,} rows, {size / 1e6:.0f} MB parquet, interactions + subscriptions)")
    line("baseline: pyarrow write + md5 of the same files", baseline, rows, size)
    line("drawing the days alone (numpy + pandas)", drawn, rows, size)
    line("product: generate, validate, DVC add + push, commit", product, rows, size, f"{product / baseline:.1f}x the baseline")
    print(f"  peak RSS after the product: {peak:,.0f} MB (the days are drawn, written and checked one at a time)")
    record(f"generate + register {arguments.days} {arguments.preset} days", product, baseline, "s", "pyarrow write + md5")


if __name__ == "__main__":
    main()
