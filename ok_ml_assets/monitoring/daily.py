"""Per-day measures of a dataset's registered daily versions, each day against the other days of its window.

Faults that keep every column's marginal distribution (a share of users missing from a day, events recorded under
another type, hours that never arrived) leave the windowed aggregates nearly unchanged, but they move a day's
volume, its distinct keys, its category mix or its hours against the days around it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ok_ml_assets.monitoring.statistics import psi_terms

DAY = "registered_day"
NULL_CATEGORY = "(null)"
HOURS_PER_DAY = 24


def window_frame(days: Iterable[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """The daily versions (tag, table) as one table whose `registered_day` column holds each row's tag."""
    days = list(days)
    if not days:
        return pd.DataFrame({DAY: pd.Series(dtype=object)})
    frame = pd.concat([table for _, table in days], ignore_index=True)
    # A categorical day (of the days that hold rows): every rule groups by day, and codes group for free.
    categories = sorted({tag for tag, table in days if len(table)})
    position = {tag: index for index, tag in enumerate(categories)}
    codes = np.repeat([position.get(tag, -1) for tag, _ in days], [len(table) for _, table in days])
    frame[DAY] = pd.Categorical.from_codes(codes, categories=categories)
    return frame


def days_of(window: pd.DataFrame) -> list[str]:
    """The window's days, oldest first."""
    days = window[DAY]
    return sorted(days.cat.remove_unused_categories().cat.categories if isinstance(days.dtype, pd.CategoricalDtype) else pd.unique(days))


def rows_per_day(window: pd.DataFrame) -> pd.Series:
    """Rows of each day."""
    return window.groupby(DAY, observed=True).size().astype(np.float64)


def distinct_per_day(window: pd.DataFrame, column: str) -> pd.Series:
    """Distinct non-null values of `column` on each day."""
    return window.groupby(DAY, observed=True)[column].nunique().astype(np.float64)


def rows_per_entity(window: pd.DataFrame, column: str) -> pd.Series:
    """Rows per distinct value of `column` on each day (events per user, points per series)."""
    return rows_per_day(window) / distinct_per_day(window, column).replace(0, np.nan)


def others_median(values: pd.Series) -> pd.Series:
    """For each day, the median of the other days' values: one bad day cannot move its own baseline."""
    array = values.to_numpy(dtype=np.float64)
    medians = [float(np.median(np.delete(array, i))) if array.size > 1 else np.nan for i in range(array.size)]
    return pd.Series(medians, index=values.index)


def change_from_others(values: pd.Series) -> pd.DataFrame:
    """Each day's value, its baseline (the other days' median) and the relative change between them."""
    baseline = others_median(values)
    change = (values - baseline).abs() / baseline.where(baseline > 0)
    return pd.DataFrame({"score": change, "value": values, "baseline": baseline})


def category_psi(window: pd.DataFrame, column: str) -> pd.DataFrame:
    """PSI of each day's category shares of `column` against the pooled shares of the other days."""
    return category_psi_of_counts(pd.crosstab(window[DAY], window[column].astype(object).fillna(NULL_CATEGORY)))


def category_psi_of_counts(counts: pd.DataFrame) -> pd.DataFrame:
    """category_psi from the rows of each (day, category): days as the index, categories as the columns."""
    matrix = counts.to_numpy(dtype=np.float64)
    others = matrix.sum(axis=0, keepdims=True) - matrix
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    other_shares = others / np.maximum(others.sum(axis=1, keepdims=True), 1)
    scores = [float(psi_terms(other_shares[i], shares[i]).sum()) for i in range(len(matrix))]
    return pd.DataFrame({"score": scores, "value": scores, "baseline": np.nan}, index=counts.index)


def key_overlap(window: pd.DataFrame, column: str, min_presence: float = 0.5) -> pd.DataFrame:
    """Share of the regular keys (present on at least `min_presence` of the other days) that a day holds.

    A day that lost a share of its users, or whose ids moved to another id space, misses that share of them.
    """
    day_codes, day_index = pd.factorize(window[DAY], sort=True)
    keys = window[column].to_numpy()
    known = ~pd.isna(keys)
    key_codes, key_index = pd.factorize(keys[known])
    present = np.zeros((len(key_index), len(day_index)), dtype=bool)
    present[key_codes, day_codes[known]] = True
    total = present.sum(axis=1)
    need = regular_presence(min_presence, len(day_index))
    scores, regulars = [], []
    for j in range(len(day_index)):
        regular = (total - present[:, j]) >= need
        regulars.append(int(regular.sum()))
        scores.append(float(present[regular, j].mean()) if regular.any() else np.nan)
    return pd.DataFrame({"score": scores, "value": scores, "baseline": np.nan, "regular_keys": regulars}, index=day_index)


def regular_presence(min_presence: float, days: int) -> float:
    """How many of the other days a key must be present on to be a regular one."""
    return max(min_presence * (days - 1), 1.0)


def hours_covered(window: pd.DataFrame, ts_column: str, min_rows: int = 1) -> pd.DataFrame:
    """Share of each day's 24 hours holding at least `min_rows` rows stamped on that day."""
    stamps = pd.to_datetime(window[ts_column])
    on_day = _stamped_on_day(stamps, window[DAY])
    hours = pd.DataFrame({DAY: window[DAY].to_numpy()[on_day], "hour": stamps.dt.hour.to_numpy()[on_day]})
    per_hour = hours.groupby([DAY, "hour"]).size()
    return hours_covered_of_counts(per_hour, min_rows, days_of(window))


def hours_covered_of_counts(per_hour: pd.Series, min_rows: int, days: list[str]) -> pd.DataFrame:
    """hours_covered from the rows of each (day, hour) stamped on their day, a series indexed by both."""
    covered = (per_hour >= min_rows).groupby(level=0).sum().reindex(days, fill_value=0)
    scores = covered.astype(np.float64) / HOURS_PER_DAY
    return pd.DataFrame({"score": scores, "value": covered.astype(np.float64), "baseline": float(HOURS_PER_DAY)})


def _stamped_on_day(stamps: pd.Series, days: pd.Series) -> np.ndarray:
    """Which rows' timestamps fall on the (local) date their day tag names; a tag that is no ISO date holds none."""
    # Formatting millions of timestamps as text costs seconds; the window has a handful of tags to parse instead.
    codes, tags = pd.factorize(days)
    starts = tag_dates(tags)
    local = stamps.dt.tz_localize(None) if stamps.dt.tz is not None else stamps
    dates = local.dt.normalize().to_numpy(dtype="datetime64[ns]")
    day_starts = np.append(starts.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT"))[codes]
    return dates == day_starts


def tag_dates(tags) -> pd.Series:
    """The date each day tag names (NaT for a tag that is no ISO date), in the tags' order."""
    text = pd.Series([str(tag) for tag in tags], dtype=object)
    starts = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    return starts.where(starts.dt.strftime("%Y-%m-%d") == text)
