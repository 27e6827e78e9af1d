"""Time-based holdout evaluation of ALS against popularity and item-kNN baselines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ok_ml_assets.pipeline_types.recommendation_als.metrics import ranking_metrics
from ok_ml_assets.pipeline_types.recommendation_als.scoring import item_knn_top_k, popularity_top_k, top_k
from ok_ml_assets.pipeline_types.recommendation_als.training import (
    AlsParams,
    Embeddings,
    fit_als,
    interaction_matrix,
)


@dataclass(frozen=True)
class HoldoutReport:
    """Metrics of the model and of each baseline (by name) on the same holdout users."""

    model: dict[str, float]
    baselines: dict[str, dict[str, float]]

    def as_metrics(self) -> dict[str, float]:
        """Flat metric names for tracking: the model's as is, each baseline's prefixed with its name, and
        `baseline_<metric>` the best baseline's value (what a first model must beat)."""
        flat = dict(self.model)
        for name, metrics in self.baselines.items():
            flat.update({f"{name}_{metric}": value for metric, value in metrics.items()})
        for metric in next(iter(self.baselines.values()), {}):
            if metric != "evaluated_users":
                flat[f"baseline_{metric}"] = max(metrics[metric] for metrics in self.baselines.values())
        return flat


def holdout_relevance(
    holdout_pairs: pd.DataFrame, excluded: pd.DataFrame, user_ids: np.ndarray, source_ids: np.ndarray
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(exclude, relevant): the pairs never listed, and the holdout pairs that count as hits (minus those)."""
    exclude = interaction_matrix(excluded, user_ids, source_ids)
    relevant = interaction_matrix(holdout_pairs, user_ids, source_ids)
    relevant = relevant - relevant.multiply(exclude > 0)
    relevant.eliminate_zeros()
    return exclude, relevant


def evaluate_on_holdout(
    train_features: pd.DataFrame,
    holdout_pairs: pd.DataFrame,
    excluded: pd.DataFrame,
    params: AlsParams,
    k: int,
    baselines: bool = True,
    intervals: bool = True,
) -> tuple[HoldoutReport, Embeddings]:
    """Fit on the days before the holdout, then score the sources users engaged with in the holdout days.

    `excluded` (known before the holdout) is never listed and never counts as relevant, for the model and the baseline.
    """
    embeddings = fit_als(train_features, params)
    return score_on_holdout(embeddings, train_features, holdout_pairs, excluded, k, baselines, intervals), embeddings


def score_on_holdout(
    embeddings: Embeddings, train_features: pd.DataFrame, holdout_pairs: pd.DataFrame, excluded: pd.DataFrame, k: int,
    baselines: bool = True, intervals: bool = True,
) -> HoldoutReport:
    """Ranking metrics of factors fit on `train_features` (by any engine), and of the baselines, on the holdout pairs."""
    exclude, relevant = holdout_relevance(holdout_pairs, excluded, embeddings.user_ids, embeddings.source_ids)
    items, _ = top_k(embeddings.user_factors, embeddings.source_factors, exclude, k)
    train = interaction_matrix(train_features, embeddings.user_ids, embeddings.source_ids)
    return HoldoutReport(model=ranking_metrics(items, relevant, k, intervals=intervals),
                         baselines=baseline_metrics(train, exclude, relevant, k) if baselines else {})


def baseline_metrics(train: sp.csr_matrix, exclude: sp.csr_matrix, relevant: sp.csr_matrix, k: int) -> dict[str, dict[str, float]]:
    """Each baseline's ranking metrics under the same exclusions and relevance as the model."""
    found = {"popularity": ranking_metrics(popularity_top_k(train, exclude, k), relevant, k)}
    knn = item_knn_top_k(train, exclude, k)
    if knn is not None:
        found["item_knn"] = ranking_metrics(knn, relevant, k)
    return found


def rescore_lists(
    lists: pd.DataFrame, train_features: pd.DataFrame, holdout_pairs: pd.DataFrame, excluded: pd.DataFrame, k: int
) -> dict[str, float]:
    """Ranking metrics of given per-user lists (e.g. another model's) on exactly the users and pairs `evaluate_on_holdout` scores.

    Users without a list and listed sources outside the evaluated catalog count as misses.
    """
    user_ids = np.unique(train_features["user_id"].to_numpy())
    source_ids = np.unique(train_features["source_id"].to_numpy())
    _, relevant = holdout_relevance(holdout_pairs, excluded, user_ids, source_ids)
    items = np.full((len(user_ids), k), -1, dtype=np.int64)
    rows = np.searchsorted(user_ids, lists["user_id"].to_numpy())
    for row, user_id, sources in zip(rows, lists["user_id"], lists["source_ids"]):
        if row >= len(user_ids) or user_ids[row] != user_id:
            continue
        listed = np.asarray(sources, dtype=np.int64)[:k]
        cols = np.searchsorted(source_ids, listed).clip(0, max(len(source_ids) - 1, 0))
        items[row, : len(listed)] = np.where(source_ids[cols] == listed, cols, -1)
    return ranking_metrics(items, relevant, k)
