"""The recommendation training recipe shared by the asset graph and reproduction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ok_ml_assets.configs import ExperimentConfig
from ok_ml_assets.pipelines.evaluation import HoldoutReport, evaluate_on_holdout
from ok_ml_assets.pipelines.features import build_user_source_features, read_pairs
from ok_ml_assets.pipelines.scoring import recommendation_table, top_k
from ok_ml_assets.pipelines.training import (
    AlsParams,
    Embeddings,
    fit_als,
    interaction_matrix,
)


@dataclass(frozen=True)
class DailyFile:
    """One registered daily version on local disk."""

    day: dt.date
    path: Path


@dataclass(frozen=True)
class TrainingOutcome:
    """Holdout metrics of the evaluated fit and the production fit on the whole window."""

    report: HoldoutReport
    embeddings: Embeddings


def als_params(config: ExperimentConfig) -> AlsParams:
    """The ALS parameters of an experiment."""
    return AlsParams(**config.model.model_dump())


def window_features(files: list[DailyFile], config: ExperimentConfig) -> pd.DataFrame:
    """Features over daily files, as of the last one."""
    f = config.features
    return build_user_source_features(
        [d.path for d in files], files[-1].day, f.event_weights, f.half_life_days, f.min_user_interactions
    )


def train_recommender(
    interactions: list[DailyFile], features: pd.DataFrame, subscribed: pd.DataFrame, config: ExperimentConfig
) -> TrainingOutcome:
    """Evaluate on the last holdout days with a fit on the days before, then fit on the whole window."""
    holdout = config.evaluation.holdout_days
    if len(interactions) <= holdout:
        raise ValueError(
            f"{config.datasets.interactions.dataset_name}: {len(interactions)} registered days in the window, "
            f"but evaluation needs more than holdout_days={holdout}"
        )
    train_features = window_features(interactions[:-holdout], config)
    holdout_pairs = read_pairs([d.path for d in interactions[-holdout:]])
    report, _ = evaluate_on_holdout(train_features, holdout_pairs, subscribed, als_params(config), config.evaluation.k)
    return TrainingOutcome(report=report, embeddings=fit_als(features, als_params(config)))


def recommend(embeddings: Embeddings, subscribed: pd.DataFrame, k: int) -> pd.DataFrame:
    """Each user's top-K sources they are not subscribed to."""
    exclude = interaction_matrix(subscribed, embeddings.user_ids, embeddings.source_ids)
    items, scores = top_k(embeddings.user_factors, embeddings.source_factors, exclude, k)
    return recommendation_table(embeddings.user_ids, embeddings.source_ids, items, scores)


def list_overlap(left: pd.DataFrame, right: pd.DataFrame) -> float:
    """Mean share of common sources between two users' lists, over users in both tables."""
    joined = left.merge(right, on="user_id", suffixes=("_l", "_r"))
    if joined.empty:
        return 0.0
    shares = [
        len(set(a) & set(b)) / max(len(a), len(b), 1) for a, b in zip(joined["source_ids_l"], joined["source_ids_r"])
    ]
    return float(np.mean(shares))
