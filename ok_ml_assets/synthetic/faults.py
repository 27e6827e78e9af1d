"""Fault injection for incident replay: pure functions that break synthetic data the way production breaks.

Each fault takes what it breaks (a world's daily data, a feature table or a recommendations table) and returns
a broken copy; inputs are never modified. `FAULTS` names every fault with its replay defaults.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Literal

import numpy as np
import pandas as pd

from ok_ml_assets.monitoring.statistics import flatten_lists, pairs_in
from ok_ml_assets.synthetic.world import DailyData

NEW_SOURCE_ID_BASE = 7_000_000_000


def scale_column(frame: pd.DataFrame, column: str = "weight", factor: float = 3.0) -> pd.DataFrame:
    """The table with one numeric column multiplied, as when an upstream unit or weighting changes."""
    broken = frame.copy()
    broken[column] = broken[column] * factor
    return broken


def remap_ids(frame: pd.DataFrame, column: str = "source_id", new_base: int = NEW_SOURCE_ID_BASE, seed: int = 0) -> pd.DataFrame:
    """The table with every id of `column` consistently moved into a new range, as after an id-space migration."""
    broken = frame.copy()
    ids = broken[column].to_numpy()
    distinct, codes = np.unique(ids, return_inverse=True)
    shuffled = np.random.default_rng(seed).permutation(distinct.size)
    broken[column] = (new_base + shuffled[codes]).astype(ids.dtype)
    return broken


def inject_nulls(frame: pd.DataFrame, column: str = "weight", share: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """The table with a random share of `column` set to null."""
    broken = frame.copy()
    hit = np.random.default_rng(seed).random(len(broken)) < share
    values = broken[column].astype("float64") if pd.api.types.is_integer_dtype(broken[column]) else broken[column]
    broken[column] = values.mask(hit)
    return broken


def duplicate_rows(frame: pd.DataFrame, share: float = 1.0, seed: int = 0, ts_shift: pd.Timedelta | None = None) -> pd.DataFrame:
    """The table with a random share of its rows delivered twice.

    An at-least-once redelivery stamps the copy a moment later, so the copies keep the contract's
    primary key (user, source, event, ts) unique and pass registration.
    """
    picked = np.random.default_rng(seed).random(len(frame)) < share
    copies = frame[picked].copy()
    if ts_shift is not None and "ts" in copies:
        copies["ts"] = copies["ts"] + ts_shift
    merged = pd.concat([frame, copies], ignore_index=True)
    return merged.sort_values("ts", kind="stable").reset_index(drop=True) if "ts" in merged else merged


def drop_entities(frame: pd.DataFrame, column: str = "user_id", share: float = 0.15, seed: int = 0) -> pd.DataFrame:
    """The table without every row of a random share of the distinct values of `column`, as when an export shard is lost."""
    distinct = pd.unique(frame[column])
    lost = distinct[np.random.default_rng(seed).random(distinct.size) < share]
    return frame[~frame[column].isin(lost)].reset_index(drop=True)


def relabel(frame: pd.DataFrame, column: str = "event", mapping: dict | None = None) -> pd.DataFrame:
    """The table with values of a categorical column recorded under others (a swap by default), as after a mapping bug."""
    mapping = mapping if mapping is not None else {"click": "like", "like": "click"}
    broken = frame.copy()
    broken[column] = broken[column].map(lambda value: mapping.get(value, value))
    return broken


def drop_hours(frame: pd.DataFrame, hours: Sequence[int] = (20, 21, 22, 23), ts_column: str = "ts") -> pd.DataFrame:
    """The table without the rows stamped in some hours of the day, as when the export closed before the day ended."""
    return frame[~frame[ts_column].dt.hour.isin(list(hours))].reset_index(drop=True)


def on_last_days(days: Sequence[DailyData], last: int, breaks: Callable[[pd.DataFrame], pd.DataFrame]) -> list[DailyData]:
    """The days with the interactions of the `last` ones broken by `breaks`."""
    cut = max(len(days) - last, 0)
    return [*days[:cut], *(replace(d, interactions=breaks(d.interactions)) for d in days[cut:])]


def drop_day(days: Sequence[DailyData], date: dt.date | None = None, back: int = 2) -> list[DailyData]:
    """The days without one of them: `date`, or the one `back` days before the last, as when an export never arrived."""
    if date is None:
        date = days[-1 - back].date
    return [d for d in days if d.date != date]


def collapse_to_popular(
    recommendations: pd.DataFrame,
    subscribed: pd.DataFrame | None = None,
    popular: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Every user gets the same most popular sources (still skipping their subscriptions), keeping list lengths and scores.

    Popularity is `popular` when given (best first), else how often each source is recommended in the table.
    """
    lengths, items = flatten_lists(recommendations["source_ids"])
    if popular is None:
        ids, counts = np.unique(items, return_counts=True)
        popular = ids[np.argsort(-counts, kind="stable")]
    popular = np.asarray(popular, dtype=np.int64)
    users = recommendations["user_id"].to_numpy()
    k = int(lengths.max()) if lengths.size else 0
    width = min(popular.size, k + _most_subscriptions(subscribed))
    cand_users = np.repeat(users, width)
    cand_items = np.tile(popular[:width], users.size)
    allowed = np.ones(cand_users.size, dtype=bool)
    if subscribed is not None and len(subscribed):
        allowed = ~pairs_in(cand_users, cand_items, subscribed["user_id"].to_numpy(), subscribed["source_id"].to_numpy())
    rank = np.cumsum(allowed.reshape(users.size, width), axis=1) - 1
    keep = allowed.reshape(users.size, width) & (rank < lengths[:, None])
    chosen = cand_items.reshape(users.size, width)
    broken = recommendations.copy()
    broken["source_ids"] = [row[mask].tolist() for row, mask in zip(chosen, keep)]
    return broken


def _most_subscriptions(subscribed: pd.DataFrame | None) -> int:
    if subscribed is None or subscribed.empty:
        return 0
    return int(subscribed.groupby("user_id").size().max())


FaultTarget = Literal["days", "features", "recommendations"]


@dataclass(frozen=True)
class Fault:
    """A named incident: what it breaks and the pure function that breaks it."""

    name: str
    target: FaultTarget
    description: str
    apply: Callable[..., object]


FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in [
        Fault("feature_scale_shift", "features", "event weights are three times what they were (upstream weighting changed)",
              partial(scale_column, column="weight", factor=3.0)),
        Fault("source_id_space_change", "days", "the last day's source ids moved to a new id range (id migration)",
              lambda days: on_last_days(days, 1, remap_ids)),
        Fault("nulls_in_column", "features", "1% of the feature weights are null",
              partial(inject_nulls, column="weight", share=0.01)),
        Fault("missing_day", "days", "one day of the window never arrived (two days before the last)",
              drop_day),
        Fault("duplicated_events", "days", "every event of the last three days was delivered twice",
              lambda days: on_last_days(days, 3, partial(duplicate_rows, share=1.0, ts_shift=pd.Timedelta(milliseconds=1)))),
        Fault("model_collapse_to_popular", "recommendations", "every user gets the same most popular sources",
              collapse_to_popular),
        # Faults that keep every column's marginal distribution: only the daily rules over the raw versions see them.
        Fault("users_missing_from_a_day", "days", "15% of the users are missing from the last day's export (a lost shard)",
              lambda days: on_last_days(days, 1, partial(drop_entities, column="user_id", share=0.15))),
        Fault("events_under_wrong_type", "days", "the last day recorded clicks as likes and likes as clicks",
              lambda days: on_last_days(days, 1, partial(relabel, column="event"))),
        Fault("hours_missing_from_a_day", "days", "the last day's export lacks its last four hours (20:00-24:00 UTC)",
              lambda days: on_last_days(days, 1, drop_hours)),
    ]
}
