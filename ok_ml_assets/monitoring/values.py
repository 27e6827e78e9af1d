"""Value rules (null, range, set, mean, std, quantiles, uniqueness) in one vectorised pass over the columns they name.

Each rule becomes a `ValuePlan`: a GX built-in expectation's name and arguments over one table. This module computes
what GX computes for it on a pandas batch, with the same pandas calls and the same success formulas (nulls skipped,
`mostly` over the non-null rows, quantiles `nearest`, bounds within GX's tolerance), so both engines give the same
verdict, observed value and offending rows; the parity tests hold them to it. A column's null mask, its non-null
values and its quantiles are computed once for all the rules that name it.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MAX_EXAMPLES = 5
QUANTILES = "ExpectColumnQuantileValuesToBeBetween"
MIXED_TYPES = "Column values, min_value, and max_value must either be None or of the same type."


@dataclass(frozen=True)
class ValuePlan:
    """One rule as a built-in GX expectation over one of the tables, and the columns that identify an offender."""

    rule: Any
    table: str
    frame: pd.DataFrame
    expectation: str
    kwargs: dict[str, Any]
    example_columns: list[str]


@dataclass(frozen=True)
class ValueResult:
    """What an engine measured for one plan: an aggregate's observed value, or a map rule's unexpected rows."""

    success: bool
    observed: Any = None
    aggregate: bool = False
    unexpected_count: int = 0
    element_count: int = 0
    unexpected_percent: float | None = None
    positions: tuple[int, ...] = ()
    error: str | None = None


class Columns:
    """One table's columns as the rules read them: null masks, non-null values and quantiles, each computed once."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self._nulls: dict[str, np.ndarray] = {}
        self._present: dict[str, pd.Series] = {}
        self._quantiles: dict[tuple[str, float], Any] = {}

    def nulls(self, column: str) -> np.ndarray:
        """Which rows of the column are null (None, NaN, NaT), as GX's `isnull`."""
        if column not in self._nulls:
            self._nulls[column] = self.frame[column].isna().to_numpy()
        return self._nulls[column]

    def present(self, column: str) -> pd.Series:
        """The column's non-null values, in row order: the domain of GX's column metrics."""
        if column not in self._present:
            nulls = self.nulls(column)
            self._present[column] = self.frame[column][~nulls] if nulls.any() else self.frame[column]
        return self._present[column]

    def present_positions(self, column: str) -> np.ndarray:
        """Row positions of the column's non-null values."""
        return np.flatnonzero(~self.nulls(column))

    def quantiles(self, column: str, wanted: Sequence[float]) -> list[Any]:
        """The column's `nearest` quantiles at `wanted`, computing the missing ones in one call."""
        missing = [q for q in dict.fromkeys(wanted) if (column, q) not in self._quantiles]
        if missing:
            values = self.present(column).quantile(missing, interpolation="nearest").tolist()
            self._quantiles.update({(column, q): v for q, v in zip(missing, values)})
        return [self._quantiles[(column, q)] for q in wanted]


def _map_result(unexpected: np.ndarray, positions: np.ndarray, rows: int, considered: int | None, mostly: float) -> ValueResult:
    """A map rule's result: GX's vacuous truth on no rows, `mostly` over the rows considered, its unexpected percent."""
    count = int(unexpected.sum())
    denominator = rows if considered is None else considered
    success = True if rows == 0 or denominator == 0 else (denominator - count) / denominator >= mostly
    percent = count / denominator * 100 if rows > 0 and denominator > 0 else None
    return ValueResult(success=bool(success), unexpected_count=count, element_count=rows, unexpected_percent=percent,
                       positions=tuple(int(p) for p in positions[unexpected][:MAX_EXAMPLES]))


def _not_null(columns: Columns, kwargs: dict[str, Any]) -> ValueResult:
    nulls = columns.nulls(kwargs["column"])
    return _map_result(nulls, np.arange(nulls.size), nulls.size, None, kwargs.get("mostly", 1.0))


def _column_map(columns: Columns, kwargs: dict[str, Any], expected: Callable[[pd.Series], Any]) -> ValueResult:
    """A map rule over the non-null values: nulls are neither expected nor unexpected."""
    column = kwargs["column"]
    present = columns.present(column)
    unexpected = ~np.asarray(expected(present), dtype=bool)
    return _map_result(unexpected, columns.present_positions(column), len(columns.frame), len(present), kwargs.get("mostly", 1.0))


def _is_datetime(dtype) -> bool:
    return isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_ns_dtype(dtype)


def within(values: pd.Series, low: Any, high: Any) -> np.ndarray:
    """Which values lie in [low, high] (either end may be None), compared as GX compares them."""
    # GX compares int64, float64 and datetimes as arrays, anything else value by value in Python (a string is an error).
    if not (values.dtype in [int, float] or _is_datetime(values.dtype)):
        objects = values.to_numpy(dtype=object)
        if any(isinstance(v, str) for v in objects):
            raise TypeError(MIXED_TYPES)
        values = objects
    mask = np.ones(len(values), dtype=bool)
    if low is not None:
        mask &= np.asarray(low <= values, dtype=bool)
    if high is not None:
        mask &= np.asarray(values <= high, dtype=bool)
    return mask


def _in_range(columns: Columns, kwargs: dict[str, Any]) -> ValueResult:
    return _column_map(columns, kwargs, lambda present: within(present, kwargs["min_value"], kwargs["max_value"]))


def _in_set(columns: Columns, kwargs: dict[str, Any]) -> ValueResult:
    return _column_map(columns, kwargs, lambda present: present.isin(kwargs["value_set"]).to_numpy())


def _compound_unique(columns: Columns, kwargs: dict[str, Any]) -> ValueResult:
    """Rows whose combination of the columns occurs more than once; rows null in every column are skipped."""
    table = columns.frame[kwargs["column_list"]]
    considered = ~table.isna().all(axis=1).to_numpy()
    kept = table[considered] if not considered.all() else table
    unexpected = kept.duplicated(keep=False).to_numpy()
    return _map_result(unexpected, np.flatnonzero(considered), len(table), len(kept), kwargs.get("mostly", 1.0))


def metric_between(value: Any, low: Any, high: Any) -> tuple[bool, Any]:
    """(passed, observed) of an aggregate against closed bounds: a null aggregate fails and is observed as None."""
    if value is None or (not isinstance(value, datetime.datetime) and pd.isnull(value)):
        return False, None
    above = value >= low if low is not None else True
    below = value <= high if high is not None else True
    return bool(above and below), value


def _aggregate(measure: Callable[[pd.Series], Any]) -> Callable[[Columns, dict[str, Any]], ValueResult]:
    def evaluate(columns: Columns, kwargs: dict[str, Any]) -> ValueResult:
        value = measure(columns.present(kwargs["column"]))
        passed, observed = metric_between(value, kwargs["min_value"], kwargs["max_value"])
        return ValueResult(success=passed, observed=observed, aggregate=True)
    return evaluate


def _close(a: Any, b: Any) -> bool:
    """GX's `isclose` at the tolerance its quantile expectation uses (datetimes compare as POSIX seconds)."""
    if isinstance(a, datetime.datetime) and isinstance(b, datetime.datetime):
        a, b = a.timestamp(), b.timestamp()
    return bool(np.isclose(np.float64(a), np.float64(b), rtol=1e-4, atol=1e-8))


def quantile_in_range(value: Any, low: Any, high: Any) -> bool:
    """A quantile passes inside its range or within a relative 1e-4 of either end; an absent one fails."""
    low = -np.inf if low is None else low
    high = np.inf if high is None else high
    if value is None:
        return False
    return _close(value, low) or _close(value, high) or bool(low <= value <= high)


def _quantile(columns: Columns, kwargs: dict[str, Any]) -> ValueResult:
    ranges = kwargs["quantile_ranges"]
    (value,) = columns.quantiles(kwargs["column"], ranges["quantiles"][:1])
    low, high = ranges["value_ranges"][0]
    return ValueResult(success=quantile_in_range(value, low, high), observed=value, aggregate=True)


NATIVE: dict[str, Callable[[Columns, dict[str, Any]], ValueResult]] = {
    "ExpectColumnValuesToNotBeNull": _not_null,
    "ExpectColumnValuesToBeBetween": _in_range,
    "ExpectColumnValuesToBeInSet": _in_set,
    "ExpectColumnMeanToBeBetween": _aggregate(lambda present: present.mean()),
    "ExpectColumnStdevToBeBetween": _aggregate(lambda present: present.std()),
    QUANTILES: _quantile,
    "ExpectCompoundColumnsToBeUnique": _compound_unique,
}


def _prefetch_quantiles(plans: Sequence[ValuePlan], tables: dict[int, Columns]) -> None:
    """Every quantile the plans ask of a column, computed in one call per column."""
    wanted: dict[tuple[int, str], list[float]] = {}
    for plan in plans:
        if plan.expectation == QUANTILES:
            wanted.setdefault((id(plan.frame), plan.kwargs["column"]), []).extend(plan.kwargs["quantile_ranges"]["quantiles"])
    for (table, column), quantiles in wanted.items():
        try:
            tables[table].quantiles(column, quantiles)
        except (TypeError, ValueError):
            pass  # each plan then meets the error itself and reports it


def evaluate_plans(plans: Sequence[ValuePlan]) -> dict[str, ValueResult]:
    """Every plan's result, by check name; an error (a string column against numeric bounds, say) fails its rule."""
    tables = {id(plan.frame): Columns(plan.frame) for plan in plans}
    _prefetch_quantiles(plans, tables)
    results: dict[str, ValueResult] = {}
    for plan in plans:
        try:
            results[plan.rule.check_name] = NATIVE[plan.expectation](tables[id(plan.frame)], plan.kwargs)
        except (TypeError, ValueError) as error:
            results[plan.rule.check_name] = ValueResult(success=False, error=str(error) or type(error).__name__)
    return results
