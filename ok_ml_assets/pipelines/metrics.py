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


def precision_recall_at_k(items: np.ndarray, relevant: sp.csr_matrix, k: int) -> dict[str, float]:
    """Mean precision@k and recall@k over users with at least one relevant source, and how many such users."""
    n_relevant = np.diff(relevant.indptr)
    users = np.flatnonzero(n_relevant > 0)
    if users.size == 0:
        return {f"precision_at_{k}": 0.0, f"recall_at_{k}": 0.0, "evaluated_users": 0.0}
    hits = hit_matrix(items[:, :k], relevant)[users].sum(axis=1)
    return {
        f"precision_at_{k}": float(np.mean(hits / k)),
        f"recall_at_{k}": float(np.mean(hits / np.minimum(n_relevant[users], k))),
        "evaluated_users": float(users.size),
    }
