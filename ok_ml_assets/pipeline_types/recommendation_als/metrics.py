"""Offline ranking metrics on a time-based holdout."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

BOOTSTRAP_SAMPLES = 500


def hit_matrix(items: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Boolean users x k: whether each recommended index is relevant for its user."""
    n_items = relevant.shape[1]
    coo = relevant.tocoo()
    relevant_keys = np.sort(coo.row.astype(np.int64) * n_items + coo.col)
    rows = np.arange(items.shape[0], dtype=np.int64)[:, None]
    keys = rows * n_items + items
    position = np.searchsorted(relevant_keys, keys).clip(0, max(len(relevant_keys) - 1, 0))
    return (items >= 0) & (len(relevant_keys) > 0) & (relevant_keys[position] == keys)


def per_user_metrics(items: np.ndarray, relevant: sp.csr_matrix, k: int) -> dict[str, np.ndarray]:
    """Each ranking metric for every user with at least one relevant source, by its standard name.

    recall@k is hits / |relevant|; capped_recall@k (hits / min(|relevant|, k), reaching 1 when the list is full of hits)
    is kept under its own name. MAP@k and NDCG@k normalise by the best list of length k.
    """
    n_relevant = np.diff(relevant.indptr)
    users = np.flatnonzero(n_relevant > 0)
    hits = hit_matrix(items[:, :k], relevant)[users].astype(np.float64)
    ideal = np.minimum(n_relevant[users], k)
    ranks = np.arange(1, k + 1)
    precision_at_rank = np.cumsum(hits, axis=1) / ranks[: hits.shape[1]]
    discounts = 1.0 / np.log2(ranks + 1)
    ideal_dcg = np.cumsum(discounts)[ideal - 1]
    found = hits.sum(axis=1)
    return {
        f"precision_at_{k}": found / k,
        f"recall_at_{k}": found / n_relevant[users],
        f"capped_recall_at_{k}": found / ideal,
        f"map_at_{k}": (precision_at_rank * hits).sum(axis=1) / ideal,
        f"ndcg_at_{k}": (hits * discounts[: hits.shape[1]]).sum(axis=1) / ideal_dcg,
    }


def bootstrap_interval(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile-bootstrap interval of the mean of per-user values (users resampled with replacement)."""
    if values.size == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    # Chunks keep the resampling matrix small for hundreds of thousands of users.
    chunk = max(1, 2_000_000 // values.size)
    for start in range(0, samples, chunk):
        stop = min(start + chunk, samples)
        means[start:stop] = values[rng.integers(0, values.size, size=(stop - start, values.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def ranking_metrics(items: np.ndarray, relevant: sp.csr_matrix, k: int, intervals: bool = False) -> dict[str, float]:
    """Mean ranking metrics over users with at least one relevant source, how many they are, the share of the catalog
    the lists cover, and with `intervals` a 95% bootstrap interval of each mean (`<metric>_ci95_low/high`)."""
    per_user = per_user_metrics(items, relevant, k)
    evaluated = len(next(iter(per_user.values())))
    metrics = {name: float(values.mean()) if evaluated else 0.0 for name, values in per_user.items()}
    if intervals:
        for name, values in per_user.items():
            metrics[f"{name}_ci95_low"], metrics[f"{name}_ci95_high"] = bootstrap_interval(values)
    listed = items[:, :k]
    metrics[f"coverage_at_{k}"] = float(np.unique(listed[listed >= 0]).size / relevant.shape[1]) if relevant.shape[1] else 0.0
    metrics["evaluated_users"] = float(evaluated)
    return metrics
