"""The recipe of `recommendation_als`: its stages in order, each a plain function of typed inputs.

`STAGES` is the one place the step order exists (see `ok_ml_assets.recipes`). Each stage takes only its own
parameter section(s) of the config.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ok_ml_assets import recipes
from ok_ml_assets.configs import Promotion
from ok_ml_assets.pipeline_types.recommendation_als.config import (
    Evaluation,
    Exclusions,
    Features,
    Model,
    RecommendationAlsConfig,
    Recommendations,
    Search,
)
from ok_ml_assets.pipeline_types.recommendation_als.evaluation import HoldoutReport, evaluate_on_holdout
from ok_ml_assets.pipeline_types.recommendation_als.features import build_user_source_features, read_follows, read_pairs
from ok_ml_assets.pipeline_types.recommendation_als.scoring import recommendation_table, top_k
from ok_ml_assets.pipeline_types.recommendation_als.search import ChosenModel
from ok_ml_assets.pipeline_types.recommendation_als.search import search as run_search
from ok_ml_assets.pipeline_types.recommendation_als.training import (
    AlsParams,
    Embeddings,
    fit_als,
    interaction_matrix,
)
from ok_ml_assets.recipes import Stage, stage_index

TRAIN, HOLDOUT = "train", "holdout"


@dataclass(frozen=True)
class DailyFile:
    """One registered daily version on local disk."""

    day: dt.date
    path: Path


@dataclass(frozen=True)
class HoldoutSplit:
    """Features of the days before the holdout, the (user, source) pairs engaged with during it, and its first day."""

    train_features: pd.DataFrame
    holdout_pairs: pd.DataFrame
    holdout_from: dt.date

    def to_frame(self) -> pd.DataFrame:
        """One table, a `split` column telling the parts apart and `holdout_from` on every row (how the asset stores it)."""
        parts = [self.train_features.assign(split=TRAIN), self.holdout_pairs.assign(split=HOLDOUT)]
        return pd.concat(parts, ignore_index=True).assign(holdout_from=pd.Timestamp(self.holdout_from))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> HoldoutSplit:
        """The split back from its stored table."""
        train = frame[frame["split"] == TRAIN].drop(columns=["split", "holdout_from"]).reset_index(drop=True)
        holdout = frame.loc[frame["split"] == HOLDOUT, ["user_id", "source_id"]].reset_index(drop=True)
        holdout_from = pd.Timestamp(frame["holdout_from"].iloc[0]).date()
        return cls(train.astype({"events": "int64", "days_since_last": "int64"}), holdout, holdout_from)


def als_params(model: Model) -> AlsParams:
    """The ALS parameters of a model section."""
    return AlsParams(**model.model_dump())


def build_features(interactions: list[DailyFile], features: Features) -> pd.DataFrame:
    """user_source_features: per (user, source) decayed weight, events and recency over the window, as of its last day."""
    return build_user_source_features(
        [d.path for d in interactions], interactions[-1].day, features.event_weights, features.half_life_days,
        features.min_user_interactions,
    )


def collect_subscriptions(subscriptions: list[DailyFile]) -> pd.DataFrame:
    """subscribed_pairs: every registered (user, source) follow, with the day it started (`since`)."""
    return read_follows([d.path for d in subscriptions])


def excluded_pairs(kinds: list[str], subscribed: pd.DataFrame, interacted: pd.DataFrame, before: dt.date | None = None) -> pd.DataFrame:
    """The (user, source) pairs never recommended: follows (only those started before `before`, when given) and the
    pairs engaged with, as `kinds` names them."""
    parts = [pd.DataFrame({"user_id": pd.Series(dtype="int64"), "source_id": pd.Series(dtype="int64")})]
    if "subscriptions" in kinds:
        follows = subscribed if before is None or "since" not in subscribed else subscribed[subscribed["since"] < pd.Timestamp(before)]
        parts.append(follows[["user_id", "source_id"]])
    if "interacted" in kinds:
        parts.append(interacted[["user_id", "source_id"]])
    return pd.concat(parts, ignore_index=True).drop_duplicates().reset_index(drop=True)


def holdout_tags(tags: list[str], holdout_days: int) -> list[str]:
    """The daily tags inside the holdout: the last `holdout_days` calendar days up to the newest tag."""
    if not tags:
        return []
    start = dt.date.fromisoformat(max(tags)) - dt.timedelta(days=holdout_days - 1)
    return [t for t in tags if dt.date.fromisoformat(t) >= start]


def split_holdout(interactions: list[DailyFile], features: Features, evaluation: Evaluation) -> HoldoutSplit:
    """holdout_split: features of the days before the holdout (the last `holdout_days` calendar days), and the pairs
    engaged with in the holdout."""
    held = set(holdout_tags([d.day.isoformat() for d in interactions], evaluation.holdout_days))
    train = [d for d in interactions if d.day.isoformat() not in held]
    test = [d for d in interactions if d.day.isoformat() in held]
    if not train:
        days = f"{interactions[0].day}..{interactions[-1].day}" if interactions else "none"
        raise ValueError(f"the interactions window (registered days: {days}) has no day before the holdout of the last "
                         f"holdout_days={evaluation.holdout_days} calendar days; evaluation needs days to train on")
    return HoldoutSplit(build_features(train, features), read_pairs([d.path for d in test]), test[0].day)


def evaluation_exclusions(split: HoldoutSplit, subscribed: pd.DataFrame, exclusions: Exclusions) -> pd.DataFrame:
    """What evaluation never lists nor counts as relevant: known before the holdout started, never from inside it."""
    return excluded_pairs(exclusions.evaluation, subscribed, split.train_features, before=split.holdout_from)


def split_validation(
    interactions: list[DailyFile], features: Features, evaluation: Evaluation, search: Search | None
) -> HoldoutSplit | None:
    """validation_split: the holdout protocol moved back to end where the holdout begins, to choose parameters on (None
    without a search)."""
    if search is None:
        return None
    held = set(holdout_tags([d.day.isoformat() for d in interactions], evaluation.holdout_days))
    return split_holdout([d for d in interactions if d.day.isoformat() not in held], features, evaluation)


def choose_model(
    validation: HoldoutSplit | None, subscribed: pd.DataFrame, model: Model, evaluation: Evaluation, exclusions: Exclusions,
    search: Search | None, promotion: Promotion,
) -> ChosenModel:
    """chosen_model: the YAML's model, or the best of a search's trials on the validation split by the primary metric."""
    if search is None or validation is None:
        return ChosenModel(model)
    excluded = evaluation_exclusions(validation, subscribed, exclusions)

    def score(candidate: Model) -> dict[str, float]:
        report, _ = evaluate_on_holdout(validation.train_features, validation.holdout_pairs, excluded, als_params(candidate),
                                        evaluation.k, baselines=False, intervals=False)
        return report.model

    return run_search(model, search, promotion.primary_metric, score)


def evaluate_model(
    split: HoldoutSplit, subscribed: pd.DataFrame, chosen: ChosenModel, evaluation: Evaluation, exclusions: Exclusions
) -> HoldoutReport:
    """holdout_report: the chosen model fit on the train part against the popularity and item-kNN baselines on the holdout."""
    excluded = evaluation_exclusions(split, subscribed, exclusions)
    report, _ = evaluate_on_holdout(split.train_features, split.holdout_pairs, excluded, als_params(chosen.model), evaluation.k)
    return report


def fit_model(features: pd.DataFrame, chosen: ChosenModel) -> Embeddings:
    """embeddings: the chosen model fit on the whole window, the production model."""
    return fit_als(features, als_params(chosen.model))


def recommend(
    embeddings: Embeddings, subscribed: pd.DataFrame, features: pd.DataFrame, recommendations: Recommendations, exclusions: Exclusions
) -> pd.DataFrame:
    """recommendations: each user's top-K sources, never one the serving exclusions name (by default: followed or engaged with)."""
    excluded = excluded_pairs(exclusions.serving, subscribed, features)
    exclude = interaction_matrix(excluded, embeddings.user_ids, embeddings.source_ids)
    items, scores = top_k(embeddings.user_factors, embeddings.source_factors, exclude, recommendations.top_k)
    return recommendation_table(embeddings.user_ids, embeddings.source_ids, items, scores)


# Recipe inputs: `interactions` and `subscriptions`, lists of DailyFile (the registered versions, oldest first).
STAGES: tuple[Stage, ...] = (
    Stage("user_source_features", build_features, ("interactions",), ("features",)),
    Stage("subscribed_pairs", collect_subscriptions, ("subscriptions",)),
    Stage("holdout_split", split_holdout, ("interactions",), ("features", "evaluation")),
    Stage("validation_split", split_validation, ("interactions",), ("features", "evaluation", "search")),
    Stage("chosen_model", choose_model, ("validation_split", "subscribed_pairs"),
          ("model", "evaluation", "exclusions", "search", "promotion")),
    Stage("holdout_report", evaluate_model, ("holdout_split", "subscribed_pairs", "chosen_model"), ("evaluation", "exclusions")),
    Stage("embeddings", fit_model, ("user_source_features", "chosen_model")),
    Stage("recommendations", recommend, ("embeddings", "subscribed_pairs", "user_source_features"), ("recommendations", "exclusions")),
)
STAGE = stage_index(STAGES)


def run_recipe(
    config: RecommendationAlsConfig, values: Mapping[str, object], targets: Iterable[str] = ("recommendations",)
) -> dict[str, object]:
    """Compute `targets` (the recommendations by default) from the given values with this type's stages."""
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
