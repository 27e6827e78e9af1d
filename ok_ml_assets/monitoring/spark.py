"""Monitoring rules evaluated on a Spark DataFrame: Spark aggregates the table, the driver only sees small results.

What reaches the driver per rule: counts and moments (one aggregation per table for all the value rules), at most
MAX_EXAMPLES offending rows, PSI bin counts, KS counts per interval between the reference sketch's points, the top
items and a histogram of exposure counts, and for each summarized column at most SKETCH_SIZE + 30 exact order
statistics, or its value counts when it has at most DISTINCT_AT_MOST distinct values (ids, counts, days: one job for
all such columns, from which quantiles, bins, PSI and KS are read exactly). Spark's cost on small tables is per job, so
the numeric columns are profiled together first (moments and a distinct estimate in one aggregation). The outcomes
equal the numpy engine's (tests/monitoring/test_spark_parity.py):

- "first offending rows" are first in the table's partition order (the order `toPandas` gives), kept as a row
  position (`monotonically_increasing_id`) next to each row, and list elements after it in list order;
- quantiles are exact order statistics at numpy's ranks (`nearest` for quantile rules, inverted CDF for summaries):
  read from the value counts, or the column is range-sorted by Spark, each partition's size counted, and only the
  rows at the wanted global ranks fetched (position inside a partition = the low 33 bits of `monotonically_increasing_id`);
- the KS distance is exact: between two neighbouring reference points the reference CDF is flat, so only the
  reference points and, per interval, the largest new value can be the furthest point (Bucketizer finds intervals).

Novelty runs in Spark against the last published lists, which the reference store holds in the driver anyway. The
daily rules stay in pandas: they read the registered daily files of a dataset (`context_data`), not this table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ok_ml_assets.monitoring import evaluate as ev
from ok_ml_assets.monitoring import rules as r
from ok_ml_assets.monitoring import statistics as st
from ok_ml_assets.monitoring.reference import AssetReference
from ok_ml_assets.monitoring.values import MAX_EXAMPLES, MIXED_TYPES, metric_between, quantile_in_range

ENGINE = "spark"
ROW = "__row"
POS = "__pos"
VALUE = "__value"
# A column no longer than the summary's sketch is collected whole (the sketch keeps all of it anyway), a longer one sorted.
COLLECT_AT_MOST = st.SKETCH_SIZE
# A column with at most this many distinct values (estimated) is counted per value in one job shared by all such
# columns; its order statistics, bins and KS come from those counts in the driver instead of a sort per column.
# Each job costs about half a second on a small table, which is what monitoring on Spark spent its time on.
DISTINCT_AT_MOST = 100_000
# monotonically_increasing_id puts the partition index above the low 33 bits and the row's index inside them.
PARTITION_SHIFT = 33


# ---- columns and tables ------------------------------------------------------------------------------------------

def column_kind(dtype: T.DataType) -> str:
    """How the rules treat a Spark type: numeric, boolean, string, temporal or other (lists, maps)."""
    if isinstance(dtype, T.NumericType):
        return "numeric"
    if isinstance(dtype, T.BooleanType):
        return "boolean"
    if isinstance(dtype, T.StringType):
        return "string"
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType, T.DateType)):
        return "temporal"
    return "other"


def is_null(column: Column, dtype: T.DataType) -> Column:
    """Null as pandas sees it after `toPandas`: null, and NaN in floating columns."""
    if isinstance(dtype, (T.FloatType, T.DoubleType)):
        return column.isNull() | F.isnan(column)
    return column.isNull()


def _as_float32(value: Any, dtype: T.DataType) -> Any:
    """A float column's mean or std as pandas returns it for float32: rounded to single precision."""
    if value is None or not isinstance(dtype, T.FloatType):
        return value
    return float(np.float32(value))


def _spark_frame(spark, table: Any) -> DataFrame:
    """A context table as a Spark DataFrame (pandas tables are handed to Spark through Arrow)."""
    from ok_ml_assets.engines import is_spark_frame

    return table if is_spark_frame(table) else spark.createDataFrame(table)


class SparkTables:
    """The asset's rows with their positions, the derived list tables, the other assets, and sorted columns (cached)."""

    def __init__(self, frame: DataFrame, context_data: Mapping[str, Any]):
        self.frame = frame
        self.spark = frame.sparkSession
        self.columns = list(frame.columns)
        self.rows = frame.withColumn(ROW, F.monotonically_increasing_id())
        self.context_data = context_data
        self._sorted: dict[str, SortedValues | CollectedValues | Distribution] = {}
        self._count: int | None = None
        self.profiles: dict[str, ColumnProfile] = {}
        self.exposures: dict[tuple[str, str], tuple[Exposure, DataFrame]] = {}
        self.windows: dict[str, Any] = {}  # each daily rules' dataset as a spark_daily.SparkWindow, measured once

    def dtype(self, column: str) -> T.DataType:
        return self.frame.schema[column].dataType

    def row_count(self) -> int:
        """The number of rows, counted once."""
        if self._count is None:
            self._count = self.frame.count()
        return self._count

    def input(self, asset: str) -> DataFrame:
        """Another asset's value as a Spark DataFrame, which the caller must have passed."""
        if asset not in self.context_data:
            raise ev.MissingInput(f"this rule needs the value of asset {asset!r}: pass it in context_data")
        return _spark_frame(self.spark, self.context_data[asset])

    def items(self, user_column: str, items_column: str) -> DataFrame:
        """One row per recommended (user, item) with its row position, place and rank in the list."""
        exploded = self.rows.select(ROW, user_column, F.posexplode(items_column).alias(POS, "item"))
        return exploded.withColumn("rank", F.col(POS) + 1)

    def lists(self, user_column: str, items_column: str) -> DataFrame:
        """One row per user with the length of their list."""
        return self.rows.select(ROW, user_column, F.coalesce(F.size(items_column), F.lit(0)).alias("list_length"))

    def sorted_values(self, column: str, count: int) -> SortedValues | CollectedValues | Distribution:
        """The column's `count` non-null values in order for any rank: its value counts, collected when few, else sorted."""
        if column not in self._sorted:
            values = self.column_values(column)
            self._sorted[column] = CollectedValues(values) if count <= COLLECT_AT_MOST else SortedValues(values)
        return self._sorted[column]

    def distribution(self, column: str) -> Distribution | None:
        """The column's value counts, when `profile` found it has few distinct values."""
        found = self._sorted.get(column)
        return found if isinstance(found, Distribution) else None

    def profile(self, columns: Sequence[str]) -> None:
        """Moments and distinct estimates of these numeric columns in one job per table, then value counts of the low-distinct ones.

        Plain columns share one aggregation over the rows (which also counts them); each list column is aggregated over
        its elements. Columns with at most DISTINCT_AT_MOST distinct values then get their value counts in one more job.
        """
        wanted = [c for c in dict.fromkeys(columns) if c in self.columns and c not in self.profiles and _countable(self.dtype(c))]
        plain = [c for c in wanted if not isinstance(self.dtype(c), T.ArrayType)]
        if plain or self._count is None:
            measures = [m for c in plain for m in _profile_measures(c, F.col(c))]
            measured = self.frame.agg(F.count(F.lit(1)).alias("__rows"), *measures).first()
            self._count = measured["__rows"]
            self.profiles.update({c: ColumnProfile.of(measured, c) for c in plain})
        for column in wanted:
            if column not in plain:
                values = self.column_values(column)
                self.profiles[column] = ColumnProfile.of(values.agg(*_profile_measures(column, F.col(VALUE))).first(), column)
        few = [c for c in wanted if self.profiles[c].distinct_estimate <= DISTINCT_AT_MOST]
        self._sorted.update(self._value_counts([c for c in few if c in plain], self.frame))
        for column in few:
            if column not in plain:
                self._sorted.update(self._value_counts([VALUE], self.column_values(column), name=column))

    def _value_counts(self, columns: list[str], frame: DataFrame, name: str | None = None) -> dict[str, Distribution]:
        """Each column's non-null, non-NaN values with their counts, all columns stacked into one Spark job."""
        if not columns:
            return {}
        dtypes = [frame.schema[c].dataType for c in columns]
        stacked = F.explode(F.array(*[
            F.struct(F.lit(i).alias("c"), *_split_value(F.col(c), dtype)) for i, (c, dtype) in enumerate(zip(columns, dtypes))]))
        rows = (frame.select(stacked.alias("s")).select("s.*").where(F.col("whole").isNotNull() | F.col("real").isNotNull())
                .groupBy("c", "whole", "real").count().collect())
        found: dict[int, list] = {i: [] for i in range(len(columns))}
        for row in rows:
            found[row["c"]].append((row["whole"] if row["whole"] is not None else row["real"], row["count"]))
        return {name or column: Distribution.of(found[i], dtypes[i]) for i, column in enumerate(columns)}

    def column_values(self, column: str) -> DataFrame:
        """A column's values (list columns flattened) as one column VALUE, nulls included."""
        if isinstance(self.dtype(column), T.ArrayType):
            return self.frame.select(F.explode(column).alias(VALUE))
        return self.frame.select(F.col(column).alias(VALUE))

    def close(self) -> None:
        """Drop the sorted columns Spark keeps cached."""
        for values in self._sorted.values():
            values.close()
        self._sorted.clear()


@dataclass(frozen=True)
class ColumnProfile:
    """A numeric column's values (nulls included), present values (neither null nor NaN), their mean and std, distinct estimate."""

    values: int
    present: int
    mean: float | None
    std: float | None
    distinct_estimate: int

    @classmethod
    def of(cls, measured, column: str) -> ColumnProfile:
        return cls(*(measured[f"{column}__{name}"] for name in ("values", "present", "mean", "std", "distinct")))


def _countable(dtype: T.DataType) -> bool:
    """Whether a column (or a list column's elements) is numeric, which profiles and value counts handle."""
    element = dtype.elementType if isinstance(dtype, T.ArrayType) else dtype
    return isinstance(element, T.NumericType)


def _profile_measures(column: str, value: Column) -> list[Column]:
    """The aggregates of a ColumnProfile, over values as `_numeric` sees them (nulls are NaN, not present)."""
    number = value.cast("double")
    present = number.isNotNull() & ~F.isnan(number)
    kept = F.when(present, number)
    return [F.count(F.lit(1)).alias(f"{column}__values"), _count_where(present).alias(f"{column}__present"),
            F.avg(kept).alias(f"{column}__mean"), F.stddev_samp(kept).alias(f"{column}__std"),
            F.approx_count_distinct(kept, 0.05).alias(f"{column}__distinct")]


def _is_whole(dtype: T.DataType) -> bool:
    return isinstance(dtype, (T.ByteType, T.ShortType, T.IntegerType, T.LongType))


def _split_value(column: Column, dtype: T.DataType) -> list[Column]:
    """A value as (whole, real): integral types exactly as a long, the others as a double, so columns of any type stack."""
    if _is_whole(dtype):
        return [column.cast("long").alias("whole"), F.lit(None).cast("double").alias("real")]
    kept = F.when(~is_null(column, dtype), column.cast("double"))
    return [F.lit(None).cast("long").alias("whole"), kept.alias("real")]


class Distribution:
    """A column's non-null, non-NaN values as sorted distinct values with their counts: exact order statistics and counts."""

    def __init__(self, values: np.ndarray, counts: np.ndarray):
        order = np.argsort(values, kind="stable")
        self.values, self.counts = values[order], counts[order].astype(np.int64)
        self.cumulative = np.cumsum(self.counts)
        self.count = int(self.cumulative[-1]) if self.cumulative.size else 0

    @classmethod
    def of(cls, pairs: list[tuple[Any, int]], dtype: T.DataType) -> Distribution:
        values = np.array([v for v, _ in pairs], dtype=np.int64 if _is_whole(dtype) else np.float64)
        return cls(values, np.array([c for _, c in pairs], dtype=np.int64))

    def at(self, ranks: Sequence[int]) -> dict[int, Any]:
        """The values at these 0-based ranks of the sorted column."""
        return {int(k): self.values[np.searchsorted(self.cumulative, int(k), side="right")].item() for k in ranks}

    def at_most(self, points: np.ndarray) -> np.ndarray:
        """How many values are <= each point."""
        below = np.searchsorted(self.values.astype(np.float64), np.asarray(points, dtype=np.float64), side="right")
        return np.concatenate([[0], self.cumulative])[below]

    def close(self) -> None:
        pass


class SortedValues:
    """A column's non-null, non-NaN values range-sorted by Spark; exact order statistics at any global ranks."""

    def __init__(self, values: DataFrame):
        dtype = values.schema[VALUE].dataType
        present = values.where(~is_null(F.col(VALUE), dtype))
        self.ordered = present.orderBy(VALUE).select(VALUE, F.monotonically_increasing_id().alias("id")).persist()
        sizes = dict(self.ordered.groupBy(F.shiftright("id", PARTITION_SHIFT).alias("part")).count().collect())
        self.starts: list[tuple[int, int, int]] = []
        start = 0
        for part in sorted(sizes):
            self.starts.append((part, start, sizes[part]))
            start += sizes[part]
        self.count = start

    def at(self, ranks: Sequence[int]) -> dict[int, Any]:
        """The values at these 0-based ranks of the sorted column."""
        ids: dict[int, int] = {}
        for rank in set(int(k) for k in ranks):
            for part, start, size in self.starts:
                if start <= rank < start + size:
                    ids[(part << PARTITION_SHIFT) + rank - start] = rank
        if not ids:
            return {}
        found = self.ordered.where(F.col("id").isin(list(ids))).collect()
        return {ids[row["id"]]: row[VALUE] for row in found}

    def close(self) -> None:
        self.ordered.unpersist()


class CollectedValues:
    """A short column's non-null, non-NaN values collected and sorted in the driver."""

    def __init__(self, values: DataFrame):
        dtype = values.schema[VALUE].dataType
        self.ordered = sorted(row[VALUE] for row in values.where(~is_null(F.col(VALUE), dtype)).collect())
        self.count = len(self.ordered)

    def at(self, ranks: Sequence[int]) -> dict[int, Any]:
        """The values at these 0-based ranks."""
        return {int(k): self.ordered[int(k)] for k in ranks}

    def close(self) -> None:
        self.ordered = []


def nearest_rank(n: int, quantile: float) -> int:
    """The 0-based rank pandas' `quantile(q, interpolation="nearest")` picks among n sorted values (numpy's rounding)."""
    q = np.true_divide(np.asarray([quantile], dtype=np.float64) * 100.0, 100)
    return int(np.around((n - 1) * q).astype(np.intp)[0])


# ---- value rules -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MapCheck:
    """A map rule over one table: which rows it considers, which of those are unexpected, how offenders are shown."""

    rule: Any
    table: DataFrame
    unexpected: Column
    considered: Column | None
    example_columns: list[str]
    order: list[str]
    mostly: float = 1.0
    error_if_values: str | None = None


@dataclass(frozen=True)
class Aggregate:
    """An aggregate rule over the rows: its Spark aggregate, or an error for the column's type."""

    rule: Any
    measure: Column | None
    present: Column
    error: str | None = None
    error_if_values: str | None = None
    dtype: T.DataType | None = None


def _ids(tables: SparkTables, column: str) -> list[str]:
    return [c for c in tables.columns if c.endswith("_id") and c != column] + [column]


def _present(tables: SparkTables, column: str) -> Column:
    return ~is_null(F.col(column), tables.dtype(column))


def _within(tables: SparkTables, rule: r.Bounded, column: str) -> tuple[Column, str | None, str | None]:
    """(inside the bounds, error always, error when there are values) as the numpy engine compares the column."""
    kind = column_kind(tables.dtype(column))
    value = F.col(column).cast("int") if kind == "boolean" else F.col(column)
    inside = F.lit(True)
    if rule.min is not None:
        inside = inside & (value >= F.lit(rule.min))
    if rule.max is not None:
        inside = inside & (value <= F.lit(rule.max))
    if kind == "string":
        return F.lit(True), None, MIXED_TYPES
    if kind in ("temporal", "other"):
        return F.lit(True), f"Invalid comparison between a {tables.dtype(column).simpleString()} column and float", None
    return inside, None, None


def _set_members(values: Sequence[Any], kind: str) -> list[Any]:
    """The allowed values that can equal a value of this kind, as pandas' `isin` matches them (True == 1 == 1.0)."""
    if kind == "string":
        return [v for v in values if isinstance(v, str)]
    numbers = [v for v in values if not isinstance(v, str)]
    if kind == "numeric":
        return [float(v) for v in numbers]
    if kind == "boolean":
        return sorted({bool(v) for v in numbers if v in (0, 1)})
    return []


def _column_check(rule: r.ColumnRule, tables: SparkTables, unexpected: Column, considered: Column | None, **kwargs) -> MapCheck:
    return MapCheck(rule, tables.rows, unexpected, considered, _ids(tables, rule.column), [ROW], **kwargs)


def _not_null(rule: r.NotNull, tables: SparkTables) -> MapCheck:
    return _column_check(rule, tables, ~_present(tables, rule.column), None, mostly=rule.mostly)


def _in_range(rule: r.InRange, tables: SparkTables) -> MapCheck | ev.RuleOutcome:
    inside, error, error_if_values = _within(tables, rule, rule.column)
    if error:
        return _error(rule, error)
    present = _present(tables, rule.column)
    return _column_check(rule, tables, present & ~inside, present, mostly=rule.mostly, error_if_values=error_if_values)


def _in_set(rule: r.InSet, tables: SparkTables) -> MapCheck:
    members = _set_members(rule.values, column_kind(tables.dtype(rule.column)))
    inside = F.col(rule.column).isin(members) if members else F.lit(False)
    present = _present(tables, rule.column)
    return _column_check(rule, tables, present & ~inside, present, mostly=rule.mostly)


def _list_length(rule: r.ListLength, tables: SparkTables) -> MapCheck:
    lists = tables.lists(rule.user_column, rule.items_column)
    inside = F.lit(True)
    if rule.min is not None:
        inside = inside & (F.col("list_length") >= F.lit(rule.min))
    if rule.max is not None:
        inside = inside & (F.col("list_length") <= F.lit(rule.max))
    return MapCheck(rule, lists, ~inside, F.lit(True), [rule.user_column, "list_length"], [ROW])


def _no_duplicates(rule: r.NoDuplicates, tables: SparkTables) -> MapCheck:
    items = tables.items(rule.user_column, rule.items_column)
    item_type = items.schema["item"].dataType
    considered = ~(is_null(F.col(rule.user_column), items.schema[rule.user_column].dataType) & is_null(F.col("item"), item_type))
    counted = items.withColumn("__copies", F.count(F.lit(1)).over(Window.partitionBy(rule.user_column, "item")))
    return MapCheck(rule, counted, considered & (F.col("__copies") > 1), considered, [rule.user_column, "item", "rank"], [ROW, POS])


def _no_subscribed_items(rule: r.NoSubscribedItems, tables: SparkTables) -> MapCheck:
    items = tables.items(rule.user_column, rule.items_column)
    pairs = (tables.input(rule.pairs_from).select(F.col(rule.user_column).alias("__user"), F.col(rule.pair_item_column).alias("__item"))
             .distinct().withColumn("__known", F.lit(True)))
    same = F.col(rule.user_column).eqNullSafe(F.col("__user")) & F.col("item").eqNullSafe(F.col("__item"))
    flagged = items.join(pairs, same, "left").withColumn("__known", F.coalesce("__known", F.lit(False)))
    return MapCheck(rule, flagged, F.col("__known"), None, [rule.user_column, "item", "rank"], [ROW, POS])


def _moment(rule: r.MeanBetween | r.StdBetween, tables: SparkTables, measure) -> Aggregate | ev.RuleOutcome:
    dtype = tables.dtype(rule.column)
    kind = column_kind(dtype)
    present = _present(tables, rule.column)
    if kind in ("temporal", "other"):
        return _error(rule, f"'>=' not supported between a {dtype.simpleString()} aggregate and float")
    error_if_values = f"Could not convert string values of {rule.column} to numeric" if kind == "string" else None
    value = F.when(present, F.col(rule.column).cast("double"))
    return Aggregate(rule, measure(value) if kind != "string" else None, present, error_if_values=error_if_values, dtype=dtype)


def _mean_between(rule: r.MeanBetween, tables: SparkTables):
    return _moment(rule, tables, F.avg)


def _std_between(rule: r.StdBetween, tables: SparkTables):
    return _moment(rule, tables, F.stddev_samp)


def _quantile_between(rule: r.QuantileBetween, tables: SparkTables):
    dtype = tables.dtype(rule.column)
    kind = column_kind(dtype)
    if kind in ("temporal", "other"):
        return _error(rule, f"float() argument must be a real number, not a {dtype.simpleString()}")
    error_if_values = f"could not convert string values of {rule.column} to float" if kind == "string" else None
    return Aggregate(rule, None, _present(tables, rule.column), error_if_values=error_if_values, dtype=dtype)


VALUE_RULES = {
    r.NotNull: _not_null, r.InRange: _in_range, r.InSet: _in_set, r.MeanBetween: _mean_between,
    r.StdBetween: _std_between, r.QuantileBetween: _quantile_between,
    r.ListLength: _list_length, r.NoDuplicates: _no_duplicates, r.NoSubscribedItems: _no_subscribed_items,
}


def _error(rule: r.Rule, error: str) -> ev.RuleOutcome:
    return ev._outcome(rule, False, None, ENGINE, note=f"spark could not evaluate it: {error}")


def _count_where(condition: Column) -> Column:
    return F.coalesce(F.sum(F.when(condition, 1).otherwise(0)), F.lit(0))


def _map_outcomes(checks: Sequence[MapCheck]) -> dict[str, ev.RuleOutcome]:
    """The map rules' outcomes: per table one aggregation, then one job fetching the first offenders of every failing rule."""
    outcomes = {}
    by_table: dict[int, list[MapCheck]] = {}
    for check in checks:
        by_table.setdefault(id(check.table), []).append(check)
    for group in by_table.values():
        table = group[0].table
        columns = [F.count(F.lit(1)).alias("rows")]
        for i, check in enumerate(group):
            considered = check.considered if check.considered is not None else F.lit(True)
            columns += [_count_where(considered).alias(f"considered_{i}"),
                        _count_where(considered & check.unexpected).alias(f"unexpected_{i}")]
        counts = table.agg(*columns).first()
        measured = {i: (counts["rows"], counts[f"considered_{i}"], counts[f"unexpected_{i}"]) for i in range(len(group))}
        failing = {i: check for i, check in enumerate(group) if measured[i][2] and not (check.error_if_values and measured[i][1])}
        examples = _first_offenders(failing)
        for i, check in enumerate(group):
            outcomes[check.rule.check_name] = _map_outcome(check, *measured[i], examples.get(i, []))
    return outcomes


def _first_offenders(checks: Mapping[int, MapCheck]) -> dict[int, list[dict[str, Any]]]:
    """Each check's first MAX_EXAMPLES offending rows in table order, in two jobs for all the failing checks of a table.

    The first finds the positions (a row per offending check and row, numbered per check: Spark limits each check's
    rows before the shuffle), the second fetches those rows' example columns.
    """
    if not checks:
        return {}
    some = next(iter(checks.values()))
    table, order = some.table, some.order
    flags = F.array(*[F.when(check.unexpected, F.lit(i)) for i, check in checks.items()])
    offending = table.select(*order, F.explode(flags).alias("__check")).where(F.col("__check").isNotNull())
    numbered = offending.withColumn("__n", F.row_number().over(Window.partitionBy("__check").orderBy(*order)))
    firsts = numbered.where(F.col("__n") <= MAX_EXAMPLES).collect()
    wanted = {tuple(row[c] for c in order) for row in firsts}
    columns = list(dict.fromkeys(c for check in checks.values() for c in check.example_columns if c not in order))
    fetched = table.where(F.col(ROW).isin(list({key[0] for key in wanted}))).select(*order, *columns).collect()
    by_key = {tuple(row[c] for c in order): row for row in fetched}
    examples: dict[int, list] = {i: [] for i in checks}
    for row in sorted(firsts, key=lambda row: [row[c] for c in order]):
        found = by_key[tuple(row[c] for c in order)]
        examples[row["__check"]].append({c: found[c] for c in checks[row["__check"]].example_columns})
    return examples


def _map_outcome(check: MapCheck, rows: int, considered: int, unexpected: int, examples: list) -> ev.RuleOutcome:
    """A map rule's verdict as the numpy engine gives it: vacuous on no rows, `mostly` over the considered rows."""
    if check.error_if_values and considered > 0:
        return _error(check.rule, check.error_if_values)
    denominator = rows if check.considered is None else considered
    success = True if rows == 0 or denominator == 0 else (denominator - unexpected) / denominator >= check.mostly
    percent = unexpected / denominator * 100 if rows > 0 and denominator > 0 else None
    return ev._outcome(check.rule, success, unexpected, ENGINE, examples,
                       note=f"{unexpected} of {rows} rows ({unexpected / max(rows, 1):.2%}) unexpected",
                       element_count=rows, unexpected_percent=percent)


def _aggregate_outcomes(aggregates: Sequence[Aggregate], tables: SparkTables) -> dict[str, ev.RuleOutcome]:
    """Means, standard deviations and present counts in one pass over the rows; quantiles as exact order statistics."""
    if not aggregates:
        return {}
    columns = []
    for i, aggregate in enumerate(aggregates):
        columns.append(_count_where(aggregate.present).alias(f"present_{i}"))
        if aggregate.measure is not None:
            columns.append(aggregate.measure.alias(f"measure_{i}"))
    measured = tables.rows.agg(*columns).first()
    present = {aggregate.rule.check_name: measured[f"present_{i}"] for i, aggregate in enumerate(aggregates)}
    quantiles = _quantiles([a.rule for a in aggregates if isinstance(a.rule, r.QuantileBetween) and not a.error_if_values], present, tables)
    outcomes = {}
    for i, aggregate in enumerate(aggregates):
        rule = aggregate.rule
        if aggregate.error_if_values and present[rule.check_name] > 0:
            outcomes[rule.check_name] = _error(rule, aggregate.error_if_values)
        elif isinstance(rule, r.QuantileBetween):
            value = quantiles.get(rule.check_name)
            outcomes[rule.check_name] = ev._outcome(rule, quantile_in_range(value, rule.min, rule.max), value, ENGINE)
        else:
            value = _as_float32(measured[f"measure_{i}"], aggregate.dtype) if aggregate.measure is not None else None
            passed, observed = metric_between(value, rule.min, rule.max)
            outcomes[rule.check_name] = ev._outcome(rule, passed, observed, ENGINE)
    return outcomes


def _quantiles(rules: Sequence[r.QuantileBetween], present: Mapping[str, int], tables: SparkTables) -> dict[str, Any]:
    """Each quantile rule's `nearest` quantile, all the ranks of a column fetched from it at once."""
    ranks = {rule.check_name: nearest_rank(present[rule.check_name], rule.quantile) for rule in rules if present[rule.check_name]}
    by_column: dict[str, list[int]] = {}
    for rule in rules:
        if rule.check_name in ranks:
            by_column.setdefault(rule.column, []).append(ranks[rule.check_name])
    counts = {rule.column: present[rule.check_name] for rule in rules}
    found = {column: tables.sorted_values(column, counts[column]).at(wanted) for column, wanted in by_column.items()}
    return {rule.check_name: found[rule.column][ranks[rule.check_name]] for rule in rules if rule.check_name in ranks}


def _value_outcomes(rules: Sequence[r.Rule], tables: SparkTables) -> dict[str, ev.RuleOutcome]:
    outcomes, checks, aggregates = {}, [], []
    for rule in rules:
        planned = VALUE_RULES[type(rule)](rule, tables)
        if isinstance(planned, ev.RuleOutcome):
            outcomes[rule.check_name] = planned
        elif isinstance(planned, MapCheck):
            checks.append(planned)
        else:
            aggregates.append(planned)
    return {**outcomes, **_map_outcomes(checks), **_aggregate_outcomes(aggregates, tables)}


# ---- statistics rules ------------------------------------------------------------------------------------------

def _no_reference(rule: r.Rule, what: str) -> ev.RuleOutcome:
    return ev._outcome(rule, True, None, ENGINE, evaluated=False, note=f"no {what} yet")


def _row_count_change(rule: r.RowCountChange, tables: SparkTables, reference: AssetReference | None) -> ev.RuleOutcome:
    if reference is None or reference.rows is None:
        return _no_reference(rule, "accepted reference")
    rows = tables.row_count()
    change = st.relative_change(reference.rows, rows)
    return ev._outcome(rule, change <= rule.max_relative_change, change, ENGINE,
                       [{"reference_rows": reference.rows, "rows": rows}], ratio=True, reference_rows=reference.rows, rows=rows)


def _category_matches(value: Any, kind: str) -> bool:
    """Whether a listed category can be a value of this kind (pandas' value_counts lookup: 1 finds 1.0, True no number)."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "numeric":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return kind == "boolean" and isinstance(value, bool)


def _categories_present(rule: r.CategoriesPresent, tables: SparkTables, reference: AssetReference | None) -> ev.RuleOutcome:
    kind = column_kind(tables.dtype(rule.column))
    present = _present(tables, rule.column)
    counted = {i: value for i, value in enumerate(rule.values) if _category_matches(value, kind)}
    columns = [F.count(F.lit(1)).alias("rows")]
    columns += [_count_where(present & (F.col(rule.column) == F.lit(value))).alias(f"v{i}") for i, value in counted.items()]
    measured = tables.frame.agg(*columns).first()
    rows = max(measured["rows"], 1)
    shares = {value: float(measured[f"v{i}"] if i in counted else 0) / rows for i, value in enumerate(rule.values)}
    scarce = [{rule.column: value, "share": share} for value, share in shares.items() if share < rule.min_share]
    return ev._outcome(rule, not scarce, min(shares.values()), ENGINE, scarce, ratio=True, shares={str(k): v for k, v in shares.items()})


def _reference_column(reference: AssetReference | None, column: str) -> st.ColumnSummary | None:
    if reference is None or reference.summary is None:
        return None
    return reference.summary.columns.get(column)


def _numeric(values: DataFrame) -> DataFrame:
    """VALUE as float64 with NaN where numpy's `numeric_values` has it (nulls); the domain of PSI, KS and summaries."""
    return values.select(F.coalesce(F.col(VALUE).cast("double"), F.lit(float("nan"))).alias(VALUE))


def _bin_counts(tables: SparkTables, column: str, values: DataFrame, edges: Sequence[float]) -> tuple[np.ndarray, int, float | None]:
    """(count per right-closed bin around `edges`, values counted with nulls, mean of the present ones) of a column.

    From the column's value counts when it has them, else from one aggregation over `values` (VALUE as `_numeric` makes it).
    """
    profile, distribution = tables.profiles.get(column), tables.distribution(column)
    if profile is not None and distribution is not None:
        at_most = distribution.at_most(np.asarray(edges, dtype=np.float64))
        return np.diff(at_most, prepend=0, append=distribution.count), profile.values, profile.mean
    value = F.col(VALUE)
    finite = ~F.isnan(value)
    bin_index = sum((F.when(value > F.lit(edge), 1).otherwise(0) for edge in edges), F.lit(0))
    measured = values.agg(F.count(F.lit(1)).alias("values"), F.avg(F.when(finite, value)).alias("mean"),
                          *[_count_where(finite & (bin_index == i)).alias(f"bin{i}") for i in range(len(edges) + 1)]).first()
    return np.array([measured[f"bin{i}"] for i in range(len(edges) + 1)]), measured["values"], measured["mean"]


def _psi_outcome(rule: r.Rule, ref: st.ColumnSummary, tables: SparkTables, column: str, values: DataFrame,
                 max_psi: float) -> ev.RuleOutcome:
    """PSI over the reference's right-closed bins, from per-bin counts."""
    counts, values_seen, mean = _bin_counts(tables, column, values, ref.bin_edges)
    present = int(counts.sum())
    shares = counts / max(present, 1)
    terms = st.psi_terms(np.asarray(ref.bin_shares), shares)
    psi = float(terms.sum())
    labels = st.bin_labels(ref.bin_edges)
    worst = np.argsort(-terms)[:3]
    examples = [{"bin": labels[i], "reference_share": ref.bin_shares[i], "share": shares[i]} for i in worst]
    mean = (float("nan") if mean is None else float(mean)) if values_seen else None
    return ev._outcome(rule, psi <= max_psi, psi, ENGINE, examples, reference_mean=ref.mean, mean=mean)


def _drift_reference(rule: r.Rule, column: str, reference: AssetReference | None) -> st.ColumnSummary | ev.RuleOutcome:
    ref = _reference_column(reference, column)
    if ref is None or ref.count == 0:
        return _no_reference(rule, f"accepted reference of {column}")
    return ref


def _drift_psi(rule: r.DriftPsi, tables: SparkTables, reference: AssetReference | None) -> ev.RuleOutcome:
    ref = _drift_reference(rule, rule.column, reference)
    if isinstance(ref, ev.RuleOutcome):
        return ref
    return _psi_outcome(rule, ref, tables, rule.column, _numeric(tables.frame.select(F.col(rule.column).alias(VALUE))), rule.max_psi)


def _score_drift_psi(rule: r.ScoreDriftPsi, tables: SparkTables, reference: AssetReference | None) -> ev.RuleOutcome:
    ref = _drift_reference(rule, rule.scores_column, reference)
    if isinstance(ref, ev.RuleOutcome):
        return ref
    return _psi_outcome(rule, ref, tables, rule.scores_column, _numeric(tables.column_values(rule.scores_column)), rule.max_psi)


def ks_test(reference: st.ColumnSummary, values: DataFrame) -> st.KsResult:
    """`statistics.ks_test` of the reference sketch against a Spark column, from counts between the sketch's points.

    numpy takes the first maximum over the grid [sketch..., sorted new values...]. Between neighbouring distinct sketch
    points the reference CDF is flat and the new CDF rises, so a new value can only beat every sketch point as the
    largest new value strictly inside an interval; sketch points come first in the grid and win ties.
    """
    ref = np.asarray(reference.sketch, dtype=np.float64)
    new = values.where(F.col(VALUE).isNotNull() & ~F.isnan(VALUE))
    if ref.size == 0:
        return st.KsResult(0.0, math.nan, math.nan, math.nan)
    points = np.unique(ref)
    groups = _located(new, points).groupBy("__below", "__above").agg(F.count(F.lit(1)).alias("n"), F.max(VALUE).alias("top")).collect()
    n = sum(row["n"] for row in groups)
    if n == 0:
        return st.KsResult(0.0, math.nan, math.nan, math.nan)
    equal = np.zeros(points.size, dtype=np.int64)
    inside: dict[int, tuple[int, float]] = {}
    for row in groups:
        below, above = int(row["__below"]), int(row["__above"])
        if below + above > points.size:  # counted on both sides: the value is point below - 1
            equal[below - 1] += row["n"]
        else:
            count, largest = inside.get(below, (0, -math.inf))
            inside[below] = (count + row["n"], max(largest, row["top"]))
    strictly = np.array([inside.get(j, (0, 0.0))[0] for j in range(points.size)], dtype=np.int64)
    at_most = np.cumsum(strictly) + np.cumsum(equal)
    cdf_ref = np.searchsorted(ref, points, side="right") / ref.size
    candidates = [(abs(cdf_ref[k] - at_most[k] / n), points[k], cdf_ref[k], at_most[k] / n) for k in range(points.size)]
    for j in sorted(inside):
        count, largest = inside[j]
        flat = cdf_ref[j - 1] if j >= 1 else 0.0
        cdf = ((at_most[j - 1] if j >= 1 else 0) + count) / n
        candidates.append((abs(flat - cdf), largest, flat, cdf))
    best = candidates[int(np.argmax([c[0] for c in candidates]))]
    return st.KsResult(*(float(v) for v in best))


def ks_of_distribution(reference: st.ColumnSummary, distribution: Distribution) -> st.KsResult:
    """`statistics.ks_test` from value counts: the grid's repeated new values change neither the maximum nor where it first is."""
    ref = np.asarray(reference.sketch, dtype=np.float64)
    if distribution.count == 0 or ref.size == 0:
        return st.KsResult(0.0, math.nan, math.nan, math.nan)
    grid = np.concatenate([ref, distribution.values.astype(np.float64)])
    cdf_ref = np.searchsorted(ref, grid, side="right") / ref.size
    cdf_new = distribution.at_most(grid) / distribution.count
    worst = int(np.argmax(np.abs(cdf_ref - cdf_new)))
    return st.KsResult(float(abs(cdf_ref[worst] - cdf_new[worst])), float(grid[worst]), float(cdf_ref[worst]), float(cdf_new[worst]))


def _located(values: DataFrame, points: np.ndarray) -> DataFrame:
    """Each value with how many points are <= it (`__below`) and >= it (`__above`), by binary search (Bucketizer)."""
    from pyspark.ml.feature import Bucketizer

    def bucket(frame: DataFrame, source: str, target: str, sorted_points: np.ndarray) -> DataFrame:
        # Buckets are [s_i, s_i+1) over [-inf, points..., inf] (the last one closed): the count of points <= x,
        # except where a point is infinite and merges with the outer split.
        splits = np.unique(np.concatenate([[-np.inf], sorted_points, [np.inf]]))
        located = Bucketizer(splits=splits.tolist(), inputCol=source, outputCol=target).transform(frame)
        shift = F.lit(int(sorted_points[0] == -np.inf))
        if sorted_points[-1] == np.inf:
            shift = shift + F.when(F.col(source) == F.lit(math.inf), 1).otherwise(0)
        return located.withColumn(target, F.col(target).cast("long") + shift)

    negated = values.withColumn("__negated", -F.col(VALUE))
    return bucket(bucket(negated, VALUE, "__below", points), "__negated", "__above", np.sort(-points))


def _drift_ks(rule: r.DriftKs, tables: SparkTables, reference: AssetReference | None) -> ev.RuleOutcome:
    ref = _drift_reference(rule, rule.column, reference)
    if isinstance(ref, ev.RuleOutcome):
        return ref
    distribution = tables.distribution(rule.column)
    if distribution is not None:
        ks = ks_of_distribution(ref, distribution)
    else:
        ks = ks_test(ref, _numeric(tables.frame.select(F.col(rule.column).alias(VALUE))))
    return ev._outcome(rule, ks.statistic <= rule.max_ks, ks.statistic, ENGINE,
                       [{"at": ks.at, "reference_cdf": ks.reference_cdf, "cdf": ks.cdf}])


def _first_seen(table: DataFrame, column: str) -> DataFrame:
    """Distinct values of a column with the row position of their first appearance (pandas' `unique` order)."""
    return (table.select(F.col(column).alias("__key"), F.monotonically_increasing_id().alias(ROW))
            .groupBy("__key").agg(F.min(ROW).alias(ROW)))


def _user_coverage(rule: r.UserCoverage, tables: SparkTables, reference: AssetReference | None) -> ev.RuleOutcome:
    expected = _first_seen(tables.input(rule.users_from), rule.user_column)
    served = (tables.frame.where(F.coalesce(F.size(rule.items_column), F.lit(0)) > 0)
              .select(F.col(rule.user_column).alias("__served")).distinct().withColumn("__covered", F.lit(True)))
    flagged = expected.join(served, F.col("__key").eqNullSafe(F.col("__served")), "left")
    covered_flag = F.coalesce(F.col("__covered"), F.lit(False))
    counts = flagged.agg(F.count(F.lit(1)).alias("users"), _count_where(covered_flag).alias("covered")).first()
    users, covered = counts["users"], counts["covered"]
    coverage = covered / users if users else 1.0
    passed = coverage >= rule.min
    examples = []
    if not passed:
        missing = flagged.where(~covered_flag).orderBy(ROW).limit(MAX_EXAMPLES).collect()
        examples = [{rule.user_column: row["__key"]} for row in missing]
    return ev._outcome(rule, passed, coverage, ENGINE, examples, ratio=True, users=users, covered_users=covered)


@dataclass(frozen=True)
class Exposure:
    """How often items were recommended: the most recommended (ties by item), distinct and total counts, counts of counts."""

    top: list[tuple[Any, int]]
    items: int
    slots: int
    count_histogram: dict[int, int]


def _exposure(tables: SparkTables, rule: r.ListRule, top: int) -> tuple[Exposure, DataFrame]:
    """The lists' exposure, counted once for every exposure rule of the same lists (again only if a rule wants more leaders)."""
    key = (rule.user_column, rule.items_column)
    top = max(top, MAX_EXAMPLES)
    if key not in tables.exposures or len(tables.exposures[key][0].top) < min(top, tables.exposures[key][0].items):
        per_item = tables.items(*key).groupBy("item").agg(F.count(F.lit(1)).alias("shown"))
        leaders = per_item.orderBy(F.desc("shown"), F.asc("item")).limit(top).collect()
        histogram = dict(per_item.groupBy("shown").agg(F.count(F.lit(1)).alias("items")).collect())
        exposure = Exposure([(row["item"], row["shown"]) for row in leaders], sum(histogram.values()),
                            sum(shown * items for shown, items in histogram.items()), histogram)
        tables.exposures[key] = exposure, per_item
    return tables.exposures[key]


def _top_examples(exposure: Exposure) -> list[dict[str, Any]]:
    total = max(exposure.slots, 1)
    return [{"item": item, "share": shown / total} for item, shown in exposure.top[:MAX_EXAMPLES]]


def _top_sources_share(rule: r.TopSourcesShare, tables: SparkTables, reference: AssetReference | None) -> ev.RuleOutcome:
    exposure, _ = _exposure(tables, rule, rule.top_n)
    share = 0.0 if exposure.slots == 0 else float(sum(shown for _, shown in exposure.top[:rule.top_n]) / exposure.slots)
    return ev._outcome(rule, share <= rule.max_share, share, ENGINE, _top_examples(exposure), ratio=True, exposed_items=exposure.items)


def gini_of_histogram(histogram: Mapping[int, int]) -> float:
    """`statistics.gini` of the counts a {count: how many items} histogram describes, with exact integer rank sums."""
    n = sum(histogram.values())
    total = sum(count * items for count, items in histogram.items())
    if n == 0 or total == 0:
        return 0.0
    weighted, before = 0, 0
    for count in sorted(histogram):
        items = histogram[count]
        weighted += count * (items * before + items * (items + 1) // 2)
        before += items
    return float(2.0 * float(weighted) / (n * float(total)) - (n + 1) / n)


def _gini(rule: r.Gini, tables: SparkTables, reference: AssetReference | None) -> ev.RuleOutcome:
    exposure, per_item = _exposure(tables, rule, MAX_EXAMPLES)
    histogram = dict(exposure.count_histogram)
    catalog_items = exposure.items
    if rule.catalog_from:
        catalog = tables.input(rule.catalog_from).select(F.col(rule.catalog_column).alias("item")).distinct()
        catalog_items = catalog.count()
        unseen = catalog.join(per_item, catalog["item"].eqNullSafe(per_item["item"]), "left_anti").count()
        if unseen:
            histogram[0] = histogram.get(0, 0) + unseen
    value = gini_of_histogram(histogram)
    return ev._outcome(rule, value <= rule.max, value, ENGINE, _top_examples(exposure), exposed_items=exposure.items,
                       catalog_items=catalog_items)


def _previous_lists(previous: pd.DataFrame, user_column: str, items_column: str) -> pd.DataFrame:
    """The last published lists as one row per user with a non-empty list (`__previous`), as the numpy engine compares them."""
    lists = previous[[user_column, items_column]].rename(columns={user_column: "__user", items_column: "__previous"})
    lists = lists[lists["__previous"].map(lambda items: items is not None and len(items) > 0)]
    if lists["__user"].is_unique:
        return lists
    pairs = lists.explode("__previous")
    return pairs.groupby("__user", sort=False, dropna=False)["__previous"].agg(list).reset_index()


def _novelty(rule: r.Novelty, tables: SparkTables, reference: AssetReference | None) -> ev.RuleOutcome:
    """Each current list joined to the user's previous one: items compared and seen counted per row, in one join."""
    previous = reference.published if reference is not None else None
    if previous is None or previous.empty:
        return _no_reference(rule, "published lists")
    lists = tables.spark.createDataFrame(_previous_lists(previous, rule.user_column, rule.items_column))
    items = F.col(rule.items_column)
    compared = (tables.rows.join(lists, F.col(rule.user_column).eqNullSafe(F.col("__user")))
                .select(rule.user_column, F.coalesce(F.size(items), F.lit(0)).alias("__items"),
                        F.size(F.filter(items, lambda item: F.array_contains("__previous", item))).alias("__seen"))
                .where(F.col("__items") > 0).persist())
    try:
        counts = compared.agg(F.coalesce(F.sum("__items"), F.lit(0)).alias("items"), F.coalesce(F.sum("__seen"), F.lit(0)).alias("seen"),
                              F.countDistinct(rule.user_column).alias("users")).first()
        if counts["items"] == 0:
            return _no_reference(rule, "published lists for these users")
        share = float(1.0 - counts["seen"] / counts["items"])
        passed = share >= rule.min
        examples = []
        if not passed:
            unchanged = (compared.where(F.col(rule.user_column).isNotNull()).groupBy(rule.user_column)
                         .agg(F.min((F.col("__seen") == F.col("__items")).cast("int")).alias("all_seen")).where("all_seen = 1")
                         .orderBy(rule.user_column).limit(MAX_EXAMPLES).collect())
            examples = [{rule.user_column: row[rule.user_column]} for row in unchanged]
        return ev._outcome(rule, passed, share, ENGINE, examples, ratio=True, users_compared=counts["users"],
                           items_compared=counts["items"])
    finally:
        compared.unpersist()


def _daily_rule(rule: r.DailyRule, tables: SparkTables, reference: AssetReference | None) -> ev.RuleOutcome:
    """Daily rules read the dataset's registered daily files, never this table: per-day aggregations by Spark on a Spark
    window (the numpy engine's on a pandas one)."""
    window = tables.context_data.get(rule.dataset)
    if window is None or isinstance(window, pd.DataFrame):
        return ev._daily_rule(rule, ev.Tables(pd.DataFrame(), {} if window is None else {rule.dataset: window}), reference)
    from ok_ml_assets.monitoring import spark_daily

    if rule.dataset not in tables.windows:
        tables.windows[rule.dataset] = spark_daily.SparkWindow(window)
    measured = tables.windows[rule.dataset]
    return ev.daily_outcome(rule, measured.columns, measured.days, lambda: spark_daily.SCORES[type(rule)](rule, measured), ENGINE)


STATISTICS_RULES = {
    r.CategoriesPresent: _categories_present, r.RowCountChange: _row_count_change, r.DriftPsi: _drift_psi,
    r.DriftKs: _drift_ks, r.ScoreDriftPsi: _score_drift_psi,
    r.UserCoverage: _user_coverage, r.TopSourcesShare: _top_sources_share, r.Gini: _gini, r.Novelty: _novelty,
    **{rule_type: _daily_rule for rule_type in ev.DAILY_SCORES},
}


# ---- entry points ----------------------------------------------------------------------------------------------

def _missing_column(rule: r.Rule, tables: SparkTables) -> ev.RuleOutcome | None:
    absent = [c for c in ev._checked_columns(rule) if c not in tables.columns]
    if isinstance(rule, r.ScoreDriftPsi) and rule.scores_column not in tables.columns:
        absent.append(rule.scores_column)
    if not absent:
        return None
    return ev._outcome(rule, False, None, ENGINE, note=f"column {absent[0]!r} is missing from the asset")


def profiled_columns(rules: Sequence[r.Rule], frame: DataFrame) -> list[str]:
    """The columns whose moments or order statistics the rules and the summary read, profiled together up front."""
    return [*summarized_columns(rules, frame), *(rule.column for rule in rules if isinstance(rule, r.QuantileBetween))]


def evaluate_tables(rules: Sequence[r.Rule], tables: SparkTables, reference: AssetReference | None) -> list[ev.RuleOutcome]:
    """Every rule's outcome on the tables, in rule order."""
    tables.profile(profiled_columns(rules, tables.frame))
    outcomes: dict[str, ev.RuleOutcome] = {}
    value_rules = []
    for rule in rules:
        missing = _missing_column(rule, tables)
        if missing is not None:
            outcomes[rule.check_name] = missing
        elif type(rule) in VALUE_RULES:
            value_rules.append(rule)
        else:
            outcomes[rule.check_name] = STATISTICS_RULES[type(rule)](rule, tables, reference)
    outcomes.update(_value_outcomes(value_rules, tables))
    return [outcomes[rule.check_name] for rule in rules]


def evaluate(
    asset_name: str,
    rules: Sequence[r.Rule],
    frame: DataFrame,
    reference: AssetReference | None = None,
    context_data: Mapping[str, Any] | None = None,
) -> list[ev.RuleOutcome]:
    """`evaluate.evaluate` on a Spark DataFrame: the same outcomes, computed by Spark."""
    tables = SparkTables(frame, context_data or {})
    try:
        return evaluate_tables(rules, tables, reference)
    finally:
        tables.close()


def summarized_columns(rules: Sequence[r.Rule], frame: DataFrame) -> list[str]:
    """`evaluate.summarized_columns` by Spark type: numeric non-id columns (booleans are not numeric) and the drift rules' columns."""
    numeric = [f.name for f in frame.schema.fields if column_kind(f.dataType) == "numeric" and not f.name.endswith("_id")]
    named = [rule.column for rule in rules if isinstance(rule, (r.DriftPsi, r.DriftKs))]
    named += [rule.scores_column for rule in rules if isinstance(rule, r.ScoreDriftPsi)]
    return list(dict.fromkeys(c for c in [*numeric, *named] if c in frame.columns))


def summarize_tables(rules: Sequence[r.Rule], tables: SparkTables) -> st.BatchSummary:
    """`evaluate.summarize` by Spark: moments of every column in one aggregation, exact order statistics from value counts or a sort."""
    tables.profile(profiled_columns(rules, tables.frame))
    columns = {column: summarize_column(tables, column) for column in summarized_columns(rules, tables.frame)}
    return st.BatchSummary(rows=tables.row_count(), columns=columns)


def summarize(rules: Sequence[r.Rule], frame: DataFrame) -> st.BatchSummary:
    """This materialization's statistics, as `evaluate.summarize` computes them from pandas."""
    tables = SparkTables(frame, {})
    try:
        return summarize_tables(rules, tables)
    finally:
        tables.close()


def summarize_column(tables: SparkTables, column: str, bins: int = st.PSI_BINS, sketch_size: int = st.SKETCH_SIZE) -> st.ColumnSummary:
    """`statistics.summarize_column` of a column (list columns flattened): the same counts, bins, quantiles and sketch."""
    values = _numeric(tables.column_values(column))
    value, present = F.col(VALUE), ~F.isnan(VALUE)
    tables.profile([column])
    profile = tables.profiles.get(column)
    if profile is None:  # not a numeric column: its values are all NaN as `_numeric` sees them
        profile = ColumnProfile.of(values.agg(*_profile_measures(column, value)).first(), column)
    n, nulls = profile.present, profile.values - profile.present
    if n == 0:
        nan = float("nan")
        return st.ColumnSummary(count=0, nulls=nulls, mean=nan, std=nan, min=nan, max=nan)
    bin_ranks = _ranks_at(n, np.arange(1, bins) / bins)
    quantile_ranks = _ranks_at(n, np.array(st.QUANTILES))
    sketch_ranks = np.arange(n) if n <= sketch_size else np.linspace(0, n - 1, sketch_size).round().astype(np.int64)
    ordered = tables.sorted_values(column, n)
    found = {k: float(v) for k, v in ordered.at([0, n - 1, *bin_ranks, *quantile_ranks, *sketch_ranks]).items()}
    edges = np.unique([found[k] for k in bin_ranks])
    if isinstance(ordered, Distribution):
        at_most = ordered.at_most(edges)
    else:
        counted = values.agg(*[_count_where(present & (value <= F.lit(float(e)))).alias(f"e{i}") for i, e in enumerate(edges)]).first()
        at_most = [counted[f"e{i}"] for i in range(edges.size)]
    counts = np.diff(at_most, prepend=0, append=n)
    return st.ColumnSummary(
        count=int(n), nulls=int(nulls), mean=float(profile.mean),
        std=float(profile.std) if n > 1 and profile.std is not None else 0.0,
        min=found[0], max=found[n - 1],
        quantiles={r.quantile_label(q): found[k] for q, k in zip(st.QUANTILES, quantile_ranks)},
        bin_edges=tuple(float(e) for e in edges), bin_shares=tuple(float(c) for c in counts / n),
        sketch=tuple(found[k] for k in sketch_ranks),
    )


def _ranks_at(n: int, probabilities: np.ndarray) -> list[int]:
    """The ranks `statistics._at` reads: inverted-CDF positions."""
    return [int(k) for k in (np.ceil(probabilities * n).astype(np.int64) - 1).clip(0, n - 1)]


def monitor_report(rules: Sequence[r.Rule], frame: DataFrame, reference: AssetReference | None,
                   context_data: Mapping[str, Any] | None) -> tuple[list[ev.RuleOutcome], st.BatchSummary]:
    """The outcomes and the statistics of one materialization, sharing the sorted columns between them."""
    tables = SparkTables(frame, context_data or {})
    try:
        return evaluate_tables(rules, tables, reference), summarize_tables(rules, tables)
    finally:
        tables.close()
