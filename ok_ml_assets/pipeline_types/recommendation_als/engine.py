"""The heavy stages of `recommendation_als` behind one interface, with the local implementation (DuckDB, implicit, numpy).

The recipe calls an engine for every stage that reads the raw window or scales with it; `spark.SparkEngine` implements the
same methods on Spark. Tables are pandas here and Spark DataFrames there; the small glue stays in the recipe.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import pandas as pd

from ok_ml_assets.pipeline_types.recommendation_als.config import Features, RecommendationAlsConfig
from ok_ml_assets.pipeline_types.recommendation_als.evaluation import HoldoutReport, evaluate_on_holdout
from ok_ml_assets.pipeline_types.recommendation_als.features import build_user_source_features, read_follows, read_pairs
from ok_ml_assets.pipeline_types.recommendation_als.scoring import recommendation_table, top_k
from ok_ml_assets.pipeline_types.recommendation_als.training import AlsParams, Embeddings, fit_als, interaction_matrix

PAIR = ["user_id", "source_id"]


class RecommendationEngine(Protocol):
    """What the recipe asks of an engine; `Table` is pandas (local) or a Spark DataFrame (spark)."""

    name: str

    def features(self, files: Sequence[Path], as_of: dt.date, features: Features): ...
    def follows(self, files: Sequence[Path]): ...
    def pairs(self, files: Sequence[Path]): ...
    def excluded_pairs(self, kinds: Sequence[str], subscribed, interacted, before: dt.date | None = None): ...
    def fit(self, features, params: AlsParams) -> Embeddings: ...
    def evaluate(self, train_features, holdout_pairs, excluded, params: AlsParams, k: int, baselines: bool = True,
                 intervals: bool = True) -> HoldoutReport: ...
    def recommend(self, embeddings: Embeddings, excluded, k: int): ...
    def to_pandas(self, table) -> pd.DataFrame: ...


class LocalEngine:
    """This machine: DuckDB over the parquet files, implicit's ALS, blocked numpy top-K."""

    name = "local"

    def features(self, files: Sequence[Path], as_of: dt.date, features: Features) -> pd.DataFrame:
        """Per (user, source) decayed weight, events and recency over the files, as of `as_of`."""
        return build_user_source_features(files, as_of, features.event_weights, features.half_life_days, features.min_user_interactions)

    def follows(self, files: Sequence[Path]) -> pd.DataFrame:
        """Distinct follows with the day each started."""
        return read_follows(files)

    def pairs(self, files: Sequence[Path]) -> pd.DataFrame:
        """Distinct (user, source) pairs of the files."""
        return read_pairs(files)

    def excluded_pairs(self, kinds: Sequence[str], subscribed: pd.DataFrame, interacted: pd.DataFrame,
                       before: dt.date | None = None) -> pd.DataFrame:
        """The pairs never recommended: follows (started before `before`, when given) and engaged pairs, as `kinds` names them."""
        parts = [pd.DataFrame({"user_id": pd.Series(dtype="int64"), "source_id": pd.Series(dtype="int64")})]
        if "subscriptions" in kinds:
            follows = subscribed if before is None or "since" not in subscribed else subscribed[subscribed["since"] < pd.Timestamp(before)]
            parts.append(follows[PAIR])
        if "interacted" in kinds:
            parts.append(interacted[PAIR])
        return pd.concat(parts, ignore_index=True).drop_duplicates().reset_index(drop=True)

    def fit(self, features: pd.DataFrame, params: AlsParams) -> Embeddings:
        """implicit's ALS on the feature pairs."""
        return fit_als(features, params)

    def evaluate(self, train_features: pd.DataFrame, holdout_pairs: pd.DataFrame, excluded: pd.DataFrame, params: AlsParams,
                 k: int, baselines: bool = True, intervals: bool = True) -> HoldoutReport:
        """ALS fit on the train part against the baselines on the holdout."""
        report, _ = evaluate_on_holdout(train_features, holdout_pairs, excluded, params, k, baselines=baselines, intervals=intervals)
        return report

    def recommend(self, embeddings: Embeddings, excluded: pd.DataFrame, k: int) -> pd.DataFrame:
        """Each user's top-K sources, never an excluded one."""
        exclude = interaction_matrix(excluded, embeddings.user_ids, embeddings.source_ids)
        items, scores = top_k(embeddings.user_factors, embeddings.source_factors, exclude, k)
        return recommendation_table(embeddings.user_ids, embeddings.source_ids, items, scores)

    def to_pandas(self, table: pd.DataFrame) -> pd.DataFrame:
        """Already pandas."""
        return table


def engine_for(config: RecommendationAlsConfig, spark=None) -> RecommendationEngine:
    """The experiment's engine; `spark` is the run's Spark resource (the process's session when not given)."""
    if config.engine == "local":
        return LocalEngine()
    from ok_ml_assets.pipeline_types.recommendation_als.spark import SparkEngine

    return SparkEngine.from_resource(spark, config.spark)
