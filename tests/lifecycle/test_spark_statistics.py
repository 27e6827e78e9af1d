"""A Spark asset's statistics metadata: collected from a short table, computed by Spark on a long one, the same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ok_ml_assets.configs import load_experiment_config
from ok_ml_assets.lifecycle import assets
from ok_ml_assets.settings import PROJECT_ROOT

pytestmark = pytest.mark.spark


def test_long_tables_are_summarized_by_spark_to_the_same_metadata(spark, monkeypatch):
    config = load_experiment_config(PROJECT_ROOT / "asset_configs" / "prod_discovery.yml")
    rng = np.random.default_rng(3)
    features = spark.createDataFrame(pd.DataFrame({
        "user_id": rng.integers(0, 300, 5000), "source_id": rng.integers(0, 80, 5000), "weight": rng.gamma(1.5, 2.0, 5000),
        "events": rng.integers(1, 40, 5000), "days_since_last": rng.integers(0, 30, 5000)})).repartition(3)
    collected = assets.statistics_metadata(config, "user_source_features", features)
    monkeypatch.setattr(assets, "COLLECT_ROWS_AT_MOST", 4999)
    collected_calls = []
    monkeypatch.setattr(assets, "summarized_columns_in_driver", lambda *args: collected_calls.append(args))
    by_spark = assets.statistics_metadata(config, "user_source_features", features)
    assert not collected_calls
    assert by_spark.keys() == collected.keys() and "source_id_p50" in by_spark and "weight_p99" in by_spark
    for name, value in collected.items():
        assert by_spark[name].value == pytest.approx(value.value, rel=1e-9), name


def test_a_long_daily_window_stays_a_spark_table_and_a_short_one_is_read_by_pandas(spark, monkeypatch, tmp_path):
    from types import SimpleNamespace

    from pyspark.sql import DataFrame

    from ok_ml_assets.monitoring.daily import DAY

    versions = []
    for day in range(3):
        tag = f"2026-11-0{day + 1}"
        pd.DataFrame({"user_id": [day, day + 1], "event": ["view", "like"]}).to_parquet(tmp_path / f"{tag}.parquet")
        versions.append(SimpleNamespace(name="interactions", tag=tag, rows=2))
    client = SimpleNamespace(path=lambda name, tag: tmp_path / f"{tag}.parquet")
    monkeypatch.setattr(assets, "built_from", lambda *args: versions)

    def window(engine: str):
        return assets.read_daily_window(None, client, None, None, ["user_id"], engine)

    assert isinstance(window("local"), pd.DataFrame) and isinstance(window("spark"), pd.DataFrame)
    monkeypatch.setattr(assets, "COLLECT_ROWS_AT_MOST", 5)
    long = window("spark")
    assert isinstance(long, DataFrame)
    assert sorted(map(tuple, long.select(DAY, "user_id").collect())) == sorted(map(tuple, window("local")[[DAY, "user_id"]].to_numpy()))
