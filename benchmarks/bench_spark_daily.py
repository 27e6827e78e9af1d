"""prod_discovery's daily rules on a raw window: read by pandas (the local engine, and Spark below 2M rows) against
aggregated by Spark (engine: spark above 2M rows), seconds and the Python driver's peak memory, each in a fresh process.

    python benchmarks/bench_spark_daily.py [--days 10] [--rows-per-day 2000000]

The window is generated as one parquet file per day, like the registry's daily versions (users, sources, four event
types, timestamps over the day's 24 hours). Spark's session start is printed apart and not counted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from summary import record  # benchmarks/ is on sys.path when a script runs

EVENTS = np.array(["view", "click", "like", "comment"])

MEASURE = r"""
import json, resource, sys, time
from pathlib import Path
import pandas as pd
import yaml
from ok_ml_assets.monitoring import daily, evaluate as ev
from ok_ml_assets.monitoring.rules import DailyRule, parse_monitoring, window_columns
from ok_ml_assets.settings import PROJECT_ROOT

engine, files = sys.argv[1], [(Path(p).stem, Path(p)) for p in sys.argv[2:]]
monitoring = yaml.safe_load((PROJECT_ROOT / "asset_configs" / "prod_discovery.yml").read_text())["monitoring"]
rules = [r for r in parse_monitoring(monitoring)["user_source_features"] if isinstance(r, DailyRule)]
columns = window_columns(rules, "interactions")
session = 0.0
features = pd.DataFrame({"user_id": [1]})
if engine == "spark":
    started = time.perf_counter()
    from ok_ml_assets.engines.spark import session as spark_session
    from ok_ml_assets.monitoring.spark_daily import read_window
    spark = spark_session()
    features = spark.createDataFrame(features)
    session = time.perf_counter() - started
started = time.perf_counter()
if engine == "spark":
    window = read_window(spark, files, columns)
else:
    window = daily.window_frame((tag, pd.read_parquet(path, columns=columns)) for tag, path in files)
outcomes = ev.evaluate("user_source_features", rules, features, context_data={"interactions": window})
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "session": session, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
                  "verdicts": [[o.check_name, o.passed, o.observed] for o in outcomes]}))
"""


def write_window(folder: Path, days: int, rows_per_day: int, seed: int = 5) -> list[Path]:
    """`days` daily parquet files of interactions."""
    rng = np.random.default_rng(seed)
    files = []
    for day in range(days):
        tag = f"2026-11-{day + 1:02d}"
        start = pd.Timestamp(tag, tz="UTC")
        frame = pd.DataFrame({
            "user_id": rng.integers(0, rows_per_day // 20, rows_per_day),
            "source_id": rng.zipf(1.3, rows_per_day) % 100_000,
            "event": EVENTS[rng.choice(4, rows_per_day, p=[0.7, 0.15, 0.1, 0.05])],
            "ts": start + pd.to_timedelta(rng.integers(0, 86_400, rows_per_day), unit="s"),
        })
        path = folder / f"{tag}.parquet"
        frame.to_parquet(path, index=False)
        files.append(path)
    return files


def measure(engine: str, files: list[Path]) -> dict:
    """One engine's evaluation in a fresh process."""
    done = subprocess.run([sys.executable, "-c", MEASURE, engine, *map(str, files)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{engine} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--rows-per-day", type=int, default=2_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = write_window(Path(tmp), args.days, args.rows_per_day)
        found = {engine: measure(engine, files) for engine in ("pandas", "spark")}
    rows = args.days * args.rows_per_day
    print(f"\nprod_discovery's {len(found['pandas']['verdicts'])} daily rules on {args.days} days x {args.rows_per_day:,} rows ({rows:,})")
    print(f"  {'engine':8} {'seconds':>8} {'driver peak':>12}")
    for engine, result in found.items():
        extra = f"   (+ session start {result['session']:.1f} s)" if engine == "spark" else ""
        print(f"  {engine:8} {result['seconds']:8.1f} {result['peak_gb']:9.2f} GB{extra}")
    same = all(a[:2] == b[:2] and (a[2] == b[2] or abs(a[2] - b[2]) <= 1e-9 * max(1.0, abs(a[2])))
               for a, b in zip(found["pandas"]["verdicts"], found["spark"]["verdicts"]))
    print(f"  same verdicts and observed values: {same}")
    record(f"daily rules, {rows:,} raw rows, spark (driver peak)", found["spark"]["peak_gb"], found["pandas"]["peak_gb"], "GB",
           "pandas", "")
    record(f"daily rules, {rows:,} raw rows, spark (seconds)", found["spark"]["seconds"], found["pandas"]["seconds"], "s", "pandas", "")


if __name__ == "__main__":
    main()
