"""Time-based holdout evaluation of ALS against a popularity baseline."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ok_ml_assets.pipelines.metrics import ranking_metrics
from ok_ml_assets.pipelines.scoring import popularity_top_k, top_k
from ok_ml_assets.pipelines.training import (
    AlsParams,
    Embeddings,
    fit_als,
    interaction_matrix,
)


@dataclass(frozen=True)
class HoldoutReport:
    """Metrics of the model and of the baseline on the same holdout users."""

    model: dict[str, float]
    baseline: dict[str, float]

    def as_metrics(self) -> dict[str, float]:
        """Flat metric names for tracking: model metrics as is, baseline ones prefixed."""
        return {**self.model, **{f"baseline_{name}": value for name, value in self.baseline.items()}}


def evaluate_on_holdout(
    train_features: pd.DataFrame,
    holdout_pairs: pd.DataFrame,
    subscribed: pd.DataFrame,
    params: AlsParams,
    k: int,
) -> tuple[HoldoutReport, Embeddings]:
    """Fit on the days before the holdout, then score the sources users engaged with in the holdout days."""
    embeddings = fit_als(train_features, params)
    exclude = interaction_matrix(subscribed, embeddings.user_ids, embeddings.source_ids)
    relevant = interaction_matrix(holdout_pairs, embeddings.user_ids, embeddings.source_ids)
    relevant = relevant - relevant.multiply(exclude > 0)
    relevant.eliminate_zeros()
    items, _ = top_k(embeddings.user_factors, embeddings.source_factors, exclude, k)
    train = interaction_matrix(train_features, embeddings.user_ids, embeddings.source_ids)
    baseline = popularity_top_k(train, exclude, k)
    report = HoldoutReport(
        model=ranking_metrics(items, relevant, k),
        baseline=ranking_metrics(baseline, relevant, k),
    )
    return report, embeddings
