"""Windowed user-source features from daily interaction files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import pandas as pd

FEATURE_COLUMNS = ("weight", "events", "days_since_last")


def _files_sql(paths: Sequence[Path]) -> str:
    quoted = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    return f"read_parquet([{quoted}])"


def build_user_source_features(
    interaction_files: Sequence[Path],
    as_of: dt.date,
    event_weights: Mapping[str, float],
    half_life_days: float,
    min_user_interactions: int = 1,
) -> pd.DataFrame:
    """One row per (user, source): time-decayed event weight, event count and days since the last event.

    `as_of` is the last day of the window; an event `d` days before it counts `0.5 ** (d / half_life_days)`.
    """
    if not interaction_files:
        raise ValueError("no interaction files in the feature window")
    cases = " ".join(f"WHEN '{event}' THEN {float(w)}" for event, w in event_weights.items())
    query = f"""
        WITH events AS (
            SELECT user_id, source_id,
                   CASE event {cases} ELSE 0.0 END AS w,
                   date_diff('day', CAST(ts AS DATE), DATE '{as_of.isoformat()}') AS age
            FROM {_files_sql(interaction_files)}
        ), pairs AS (
            SELECT user_id, source_id,
                   sum(w * pow(0.5, age / {float(half_life_days)})) AS weight,
                   count(*) AS events,
                   min(age) AS days_since_last
            FROM events GROUP BY user_id, source_id
        ){_active_users(min_user_interactions)}
        SELECT p.user_id, p.source_id, CAST(p.weight AS DOUBLE) AS weight,
               CAST(p.events AS BIGINT) AS events, CAST(p.days_since_last AS BIGINT) AS days_since_last
        FROM pairs p{" JOIN active USING (user_id)" if min_user_interactions > 1 else ""}
        WHERE p.weight > 0
        ORDER BY p.user_id, p.source_id
    """
    with duckdb.connect() as con:
        # Through Arrow, releasing each column once converted: DuckDB's own .df() holds both copies of the table at its peak.
        return con.sql(query).to_arrow_table().to_pandas(self_destruct=True, split_blocks=True)


def _active_users(min_user_interactions: int) -> str:
    """The `active` users CTE when a minimum applies; every user of a pair has at least one event, so 1 needs no join."""
    if min_user_interactions <= 1:
        return ""
    return f""", active AS (
            SELECT user_id FROM pairs GROUP BY user_id HAVING sum(events) >= {int(min_user_interactions)}
        )"""


def read_pairs(files: Sequence[Path]) -> pd.DataFrame:
    """Distinct (user_id, source_id) pairs across parquet files, e.g. the subscriptions of a window."""
    if not files:
        return pd.DataFrame({"user_id": pd.Series(dtype="int64"), "source_id": pd.Series(dtype="int64")})
    with duckdb.connect() as con:
        return con.execute(
            f"SELECT DISTINCT user_id, source_id FROM {_files_sql(files)} ORDER BY user_id, source_id"
        ).df()


def read_follows(files: Sequence[Path]) -> pd.DataFrame:
    """Distinct (user_id, source_id) follows with `since`, the UTC day of the first one."""
    if not files:
        return pd.DataFrame({"user_id": pd.Series(dtype="int64"), "source_id": pd.Series(dtype="int64"),
                             "since": pd.Series(dtype="datetime64[ns]")})
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(
            f"SELECT user_id, source_id, CAST(min(CAST(ts AS DATE)) AS TIMESTAMP) AS since FROM {_files_sql(files)} "
            "GROUP BY user_id, source_id ORDER BY user_id, source_id"
        ).df()


def read_events(files: Sequence[Path]) -> pd.DataFrame:
    """The user, source and event columns of interaction files (empty when there are none)."""
    if not files:
        return pd.DataFrame({"user_id": pd.Series(dtype="int64"), "source_id": pd.Series(dtype="int64"), "event": pd.Series(dtype=str)})
    with duckdb.connect() as con:
        return con.execute(f"SELECT user_id, source_id, event FROM {_files_sql(files)}").df()
