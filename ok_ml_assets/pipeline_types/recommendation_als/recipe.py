"""The recipe of `recommendation_als`: its stages in order, each a plain function of typed inputs.

`STAGES` is the one place the step order exists (see `ok_ml_assets.recipes`). Each stage takes only its own
parameter section(s) of the config.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ok_ml_assets import recipes
from ok_ml_assets.configs import Promotion
from ok_ml_assets.engines import is_spark_frame
from ok_ml_assets.pipeline_types.recommendation_als.config import (
    Evaluation,
    Exclusions,
    Features,
    Model,
    RecommendationAlsConfig,
    Recommendations,
    Search,
)
from ok_ml_assets.pipeline_types.recommendation_als.engine import LocalEngine, RecommendationEngine, engine_for
from ok_ml_assets.pipeline_types.recommendation_als.evaluation import HoldoutReport
from ok_ml_assets.pipeline_types.recommendation_als.search import ChosenModel
from ok_ml_assets.pipeline_types.recommendation_als.search import search as run_search
from ok_ml_assets.pipeline_types.recommendation_als.training import AlsParams, Embeddings
from ok_ml_assets.recipes import Stage, stage_index

# A table in the engine's form: pandas (local) or a Spark DataFrame (spark).
Table = Any

TRAIN, HOLDOUT = "train", "holdout"


@dataclass(frozen=True)
class DailyFile:
    """One registered daily version on local disk."""

    day: dt.date
    path: Path


@dataclass(frozen=True)
class HoldoutSplit:
    """Features of the days before the holdout, the (user, source) pairs engaged with during it, and its first day.

    Its tables are in the engine's form: pandas (local) or Spark DataFrames (spark).
    """

    train_features: Table
    holdout_pairs: Table
    holdout_from: dt.date

    def to_frame(self) -> Table:
        """One table, a `split` column telling the parts apart and `holdout_from` on every row (how the asset stores it)."""
        if is_spark_frame(self.train_features):
            from pyspark.sql import functions as F

            train = self.train_features.withColumn("split", F.lit(TRAIN))
            holdout = self.holdout_pairs.withColumn("split", F.lit(HOLDOUT))
            day = F.lit(dt.datetime.combine(self.holdout_from, dt.time())).cast("timestamp_ntz")
            return train.unionByName(holdout, allowMissingColumns=True).withColumn("holdout_from", day)
        parts = [self.train_features.assign(split=TRAIN), self.holdout_pairs.assign(split=HOLDOUT)]
        return pd.concat(parts, ignore_index=True).assign(holdout_from=pd.Timestamp(self.holdout_from))

    @classmethod
    def from_frame(cls, frame: Table) -> HoldoutSplit:
        """The split back from its stored table."""
        if is_spark_frame(frame):
            from pyspark.sql import functions as F

            first = frame.select("holdout_from").first()
            train = frame.where(F.col("split") == TRAIN).drop("split", "holdout_from")
            train = train.withColumn("events", F.col("events").cast("bigint")).withColumn(
                "days_since_last", F.col("days_since_last").cast("bigint"))
            holdout = frame.where(F.col("split") == HOLDOUT).select("user_id", "source_id")
            return cls(train, holdout, pd.Timestamp(first[0]).date())
        train = frame[frame["split"] == TRAIN].drop(columns=["split", "holdout_from"]).reset_index(drop=True)
        holdout = frame.loc[frame["split"] == HOLDOUT, ["user_id", "source_id"]].reset_index(drop=True)
        holdout_from = pd.Timestamp(frame["holdout_from"].iloc[0]).date()
        return cls(train.astype({"events": "int64", "days_since_last": "int64"}), holdout, holdout_from)


def als_params(model: Model) -> AlsParams:
    """The ALS parameters of a model section."""
    return AlsParams(**model.model_dump())


def build_features(interactions: list[DailyFile], engine: RecommendationEngine, features: Features) -> Table:
    """user_source_features: per (user, source) decayed weight, events and recency over the window, as of its last day."""
    return engine.features([d.path for d in interactions], interactions[-1].day, features)


def collect_subscriptions(subscriptions: list[DailyFile], engine: RecommendationEngine) -> Table:
    """subscribed_pairs: every registered (user, source) follow, with the day it started (`since`)."""
    return engine.follows([d.path for d in subscriptions])


def excluded_pairs(kinds: list[str], subscribed: pd.DataFrame, interacted: pd.DataFrame, before: dt.date | None = None) -> pd.DataFrame:
    """The (user, source) pairs never recommended: follows (only those started before `before`, when given) and the
    pairs engaged with, as `kinds` names them (pandas; an engine's `excluded_pairs` for its own tables)."""
    return LocalEngine().excluded_pairs(kinds, subscribed, interacted, before)


def holdout_tags(tags: list[str], holdout_days: int) -> list[str]:
    """The daily tags inside the holdout: the last `holdout_days` calendar days up to the newest tag."""
    if not tags:
        return []
    start = dt.date.fromisoformat(max(tags)) - dt.timedelta(days=holdout_days - 1)
    return [t for t in tags if dt.date.fromisoformat(t) >= start]


def split_holdout(interactions: list[DailyFile], engine: RecommendationEngine, features: Features, evaluation: Evaluation) -> HoldoutSplit:
    """holdout_split: features of the days before the holdout (the last `holdout_days` calendar days), and the pairs
    engaged with in the holdout."""
    held = set(holdout_tags([d.day.isoformat() for d in interactions], evaluation.holdout_days))
    train = [d for d in interactions if d.day.isoformat() not in held]
    test = [d for d in interactions if d.day.isoformat() in held]
    if not train:
        days = f"{interactions[0].day}..{interactions[-1].day}" if interactions else "none"
        raise ValueError(f"the interactions window (registered days: {days}) has no day before the holdout of the last "
                         f"holdout_days={evaluation.holdout_days} calendar days; evaluation needs days to train on")
    return HoldoutSplit(build_features(train, engine, features), engine.pairs([d.path for d in test]), test[0].day)


def evaluation_exclusions(
    split: HoldoutSplit, subscribed: Table, exclusions: Exclusions, engine: RecommendationEngine | None = None
) -> Table:
    """What evaluation never lists nor counts as relevant: known before the holdout started, never from inside it."""
    engine = engine or LocalEngine()
    return engine.excluded_pairs(exclusions.evaluation, subscribed, split.train_features, before=split.holdout_from)


def split_validation(
    interactions: list[DailyFile], engine: RecommendationEngine, features: Features, evaluation: Evaluation, search: Search | None
) -> HoldoutSplit | None:
    """validation_split: the holdout protocol moved back to end where the holdout begins, to choose parameters on (None
    without a search)."""
    if search is None:
        return None
    held = set(holdout_tags([d.day.isoformat() for d in interactions], evaluation.holdout_days))
    return split_holdout([d for d in interactions if d.day.isoformat() not in held], engine, features, evaluation)


def choose_model(
    validation: HoldoutSplit | None, subscribed: Table, engine: RecommendationEngine, model: Model, evaluation: Evaluation,
    exclusions: Exclusions, search: Search | None, promotion: Promotion,
) -> ChosenModel:
    """chosen_model: the YAML's model, or the best of a search's trials on the validation split by the primary metric."""
    if search is None or validation is None:
        return ChosenModel(model)
    excluded = evaluation_exclusions(validation, subscribed, exclusions, engine)

    def score(candidate: Model) -> dict[str, float]:
        report = engine.evaluate(validation.train_features, validation.holdout_pairs, excluded, als_params(candidate),
                                 evaluation.k, baselines=False, intervals=False)
        return report.model

    return run_search(model, search, promotion.primary_metric, score)


def evaluate_model(
    split: HoldoutSplit, subscribed: Table, chosen: ChosenModel, engine: RecommendationEngine, evaluation: Evaluation,
    exclusions: Exclusions,
) -> HoldoutReport:
    """holdout_report: the chosen model fit on the train part against the popularity and item-kNN baselines on the holdout."""
    excluded = evaluation_exclusions(split, subscribed, exclusions, engine)
    return engine.evaluate(split.train_features, split.holdout_pairs, excluded, als_params(chosen.model), evaluation.k)


def fit_model(features: Table, chosen: ChosenModel, engine: RecommendationEngine) -> Embeddings:
    """embeddings: the chosen model fit on the whole window, the production model."""
    return engine.fit(features, als_params(chosen.model))


def recommend(
    embeddings: Embeddings, subscribed: Table, features: Table, engine: RecommendationEngine, recommendations: Recommendations,
    exclusions: Exclusions,
) -> Table:
    """recommendations: each user's top-K sources, never one the serving exclusions name (by default: followed or engaged with)."""
    excluded = engine.excluded_pairs(exclusions.serving, subscribed, features)
    return engine.recommend(embeddings, excluded, recommendations.top_k)


# Recipe inputs: `interactions` and `subscriptions`, lists of DailyFile (the registered versions, oldest first).
# `engine` is the experiment's engine (engine_for); run_recipe supplies it when the caller does not.
STAGES: tuple[Stage, ...] = (
    Stage("user_source_features", build_features, ("interactions", "engine"), ("features",)),
    Stage("subscribed_pairs", collect_subscriptions, ("subscriptions", "engine")),
    Stage("holdout_split", split_holdout, ("interactions", "engine"), ("features", "evaluation")),
    Stage("validation_split", split_validation, ("interactions", "engine"), ("features", "evaluation", "search")),
    Stage("chosen_model", choose_model, ("validation_split", "subscribed_pairs", "engine"),
          ("model", "evaluation", "exclusions", "search", "promotion")),
    Stage("holdout_report", evaluate_model, ("holdout_split", "subscribed_pairs", "chosen_model", "engine"), ("evaluation", "exclusions")),
    Stage("embeddings", fit_model, ("user_source_features", "chosen_model", "engine")),
    Stage("recommendations", recommend, ("embeddings", "subscribed_pairs", "user_source_features", "engine"),
          ("recommendations", "exclusions")),
)
STAGE = stage_index(STAGES)


def run_recipe(
    config: RecommendationAlsConfig, values: Mapping[str, object], targets: Iterable[str] = ("recommendations",)
) -> dict[str, object]:
    """Compute `targets` (the recommendations by default) from the given values with this type's stages, on the
    experiment's engine unless `values` names one."""
    values = dict(values)
    if "engine" not in values:
        values["engine"] = engine_for(config)
    return recipes.run_recipe(STAGES, config, values, targets)


def list_overlap(left: pd.DataFrame, right: pd.DataFrame) -> float:
    """Mean share of common sources between two users' lists, over users in both tables."""
    joined = left.merge(right, on="user_id", suffixes=("_l", "_r"))
    if joined.empty:
        return 0.0
    shares = [
        len(set(a) & set(b)) / max(len(a), len(b), 1) for a, b in zip(joined["source_ids_l"], joined["source_ids_r"])
    ]
    return float(np.mean(shares))
