"""Blocked top-K scoring of users against sources, excluding pairs the user already has."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

BLOCK_USERS = 4096


def top_k(
    user_factors: np.ndarray, source_factors: np.ndarray, exclude: sp.csr_matrix, k: int, block: int = BLOCK_USERS
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of each user's `k` best sources, best first; excluded pairs never appear.

    Where fewer than `k` sources are allowed, the tail holds index -1 and score -inf.
    """
    n_users, n_sources = user_factors.shape[0], source_factors.shape[0]
    k_eff = min(k, n_sources)
    items = np.full((n_users, k), -1, dtype=np.int64)
    scores = np.full((n_users, k), -np.inf, dtype=np.float32)
    source_t = np.ascontiguousarray(source_factors.T)
    for start in range(0, n_users, block):
        stop = min(start + block, n_users)
        block_scores = user_factors[start:stop] @ source_t
        excluded = exclude[start:stop].tocoo()
        block_scores[excluded.row, excluded.col] = -np.inf
        # Partitioning for the k largest in place of the k smallest of a negated copy halves the time.
        best = np.argpartition(block_scores, n_sources - k_eff, axis=1)[:, n_sources - k_eff:]
        best_scores = np.take_along_axis(block_scores, best, axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")
        best, best_scores = np.take_along_axis(best, order, axis=1), np.take_along_axis(best_scores, order, axis=1)
        best[~np.isfinite(best_scores)] = -1
        items[start:stop, :k_eff], scores[start:stop, :k_eff] = best, best_scores
    return items, scores


def recommendation_table(
    user_ids: np.ndarray, source_ids: np.ndarray, items: np.ndarray, scores: np.ndarray
) -> pd.DataFrame:
    """One row per user with the list of recommended source ids and their scores, padding dropped."""
    valid = items >= 0
    lengths = valid.sum(axis=1)
    flat_items = source_ids[items[valid]]
    flat_scores = scores[valid].astype(np.float64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return pd.DataFrame(
        {
            "user_id": user_ids,
            "source_ids": [flat_items[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])],
            "scores": [flat_scores[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])],
        }
    )


def popularity_top_k(train: sp.csr_matrix, exclude: sp.csr_matrix, k: int) -> np.ndarray:
    """The baseline: every user gets the most popular sources they do not have, as indices (-1 pads)."""
    popularity = np.asarray((train > 0).sum(axis=0)).ravel()
    n_users, n_sources = exclude.shape
    # Everyone shares one ranking, so only the k + (most exclusions of any user) best sources can appear.
    depth = min(n_sources, k + int(np.diff(exclude.indptr).max(initial=0)))
    candidates = np.argsort(-popularity, kind="stable")[:depth]
    allowed = ~np.asarray(exclude[:, candidates].todense(), dtype=bool)
    rank = np.where(allowed, np.cumsum(allowed, axis=1), 0)
    items = np.full((n_users, k), -1, dtype=np.int64)
    rows, cols = np.nonzero((rank >= 1) & (rank <= k))
    items[rows, rank[rows, cols] - 1] = candidates[cols]
    return items


# A dense source x source similarity above this many sources would not fit in memory; the baseline is then skipped.
MAX_KNN_SOURCES = 20_000


def item_similarity(train: sp.csr_matrix) -> np.ndarray:
    """Cosine similarity of sources over the users who engaged with them (binary), its diagonal zeroed."""
    binary = (train > 0).astype(np.float32)
    norms = np.sqrt(np.asarray(binary.sum(axis=0)).ravel())
    norms[norms == 0] = 1.0
    similarity = (binary.T @ binary).toarray() / norms[:, None] / norms[None, :]
    np.fill_diagonal(similarity, 0.0)
    return similarity.astype(np.float32)


def item_knn_top_k(train: sp.csr_matrix, exclude: sp.csr_matrix, k: int) -> np.ndarray | None:
    """The item-kNN baseline: a source scores the sum of its similarities to the user's sources (None past MAX_KNN_SOURCES)."""
    if train.shape[1] > MAX_KNN_SOURCES:
        return None
    # The user's history times the (symmetric) similarity is a product of factors: the blocked top-K applies as is.
    items, _ = top_k((train > 0).astype(np.float32).tocsr(), item_similarity(train), exclude, k)
    return items
