"""Blocked top-K scoring of users against sources, excluding pairs the user already has."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

# Each worker scores this many bytes of (users x sources) at a time: small enough to stay in its core's cache while the
# selection reads it back, large enough that the matrix product runs at full speed.
BLOCK_BYTES = 2 << 20
# Columns are bounded in this many interleaved groups: one cheap max over the block shrinks what the selection reads 16 times.
GROUPS = 16


def top_k(
    user_factors: np.ndarray | sp.spmatrix,
    source_factors: np.ndarray,
    exclude: sp.csr_matrix,
    k: int,
    block: int | None = None,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of each user's `k` best sources, best first; excluded pairs never appear.

    Where fewer than `k` sources are allowed, the tail holds index -1 and score -inf. Equal scores list the lower
    source index first. Blocks of users are scored in `threads` threads (default: the usable cores), each with
    single-threaded BLAS, in float32.
    """
    users = user_factors.astype(np.float32).tocsr() if sp.issparse(user_factors) else np.ascontiguousarray(user_factors, np.float32)
    n_users, n_sources = users.shape[0], source_factors.shape[0]
    groups = int(np.clip(n_sources // max(k, 1), 1, GROUPS))
    width = -(-n_sources // groups) if n_sources else 0
    sources_t = padded_transpose(source_factors, groups * width)
    exclude = sp.csr_matrix(exclude)
    items = np.full((n_users, k), -1, dtype=np.int64)
    scores = np.full((n_users, k), -np.inf, dtype=np.float32)
    if n_users == 0 or n_sources == 0:
        return items, scores
    block = block or max(8, BLOCK_BYTES // (4 * groups * width))
    buffers = threading.local()

    def score(start: int) -> None:
        stop = min(start + block, n_users)
        block_scores = block_product(users, sources_t, start, stop, buffers)
        block_scores[:, n_sources:] = -np.inf
        exclude_block(block_scores, exclude, start, stop)
        items[start:stop], scores[start:stop] = select_top_k(block_scores, k, groups)

    starts = range(0, n_users, block)
    workers = min(threads or usable_cores(), len(starts))
    with threadpool_limits(1, user_api="blas"):
        if workers == 1:
            for start in starts:
                score(start)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(score, starts))
    return items, scores


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def padded_transpose(source_factors: np.ndarray, columns: int) -> np.ndarray:
    """Sources as C-contiguous float32 columns, zero-padded to `columns` so the block splits into equal groups."""
    sources_t = np.zeros((source_factors.shape[1], columns), dtype=np.float32)
    sources_t[:, : source_factors.shape[0]] = source_factors.T
    return sources_t


def block_product(users, sources_t: np.ndarray, start: int, stop: int, buffers: threading.local) -> np.ndarray:
    """Scores of users [start, stop) against every (padded) source, in this thread's reused buffer when dense."""
    if sp.issparse(users):
        return np.ascontiguousarray(users[start:stop] @ sources_t, dtype=np.float32)
    # Reusing the buffer spares the page faults of a fresh array on every block.
    buffer = getattr(buffers, "scores", None)
    if buffer is None or buffer.shape[0] < stop - start:
        buffer = buffers.scores = np.empty((stop - start, sources_t.shape[1]), dtype=np.float32)
    return np.matmul(users[start:stop], sources_t, out=buffer[: stop - start])


def exclude_block(block_scores: np.ndarray, exclude: sp.csr_matrix, start: int, stop: int) -> None:
    """Set the excluded pairs of users [start, stop) to -inf, straight from the CSR arrays."""
    lo, hi = exclude.indptr[start], exclude.indptr[stop]
    row_offsets = np.arange(stop - start) * block_scores.shape[1]
    flat = np.repeat(row_offsets, np.diff(exclude.indptr[start : stop + 1])) + exclude.indices[lo:hi]
    block_scores.reshape(-1)[flat] = -np.inf


def select_top_k(block_scores: np.ndarray, k: int, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k best columns and scores, best first (lower column first on ties), -1 / -inf padded.

    Column j + g * width belongs to group j. The k-th largest group maximum is a score the row's k-th best reaches
    (k groups each hold one at least that high), so only the groups whose maximum reaches it are read again.
    """
    n_rows, columns = block_scores.shape
    width = columns // groups
    grouped = block_scores.reshape(n_rows, groups, width)
    group_max = grouped.max(axis=1)
    threshold = np.sort(group_max, axis=1)[:, width - k] if width >= k else np.full(n_rows, -np.inf, np.float32)
    # Excluded pairs are -inf: the least finite float keeps them (and groups holding nothing else) out.
    threshold = np.maximum(threshold, np.finfo(np.float32).min)
    flat = np.flatnonzero(group_max >= threshold[:, None])
    rows = flat // width
    group = flat - rows * width
    # Member g of every candidate group, as (groups, candidates): the comparison below then runs along long rows.
    values = grouped.transpose(1, 0, 2)[:, rows, group]
    picked = np.flatnonzero(values >= threshold[rows])
    member = picked // rows.size
    candidate = picked - member * rows.size
    return best_of_candidates(rows[candidate], group[candidate] + width * member, values.reshape(-1)[picked], block_scores, k)


def best_of_candidates(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, block_scores: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k best candidates of each row by score descending, then column ascending; -1 / -inf padded.

    One sort of 64-bit keys (row, order-preserving bits of the negated score, column) orders every row at once.
    """
    n_rows, columns = block_scores.shape
    col_bits, row_bits = max(1, int(columns - 1).bit_length()), max(1, int(n_rows - 1).bit_length())
    if col_bits + row_bits > 32:
        order = np.lexsort((cols, -values, rows))
        rows, cols = rows[order], cols[order]
    else:
        keys = np.sort((rows.astype(np.uint64) << np.uint64(32 + col_bits))
                       | (descending_bits(values).astype(np.uint64) << np.uint64(col_bits))
                       | cols.astype(np.uint64))
        rows = (keys >> np.uint64(32 + col_bits)).astype(np.intp)
        cols = (keys & np.uint64((1 << col_bits) - 1)).astype(np.intp)
    rank = np.arange(rows.size) - np.searchsorted(rows, np.arange(n_rows))[rows]
    kept = rank < k
    items = np.full((n_rows, k), -1, dtype=np.int64)
    scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
    rows, rank, cols = rows[kept], rank[kept], cols[kept]
    items[rows, rank], scores[rows, rank] = cols, block_scores[rows, cols]
    return items, scores


def descending_bits(values: np.ndarray) -> np.ndarray:
    """uint32 keys whose ascending order is the float32 values' descending order (the IEEE sign-magnitude trick)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    ascending = bits ^ np.where(bits >> np.uint32(31), np.uint32(0xFFFFFFFF), np.uint32(0x80000000))
    return ~ascending


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
