"""Exclusions as declared policy: what is never recommended in production, and what evaluation never lists or counts."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ok_ml_assets.pipeline_types.recommendation_als.config import Exclusions, Recommendations
from ok_ml_assets.pipeline_types.recommendation_als.engine import LocalEngine
from ok_ml_assets.pipeline_types.recommendation_als.evaluation import holdout_relevance
from ok_ml_assets.pipeline_types.recommendation_als.recipe import HoldoutSplit, evaluation_exclusions, excluded_pairs, recommend
from ok_ml_assets.pipeline_types.recommendation_als.training import Embeddings

HOLDOUT_FROM = dt.date(2026, 11, 20)
LOCAL = LocalEngine()


def pairs(*rows: tuple[int, int]) -> pd.DataFrame:
    return pd.DataFrame({"user_id": np.array([r[0] for r in rows], np.int64), "source_id": np.array([r[1] for r in rows], np.int64)})


def follows(*rows: tuple[int, int, str]) -> pd.DataFrame:
    return pairs(*[(u, s) for u, s, _ in rows]).assign(since=pd.to_datetime([d for _, _, d in rows]))


def one_user_everything_scored(n_sources: int = 5) -> Embeddings:
    """One user who likes sources in id order: source 0 best."""
    return Embeddings(np.array([1]), np.ones((1, 1), np.float32), np.arange(n_sources, dtype=np.int64),
                      np.arange(n_sources, 0, -1, dtype=np.float32)[:, None])


def listed(table: pd.DataFrame) -> list[int]:
    return table.loc[0, "source_ids"]


def test_production_never_lists_what_the_user_follows_or_already_engaged_with_by_default():
    table = recommend(one_user_everything_scored(), follows((1, 0, "2026-11-01")), pairs((1, 1)), LOCAL, Recommendations(top_k=3),
                      Exclusions())
    assert listed(table) == [2, 3, 4]


def test_repeat_consumption_when_the_yaml_asks_for_it():
    repeats = Exclusions(serving=["subscriptions"], evaluation=["subscriptions"])
    table = recommend(one_user_everything_scored(), follows((1, 0, "2026-11-01")), pairs((1, 1)), LOCAL, Recommendations(top_k=3), repeats)
    assert listed(table) == [1, 2, 3]
    nothing = Exclusions(serving=[], evaluation=[])
    table = recommend(one_user_everything_scored(), follows((1, 0, "2026-11-01")), pairs((1, 1)), LOCAL, Recommendations(top_k=3), nothing)
    assert listed(table) == [0, 1, 2]


def test_evaluation_excludes_only_what_was_known_before_the_holdout():
    split = HoldoutSplit(train_features=pairs((1, 1)).assign(weight=1.0, events=1, days_since_last=0),
                         holdout_pairs=pairs((1, 0), (1, 1), (1, 2), (1, 3)), holdout_from=HOLDOUT_FROM)
    subscribed = follows((1, 0, "2026-11-02"), (1, 2, "2026-11-21"))
    excluded = evaluation_exclusions(split, subscribed, Exclusions())
    assert sorted(map(tuple, excluded.to_numpy().tolist())) == [(1, 0), (1, 1)]
    _, relevant = holdout_relevance(split.holdout_pairs, excluded, np.array([1]), np.arange(5))
    # A follow made during the holdout (source 2) is what the model should have found: it stays relevant.
    assert relevant.indices.tolist() == [2, 3]


def test_the_split_keeps_its_first_holdout_day_through_storage():
    split = HoldoutSplit(pairs((1, 1)).assign(weight=1.0, events=1, days_since_last=0), pairs((1, 2)), HOLDOUT_FROM)
    assert HoldoutSplit.from_frame(split.to_frame()).holdout_from == HOLDOUT_FROM


def test_no_exclusions_is_an_empty_table_with_the_key_columns():
    empty = excluded_pairs([], follows((1, 0, "2026-11-01")), pairs((1, 1)))
    assert empty.empty and list(empty.columns) == ["user_id", "source_id"]
