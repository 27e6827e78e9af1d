"""Blocked top-K scoring of users against sources, excluding pairs the user already has."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

# Each worker scores this many bytes of (users x sources) at a time: small enough to stay in cache while the selection
# reads it back, large enough that the matrix product runs at full speed.
BLOCK_BYTES = 4 << 20
# Sources are scored in tiles of at most this many: BLAS packs the source factors on every call, which a wider tile
# (the large preset's 100,000 sources) pays again for every few users.
TILE_SOURCES = 8192
# A tile's columns are bounded in this many interleaved groups: one max over the tile shrinks what is read again 16 times.
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
    source index first. Blocks of users are scored in float32 in `threads` threads (default: the usable cores),
    each with single-threaded BLAS.
    """
    users = user_factors.astype(np.float32).tocsr() if sp.issparse(user_factors) else np.ascontiguousarray(user_factors, np.float32)
    n_users, n_sources = users.shape[0], source_factors.shape[0]
    items = np.full((n_users, k), -1, dtype=np.int64)
    scores = np.full((n_users, k), -np.inf, dtype=np.float32)
    if n_users == 0 or n_sources == 0:
        return items, scores
    tiles = SourceTiles(source_factors, k)
    exclude = sp.csr_matrix(exclude)
    block = block or max(8, BLOCK_BYTES // (4 * tiles.columns))
    buffers = threading.local()

    def score(start: int) -> None:
        stop = min(start + block, n_users)
        items[start:stop], scores[start:stop] = block_top_k(users[start:stop], tiles, exclude[start:stop], k, buffers)

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


class SourceTiles:
    """Source factors as C-contiguous float32 tiles of equal width (zero-padded), each a whole number of groups."""

    def __init__(self, source_factors: np.ndarray, k: int):
        self.n_sources = source_factors.shape[0]
        count = -(-self.n_sources // TILE_SOURCES)
        per_tile = -(-self.n_sources // count)
        self.groups = int(np.clip(per_tile // max(k, 1), 1, GROUPS))
        self.columns = self.groups * -(-per_tile // self.groups)
        padded = np.zeros((source_factors.shape[1], count * self.columns), dtype=np.float32)
        padded[:, : self.n_sources] = source_factors.T
        self.factors = [np.ascontiguousarray(padded[:, t * self.columns : (t + 1) * self.columns]) for t in range(count)]


def block_top_k(users, tiles: SourceTiles, exclude: sp.csr_matrix, k: int, buffers: threading.local) -> tuple[np.ndarray, np.ndarray]:
    """The top-K of one block of users, tile by tile; each tile is read again only above the best K found so far."""
    n_rows = users.shape[0]
    rows = cols = np.empty(0, dtype=np.intp)
    values = np.empty(0, dtype=np.float32)
    floor = np.full(n_rows, np.finfo(np.float32).min, dtype=np.float32)
    tile_of_exclusion = exclude.indices // tiles.columns
    for t, factors in enumerate(tiles.factors):
        offset = t * tiles.columns
        tile_scores = tile_product(users, factors, buffers)
        tile_scores[:, max(0, tiles.n_sources - offset):] = -np.inf
        exclude_pairs(tile_scores, exclude, tile_of_exclusion == t, offset)
        new_rows, new_cols, new_values = tile_candidates(tile_scores, k, tiles.groups, floor)
        rows, cols, values = best_of_candidates(
            np.concatenate([rows, new_rows]), np.concatenate([cols, new_cols + offset]), np.concatenate([values, new_values]),
            n_rows, k, len(tiles.factors) * tiles.columns)
        floor = np.maximum(floor, kth_value(rows, values, n_rows, k))
    return padded_top_k(rows, cols, values, n_rows, k)


def tile_product(users, factors: np.ndarray, buffers: threading.local) -> np.ndarray:
    """Scores of the block's users against one tile, in this thread's reused buffer when the users are dense."""
    if sp.issparse(users):
        return np.ascontiguousarray(users @ factors, dtype=np.float32)
    # Reusing the buffer spares the page faults of a fresh array on every tile.
    buffer = getattr(buffers, "scores", None)
    if buffer is None or buffer.shape[0] < users.shape[0] or buffer.shape[1] != factors.shape[1]:
        buffer = buffers.scores = np.empty((users.shape[0], factors.shape[1]), dtype=np.float32)
    return np.matmul(users, factors, out=buffer[: users.shape[0]])


def exclude_pairs(tile_scores: np.ndarray, exclude: sp.csr_matrix, in_tile: np.ndarray, offset: int) -> None:
    """Set the block's excluded pairs that fall in this tile to -inf, straight from the CSR arrays."""
    rows = np.repeat(np.arange(exclude.shape[0]) * tile_scores.shape[1], np.diff(exclude.indptr))
    flat = (rows + exclude.indices - offset)[in_tile]
    tile_scores.reshape(-1)[flat] = -np.inf


def tile_candidates(tile_scores: np.ndarray, k: int, groups: int, floor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and scores of a tile that may be among their row's k best: every score at or above the row's bound.

    Column j + g * width belongs to group j. The k-th largest group maximum is reached by the tile's k-th best score
    (k groups each hold one at least that high), and `floor` by the row's k-th best so far; only the groups whose
    maximum reaches the higher of the two are read again. The floor is finite, so excluded (-inf) pairs never pass.
    """
    n_rows, columns = tile_scores.shape
    width = columns // groups
    grouped = tile_scores.reshape(n_rows, groups, width)
    group_max = grouped.max(axis=1)
    bound = floor if width < k else np.maximum(np.sort(group_max, axis=1)[:, width - k], floor)
    flat = np.flatnonzero(group_max >= bound[:, None])
    rows = flat // width
    group = flat - rows * width
    # Member g of every candidate group, as (groups, candidates): the comparison below then runs along long rows.
    values = grouped.transpose(1, 0, 2)[:, rows, group]
    picked = np.flatnonzero(values >= bound[rows])
    member = picked // rows.size
    candidate = picked - member * rows.size
    return rows[candidate], group[candidate] + width * member, values.reshape(-1)[picked]


def best_of_candidates(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int, k: int, n_cols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k best candidates of each row, rows ascending, then by score descending and column ascending.

    One sort of 64-bit keys (row, order-preserving bits of the negated score, column) orders every row at once.
    """
    col_bits, row_bits = max(1, int(n_cols - 1).bit_length()), max(1, int(n_rows - 1).bit_length())
    if col_bits + row_bits > 32:
        order = np.lexsort((cols, -values, rows))
        rows, cols, values = rows[order], cols[order], values[order]
    else:
        keys = np.sort((rows.astype(np.uint64) << np.uint64(32 + col_bits))
                       | (descending_bits(values).astype(np.uint64) << np.uint64(col_bits))
                       | cols.astype(np.uint64))
        rows = (keys >> np.uint64(32 + col_bits)).astype(np.intp)
        cols = (keys & np.uint64((1 << col_bits) - 1)).astype(np.intp)
        values = from_descending_bits((keys >> np.uint64(col_bits)).astype(np.uint32))
    kept = rank_in_row(rows, n_rows) < k
    return rows[kept], cols[kept], values[kept]


def rank_in_row(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Each entry's position within its row, for entries sorted by row."""
    return np.arange(rows.size) - np.searchsorted(rows, np.arange(n_rows))[rows]


def kth_value(rows: np.ndarray, values: np.ndarray, n_rows: int, k: int) -> np.ndarray:
    """Each row's k-th best score among its (sorted, at most k) entries; the least finite float where it has fewer."""
    kth = np.full(n_rows, np.finfo(np.float32).min, dtype=np.float32)
    last = rank_in_row(rows, n_rows) == k - 1
    kth[rows[last]] = values[last]
    return kth


def padded_top_k(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The sorted entries as (n_rows, k) indices and scores, -1 / -inf where a row has fewer than k."""
    items = np.full((n_rows, k), -1, dtype=np.int64)
    scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
    rank = rank_in_row(rows, n_rows)
    items[rows, rank], scores[rows, rank] = cols, values
    return items, scores


def descending_bits(values: np.ndarray) -> np.ndarray:
    """uint32 keys whose ascending order is the float32 values' descending order (the IEEE sign-magnitude trick)."""
    # Adding zero turns -0.0 into 0.0, which compare equal but differ in bits.
    bits = np.ascontiguousarray(values + np.float32(0), dtype=np.float32).view(np.uint32)
    return ~(bits ^ np.where(bits >> np.uint32(31), np.uint32(0xFFFFFFFF), np.uint32(0x80000000)))


def from_descending_bits(keys: np.ndarray) -> np.ndarray:
    """The float32 values `descending_bits` made these keys from."""
    ascending = ~keys
    return (ascending ^ np.where(ascending >> np.uint32(31), np.uint32(0x80000000), np.uint32(0xFFFFFFFF))).view(np.float32)


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


def popularity_top_k(train: sp.csr_matrix, exclude: sp.csr_matrix, k: int, block: int = 65_536) -> np.ndarray:
    """The baseline: every user gets the most popular sources they do not have, as indices (-1 pads)."""
    popularity = np.asarray((train > 0).sum(axis=0)).ravel()
    ranking = np.argsort(-popularity, kind="stable")
    items = np.full((exclude.shape[0], k), -1, dtype=np.int64)
    for start in range(0, exclude.shape[0], block):
        stop = min(start + block, exclude.shape[0])
        items[start:stop] = _popular_allowed(ranking, exclude[start:stop], k)
    return items


def _popular_allowed(ranking: np.ndarray, exclude: sp.csr_matrix, k: int) -> np.ndarray:
    """The first `k` sources of `ranking` each user of a block of users does not have (-1 pads)."""
    # Everyone shares one ranking, so only the k + (most exclusions of any user here) best sources can appear.
    candidates = ranking[:min(len(ranking), k + int(np.diff(exclude.indptr).max(initial=0)))]
    allowed = ~np.asarray(exclude[:, candidates].todense(), dtype=bool)
    rank = np.where(allowed, np.cumsum(allowed, axis=1, dtype=np.int32), 0)
    items = np.full((exclude.shape[0], k), -1, dtype=np.int64)
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
