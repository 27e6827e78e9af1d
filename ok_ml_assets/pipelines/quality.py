"""Measurements behind the blocking checks: how many rows break a property, with examples."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Measurement:
    """How many rows break a property, out of how many, with a few offending examples."""

    failing: int
    total: int
    examples: list

    @property
    def passed(self) -> bool:
        """True when no row breaks the property."""
        return self.failing == 0


def _flat(recommendations: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """User id per item and the flattened list column."""
    lengths = recommendations[column].map(len).to_numpy()
    users = np.repeat(recommendations["user_id"].to_numpy(), lengths)
    values = np.concatenate([np.asarray(v) for v in recommendations[column]]) if len(recommendations) else np.array([])
    return users, values


def null_cells(table: pd.DataFrame) -> Measurement:
    """Null cells per column across the table."""
    nulls = table.isna().sum()
    bad = nulls[nulls > 0]
    return Measurement(int(bad.sum()), int(table.size), [f"{col}: {int(n)}" for col, n in bad.items()][:MAX_EXAMPLES])


def out_of_range(table: pd.DataFrame, ranges: Mapping[str, tuple[float, float]]) -> Measurement:
    """Rows with a value outside its column's closed range; an unknown column is itself a failure."""
    failing, examples = 0, []
    for column, (low, high) in ranges.items():
        if column not in table:
            failing += len(table) or 1
            examples.append(f"{column}: column missing")
            continue
        values = table[column]
        bad = values[(values < low) | (values > high)]
        failing += len(bad)
        examples += [f"{column}={v}" for v in bad.head(MAX_EXAMPLES).tolist()]
    return Measurement(failing, len(table), examples[:MAX_EXAMPLES])


def short_lists(recommendations: pd.DataFrame, min_items: int) -> Measurement:
    """Users whose list has fewer than `min_items` sources."""
    lengths = recommendations["source_ids"].map(len)
    short = recommendations.loc[lengths < min_items, "user_id"]
    return Measurement(len(short), len(recommendations), short.head(MAX_EXAMPLES).tolist())


def subscribed_recommended(recommendations: pd.DataFrame, subscribed: pd.DataFrame) -> Measurement:
    """Recommended (user, source) pairs the user is already subscribed to."""
    users, sources = _flat(recommendations, "source_ids")
    pairs = pd.DataFrame({"user_id": users, "source_id": sources.astype(np.int64)})
    hits = pairs.merge(subscribed[["user_id", "source_id"]].drop_duplicates(), on=["user_id", "source_id"])
    return Measurement(len(hits), len(pairs), hits.head(MAX_EXAMPLES).values.tolist())


def duplicated_items(recommendations: pd.DataFrame) -> Measurement:
    """Lists that hold the same source more than once."""
    dup = recommendations.loc[recommendations["source_ids"].map(lambda s: len(set(s)) != len(s)), "user_id"]
    return Measurement(len(dup), len(recommendations), dup.head(MAX_EXAMPLES).tolist())


def non_finite_scores(recommendations: pd.DataFrame) -> Measurement:
    """Scores that are NaN or infinite."""
    users, scores = _flat(recommendations, "scores")
    bad = ~np.isfinite(scores.astype(np.float64))
    return Measurement(int(bad.sum()), len(scores), users[bad][:MAX_EXAMPLES].tolist())
