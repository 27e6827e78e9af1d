"""The daily rules (monitoring/daily.py) on a Spark window: each day's measures aggregated by Spark, only per-day
(and per-day, per-category or per-hour) counts reaching the driver, where daily.py's own arithmetic scores them."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ok_ml_assets.monitoring import daily
from ok_ml_assets.monitoring import rules as r
from ok_ml_assets.monitoring.daily import DAY


def _is_null(column: Column, dtype: T.DataType) -> Column:
    """Null, or NaN in a floating column: what pandas counts as missing."""
    if isinstance(dtype, (T.FloatType, T.DoubleType)):
        return column.isNull() | F.isnan(column)
    return column.isNull()


def _known(window: DataFrame, column: str) -> Column:
    """The column's value where pandas sees one, else null."""
    return F.when(~_is_null(F.col(column), window.schema[column].dataType), F.col(column))


def days_of(window: DataFrame) -> list[str]:
    """The window's days that hold rows, oldest first."""
    return sorted(row[0] for row in window.select(DAY).distinct().collect())


def _per_day(window: DataFrame, measure: Column) -> pd.Series:
    """One aggregate per day, as a float series indexed by day, oldest first."""
    rows = window.groupBy(DAY).agg(measure.alias("measure")).collect()
    return pd.Series({row[DAY]: row["measure"] for row in rows}, dtype=np.float64).sort_index()


def rows_per_day(window: DataFrame) -> pd.Series:
    return _per_day(window, F.count(F.lit(1)))


def distinct_per_day(window: DataFrame, column: str) -> pd.Series:
    return _per_day(window, F.countDistinct(_known(window, column)))


def rows_per_entity(window: DataFrame, column: str) -> pd.Series:
    rows = window.groupBy(DAY).agg(F.count(F.lit(1)).alias("rows"), F.countDistinct(_known(window, column)).alias("keys")).collect()
    frame = pd.DataFrame([(row[DAY], row["rows"], row["keys"]) for row in rows], columns=[DAY, "rows", "keys"]).set_index(DAY).sort_index()
    return frame["rows"].astype(np.float64) / frame["keys"].astype(np.float64).replace(0, np.nan)


def category_psi(window: DataFrame, column: str) -> pd.DataFrame:
    """Each day's rows per category (missing values as one category), pivoted in the driver and scored by daily.py."""
    category = F.coalesce(_known(window, column).cast("string"), F.lit(daily.NULL_CATEGORY))
    rows = window.groupBy(DAY, category.alias("category")).count().collect()
    counts = pd.DataFrame([(row[DAY], row["category"], row["count"]) for row in rows], columns=[DAY, "category", "count"])
    return daily.category_psi_of_counts(counts.pivot(index=DAY, columns="category", values="count").fillna(0).sort_index())


def key_overlap(window: DataFrame, days: list[str], column: str, min_presence: float = 0.5) -> pd.DataFrame:
    """daily.key_overlap from two small histograms: keys by the number of days they appear on, and each day's keys by it."""
    need = daily.regular_presence(min_presence, len(days))
    pairs = window.select(DAY, _known(window, column).alias("key")).where(F.col("key").isNotNull()).distinct()
    present_days = pairs.groupBy("key").agg(F.count(F.lit(1)).alias("total"))
    keys_by_total = dict(present_days.groupBy("total").count().collect())
    day_keys = pairs.join(present_days, "key").groupBy(DAY, "total").count().collect()
    always = sum(keys for total, keys in keys_by_total.items() if total >= need)
    scores, regulars = [], []
    for day in days:
        on_day = {row["total"]: row["count"] for row in day_keys if row[DAY] == day}
        # A key present today is regular when its other days reach `need`; one absent today, when all its days do.
        present_regular = sum(keys for total, keys in on_day.items() if total - 1 >= need)
        absent_regular = always - sum(keys for total, keys in on_day.items() if total >= need)
        regular = present_regular + absent_regular
        regulars.append(regular)
        scores.append(present_regular / regular if regular else np.nan)
    index = pd.Index(days, name=DAY)
    return pd.DataFrame({"score": scores, "value": scores, "baseline": np.nan, "regular_keys": regulars}, index=index)


def hours_covered(window: DataFrame, days: list[str], ts_column: str, min_rows: int = 1) -> pd.DataFrame:
    """Rows per (day, hour) of the rows stamped on the date their day tag names, counted by Spark, scored by daily.py."""
    stamps = F.col(ts_column)
    if not isinstance(window.schema[ts_column].dataType, (T.TimestampType, T.TimestampNTZType)):
        stamps = stamps.cast("timestamp")
    on_day = F.lit(False)
    for tag, start in zip(days, daily.tag_dates(days)):
        if not pd.isna(start):
            on_day = F.when(F.col(DAY) == tag, F.to_date(stamps) == F.lit(start.date())).otherwise(on_day)
    rows = window.where(on_day).groupBy(DAY, F.hour(stamps).alias("hour")).count().collect()
    index = pd.MultiIndex.from_arrays([[row[DAY] for row in rows], [row["hour"] for row in rows]], names=[DAY, "hour"])
    per_hour = pd.Series([row["count"] for row in rows], index=index, dtype=np.int64)
    return daily.hours_covered_of_counts(per_hour, min_rows, days)


# Each daily rule's scores per day from the window and its days (days_of, found once for all the rules of a window).
SCORES: dict[type, Callable[[r.DailyRule, DataFrame, list[str]], pd.DataFrame]] = {
    r.DailyRowsChange: lambda rule, window, days: daily.change_from_others(rows_per_day(window)),
    r.DailyDistinctChange: lambda rule, window, days: daily.change_from_others(distinct_per_day(window, rule.column)),
    r.RowsPerEntityChange: lambda rule, window, days: daily.change_from_others(rows_per_entity(window, rule.column)),
    r.CategoryMixPsi: lambda rule, window, days: category_psi(window, rule.column),
    r.KeyOverlap: lambda rule, window, days: key_overlap(window, days, rule.column, rule.min_presence),
    r.HoursCovered: lambda rule, window, days: hours_covered(window, days, rule.ts_column, rule.min_rows_per_hour),
}


def read_window(spark, days: Sequence[tuple[str, Path]], columns: Sequence[str]) -> DataFrame:
    """The daily versions (tag, parquet file) as one Spark table of `columns` with each row's tag in `registered_day`."""
    from ok_ml_assets.engines.spark import read_parquet

    tables = [read_parquet(spark, [path]).select(*columns).withColumn(DAY, F.lit(tag)) for tag, path in days]
    if not tables:
        return spark.createDataFrame([], T.StructType([T.StructField(DAY, T.StringType())]))
    return functools.reduce(DataFrame.unionByName, tables)
