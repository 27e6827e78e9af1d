"""Monitoring of prod_discovery's two tables by Spark against the numpy engine: seconds to evaluate every rule and summarize.

    python benchmarks/bench_spark_monitoring.py [--users 50000] [--feature-rows 1500000]

Both read the same parquet tables (Spark-written part files; pandas reads the folder), against a reference accepted
from a first materialization, so drift, KS, coverage, exposure and novelty rules are all evaluated. Daily rules are
left out: they read registered daily files, not these tables, and run in pandas on both engines.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from summary import timed  # benchmarks/ is on sys.path when a script runs

from ok_ml_assets.monitoring import evaluate as ev
from ok_ml_assets.monitoring.reference import AssetReference
from ok_ml_assets.monitoring.rules import DailyRule, parse_monitoring
from ok_ml_assets.settings import PROJECT_ROOT


def prod_rules() -> dict[str, list]:
    """prod_discovery's monitoring rules on its two tables, without the daily rules."""
    monitoring = yaml.safe_load((PROJECT_ROOT / "asset_configs" / "prod_discovery.yml").read_text())["monitoring"]
    return {asset: [rule for rule in rules if not isinstance(rule, DailyRule)] for asset, rules in parse_monitoring(monitoring).items()}


def features(rows: int, users: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user_id": rng.integers(0, users, rows), "source_id": rng.zipf(1.3, rows) % 5000,
                         "weight": rng.gamma(1.5, 2.0, rows), "events": rng.integers(1, 40, rows),
                         "days_since_last": rng.integers(0, 30, rows)})


def recommendations(users: int, seed: int, top_k: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    items = (rng.zipf(1.2, (users, top_k)) + np.arange(top_k)) % 5000
    scores = -np.sort(-rng.random((users, top_k)), axis=1)
    return pd.DataFrame({"user_id": np.arange(users, dtype=np.int64), "source_ids": list(items.astype(np.int64)),
                         "scores": list(scores)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--feature-rows", type=int, default=1_500_000)
    args = parser.parse_args()
    from ok_ml_assets.engines.spark import session

    spark = session()
    rules = prod_rules()
    with tempfile.TemporaryDirectory() as tmp:
        tables = {"user_source_features": (features(args.feature_rows, args.users, 1), features(args.feature_rows, args.users, 2)),
                  "recommendations": (recommendations(args.users, 1), recommendations(args.users, 2))}
        paths = {}
        for name, (_, today) in tables.items():
            paths[name] = str(Path(tmp) / f"{name}.parquet")
            spark.createDataFrame(today).write.parquet(paths[name])
        pairs = pd.DataFrame({"user_id": np.arange(args.users), "source_id": np.arange(args.users) % 5000})
        spark.createDataFrame(pairs).write.parquet(str(Path(tmp) / "subscribed_pairs.parquet"))
        for name in ("user_source_features", "recommendations"):
            yesterday = tables[name][0]
            reference = AssetReference(summary=ev.summarize(rules[name], yesterday),
                                       published=yesterday[["user_id", "source_ids"]] if name == "recommendations" else None)
            local_context = {"user_source_features": pd.read_parquet(paths["user_source_features"]),
                             "subscribed_pairs": pd.read_parquet(Path(tmp) / "subscribed_pairs.parquet")}
            spark_context = {"user_source_features": spark.read.parquet(paths["user_source_features"]),
                             "subscribed_pairs": spark.read.parquet(str(Path(tmp) / "subscribed_pairs.parquet"))}
            numpy_seconds, spark_seconds, same = measure(spark, name, rules[name], paths[name], reference, local_context, spark_context)
            print(f"{name}: {len(tables[name][1]):,} rows, {len(rules[name])} rules: numpy {numpy_seconds:.1f} s, "
                  f"spark {spark_seconds:.1f} s (same verdicts: {same})")


def measure(spark, name: str, rules: list, path: str, reference: AssetReference, local_context: dict, spark_context: dict):
    """(numpy seconds, Spark seconds, same verdicts) of evaluating and summarizing one table from its parquet files."""
    from ok_ml_assets.monitoring import spark as sm

    def local():
        frame = pd.read_parquet(path)
        return ev.evaluate(name, rules, frame, reference, local_context), ev.summarize(rules, frame)

    numpy_seconds, (numpy_outcomes, _) = timed(local)
    spark_seconds, (spark_outcomes, _) = timed(lambda: sm.monitor_report(rules, spark.read.parquet(path), reference, spark_context))
    same = [(a.check_name, a.passed) for a in numpy_outcomes] == [(b.check_name, b.passed) for b in spark_outcomes]
    return numpy_seconds, spark_seconds, same

if __name__ == "__main__":
    main()
