"""Offline ranking metrics on a time-based holdout."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def hit_matrix(items: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Boolean users x k: whether each recommended index is relevant for its user."""
    n_items = relevant.shape[1]
    coo = relevant.tocoo()
    relevant_keys = np.sort(coo.row.astype(np.int64) * n_items + coo.col)
    rows = np.arange(items.shape[0], dtype=np.int64)[:, None]
    keys = rows * n_items + items
    position = np.searchsorted(relevant_keys, keys).clip(0, max(len(relevant_keys) - 1, 0))
    return (items >= 0) & (len(relevant_keys) > 0) & (relevant_keys[position] == keys)


def ranking_metrics(items: np.ndarray, relevant: sp.csr_matrix, k: int) -> dict[str, float]:
    """Mean precision@k, recall@k, MAP@k and NDCG@k over users with at least one relevant source."""
    n_relevant = np.diff(relevant.indptr)
    users = np.flatnonzero(n_relevant > 0)
    names = [f"precision_at_{k}", f"recall_at_{k}", f"map_at_{k}", f"ndcg_at_{k}"]
    if users.size == 0:
        return {**dict.fromkeys(names, 0.0), "evaluated_users": 0.0}
    hits = hit_matrix(items[:, :k], relevant)[users].astype(np.float64)
    ideal = np.minimum(n_relevant[users], k)
    ranks = np.arange(1, hits.shape[1] + 1)
    precision_at_rank = np.cumsum(hits, axis=1) / ranks
    discounts = 1.0 / np.log2(ranks + 1)
    ideal_dcg = np.cumsum(discounts)[ideal - 1]
    values = [
        hits.sum(axis=1) / k,
        hits.sum(axis=1) / ideal,
        (precision_at_rank * hits).sum(axis=1) / ideal,
        (hits * discounts).sum(axis=1) / ideal_dcg,
    ]
    return {**{name: float(v.mean()) for name, v in zip(names, values)}, "evaluated_users": float(users.size)}
