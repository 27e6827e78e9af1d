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
from pyspark.sql.window import Window

from ok_ml_assets.monitoring import daily
from ok_ml_assets.monitoring import rules as r
from ok_ml_assets.monitoring.daily import DAY
from ok_ml_assets.monitoring.spark import is_null

TIMESTAMPS = (T.TimestampType, T.TimestampNTZType)


def _known(window: DataFrame, column: str) -> Column:
    """The column's value where pandas sees one, else null."""
    return F.when(~is_null(F.col(column), window.schema[column].dataType), F.col(column))


class SparkWindow:
    """A Spark window of daily versions and its per-day measures, each aggregation run once for all the rules reading it."""

    def __init__(self, frame: DataFrame):
        self.frame = frame
        self.columns = list(frame.columns)
        self._per_day: pd.DataFrame | None = None

    def per_day(self) -> pd.DataFrame:
        """Rows and distinct known values of every non-timestamp column on each day that holds rows, oldest first, in one job."""
        if self._per_day is None:
            counted = [c for c in self.columns if c != DAY and not isinstance(self.frame.schema[c].dataType, TIMESTAMPS)]
            rows = self.frame.groupBy(DAY).agg(F.count(F.lit(1)).alias("__rows"),
                                              *[F.countDistinct(_known(self.frame, c)).alias(c) for c in counted]).collect()
            found = pd.DataFrame([row.asDict() for row in rows], columns=[DAY, "__rows", *counted])
            self._per_day = found.set_index(DAY).sort_index().astype(np.float64)
        return self._per_day

    def days(self) -> list[str]:
        """The window's days that hold rows, oldest first."""
        return [str(day) for day in self.per_day().index]

    def rows_per_day(self) -> pd.Series:
        return self.per_day()["__rows"]

    def distinct_per_day(self, column: str) -> pd.Series:
        return self.per_day()[column]

    def rows_per_entity(self, column: str) -> pd.Series:
        return self.rows_per_day() / self.distinct_per_day(column).replace(0, np.nan)

    def category_psi(self, column: str) -> pd.DataFrame:
        """Each day's rows per category (missing values as one category), pivoted in the driver and scored by daily.py."""
        category = F.coalesce(_known(self.frame, column).cast("string"), F.lit(daily.NULL_CATEGORY))
        rows = self.frame.groupBy(DAY, category.alias("category")).count().collect()
        counts = pd.DataFrame([(row[DAY], row["category"], row["count"]) for row in rows], columns=[DAY, "category", "count"])
        return daily.category_psi_of_counts(counts.pivot(index=DAY, columns="category", values="count").fillna(0).sort_index())

    def key_overlap(self, column: str, min_presence: float = 0.5) -> pd.DataFrame:
        """daily.key_overlap from one histogram: each day's keys by the number of days each key appears on."""
        days = self.days()
        need = daily.regular_presence(min_presence, len(days))
        pairs = self.frame.select(DAY, _known(self.frame, column).alias("key")).where(F.col("key").isNotNull()).distinct()
        totals = Window.partitionBy("key")
        on_days = pairs.withColumn("total", F.count(F.lit(1)).over(totals)).groupBy(DAY, "total").count().collect()
        by_day: dict[str, dict[int, int]] = {day: {} for day in days}
        keys_by_total: dict[int, float] = {}
        for row in on_days:
            by_day[row[DAY]][row["total"]] = row["count"]
            # A key on `total` days is counted once on each of them.
            keys_by_total[row["total"]] = keys_by_total.get(row["total"], 0) + row["count"] / row["total"]
        always = round(sum(keys for total, keys in keys_by_total.items() if total >= need))
        scores, regulars = [], []
        for day in days:
            on_day = by_day[day]
            # A key present today is regular when its other days reach `need`; one absent today, when all its days do.
            present_regular = sum(keys for total, keys in on_day.items() if total - 1 >= need)
            regular = present_regular + always - sum(keys for total, keys in on_day.items() if total >= need)
            regulars.append(regular)
            scores.append(present_regular / regular if regular else np.nan)
        index = pd.Index(days, name=DAY)
        return pd.DataFrame({"score": scores, "value": scores, "baseline": np.nan, "regular_keys": regulars}, index=index)

    def hours_covered(self, ts_column: str, min_rows: int = 1) -> pd.DataFrame:
        """Rows per (day, hour) of the rows stamped on the date their day tag names, counted by Spark, scored by daily.py."""
        days = self.days()
        stamps = F.col(ts_column)
        if not isinstance(self.frame.schema[ts_column].dataType, TIMESTAMPS):
            stamps = stamps.cast("timestamp")
        on_day = F.lit(False)
        for tag, start in zip(days, daily.tag_dates(days)):
            if not pd.isna(start):
                on_day = F.when(F.col(DAY) == tag, F.to_date(stamps) == F.lit(start.date())).otherwise(on_day)
        rows = self.frame.where(on_day).groupBy(DAY, F.hour(stamps).alias("hour")).count().collect()
        index = pd.MultiIndex.from_arrays([[row[DAY] for row in rows], [row["hour"] for row in rows]], names=[DAY, "hour"])
        per_hour = pd.Series([row["count"] for row in rows], index=index, dtype=np.int64)
        return daily.hours_covered_of_counts(per_hour, min_rows, days)


SCORES: dict[type, Callable[[r.DailyRule, SparkWindow], pd.DataFrame]] = {
    r.DailyRowsChange: lambda rule, window: daily.change_from_others(window.rows_per_day()),
    r.DailyDistinctChange: lambda rule, window: daily.change_from_others(window.distinct_per_day(rule.column)),
    r.RowsPerEntityChange: lambda rule, window: daily.change_from_others(window.rows_per_entity(rule.column)),
    r.CategoryMixPsi: lambda rule, window: window.category_psi(rule.column),
    r.KeyOverlap: lambda rule, window: window.key_overlap(rule.column, rule.min_presence),
    r.HoursCovered: lambda rule, window: window.hours_covered(rule.ts_column, rule.min_rows_per_hour),
}


def read_window(spark, days: Sequence[tuple[str, Path]], columns: Sequence[str]) -> DataFrame:
    """The daily versions (tag, parquet file) as one Spark table of `columns` with each row's tag in `registered_day`."""
    from ok_ml_assets.engines.spark import read_parquet

    # One read per file: the tag goes with the file, never through its path as Spark spells it.
    tables = [read_parquet(spark, [path]).select(*columns, F.lit(tag).alias(DAY)) for tag, path in days]
    if not tables:
        return spark.createDataFrame([], T.StructType([T.StructField(DAY, T.StringType())]))
    return functools.reduce(DataFrame.unionByName, tables)
