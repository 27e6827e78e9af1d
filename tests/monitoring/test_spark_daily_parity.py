"""Daily rules on a Spark window (the registered daily files read by Spark) give the numpy engine's outcomes on the same files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ok_ml_assets.monitoring import daily
from ok_ml_assets.monitoring import evaluate as ev
from ok_ml_assets.monitoring.rules import window_columns
from tests.monitoring.test_daily import DAYS, daily_rules, day_table
from tests.monitoring.test_spark_parity import assert_same

pytest.importorskip("pyspark")
from ok_ml_assets.monitoring import spark_daily  # noqa: E402

pytestmark = pytest.mark.spark


def with_gaps(table: pd.DataFrame) -> pd.DataFrame:
    """Some users and events missing (null), as a sloppy export has them."""
    table = table.astype({"user_id": "float64"})
    table.loc[::7, "user_id"] = np.nan
    table.loc[::11, "event"] = None
    return table


CASES = {
    "clean": None,
    "users_missing": day_table(DAYS[-1], users=80),
    "events_swapped": day_table(DAYS[-1], swap=True),
    "hours_missing": day_table(DAYS[-1], hours=18),
    "events_doubled": day_table(DAYS[-1], events_per_user=8),
    "stamped_a_day_early": day_table(DAYS[-1]).assign(ts=lambda f: f["ts"] - pd.Timedelta(days=1)),
    "nulls": with_gaps(day_table(DAYS[-1], users=90)),
}


def registered(folder, last: pd.DataFrame | None, days=DAYS) -> list[tuple[str, object]]:
    """Each day's table as a parquet file, as the registry holds them (the last day replaced by `last`; its column types
    may differ from the other days', which both engines widen alike)."""
    files = []
    for tag in days:
        table = last if last is not None and tag == days[-1] else day_table(tag)
        path = folder / f"{tag}.parquet"
        table.to_parquet(path, index=False)
        files.append((tag, path))
    return files


def both(spark, files, rules) -> list[tuple[ev.RuleOutcome, ev.RuleOutcome]]:
    """(Spark, numpy) outcomes of the daily rules over the same files."""
    columns = window_columns(rules, "interactions")
    pandas_window = daily.window_frame((tag, pd.read_parquet(path, columns=columns)) for tag, path in files)
    spark_window = spark_daily.read_window(spark, files, columns)
    found_spark = ev.evaluate("features", rules, spark.createDataFrame(pd.DataFrame({"user_id": [1]})),
                              context_data={"interactions": spark_window})
    found_numpy = ev.evaluate("features", rules, pd.DataFrame({"user_id": [1]}), context_data={"interactions": pandas_window})
    return list(zip(found_spark, found_numpy))


@pytest.mark.parametrize("case", list(CASES))
def test_daily_rules_match_numpy(spark, tmp_path, case):
    pairs = both(spark, registered(tmp_path, CASES[case]), daily_rules())
    for spark_outcome, numpy_outcome in pairs:
        assert spark_outcome.engine == "spark"
        assert_same(spark_outcome, numpy_outcome)
    if case != "clean":
        assert any(not numpy_outcome.passed for _, numpy_outcome in pairs), "the fault should fail some rule"


def test_a_short_window_and_a_missing_column_match_numpy(spark, tmp_path):
    for spark_outcome, numpy_outcome in both(spark, registered(tmp_path, None, DAYS[:3]), daily_rules()):
        assert not spark_outcome.evaluated
        assert_same(spark_outcome, numpy_outcome)
    files = registered(tmp_path, None)
    rule = daily_rules()[3]
    spark_window = spark_daily.read_window(spark, files, ["user_id"])
    [outcome] = ev.evaluate("features", [rule], spark.createDataFrame(pd.DataFrame({"user_id": [1]})),
                            context_data={"interactions": spark_window})
    assert not outcome.passed and "'event' is missing" in outcome.description


def test_the_spark_window_never_reaches_the_driver_whole(spark, tmp_path, monkeypatch):
    from pyspark.sql import DataFrame

    def refuse(self):
        raise AssertionError("a daily rule collected the window to pandas")

    monkeypatch.setattr(DataFrame, "toPandas", refuse)
    spark_window = spark_daily.read_window(spark, registered(tmp_path, CASES["users_missing"]), ["user_id", "event", "ts"])
    features = spark.createDataFrame(pd.DataFrame({"user_id": [1]}))
    found = ev.evaluate("features", daily_rules(), features, context_data={"interactions": spark_window})
    assert {o.check_name for o in found if not o.passed} == {
        "interactions_daily_rows_within", "interactions_daily_distinct_user_id_within", "interactions_user_id_overlap_at_least"}
