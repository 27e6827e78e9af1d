"""Implicit-feedback ALS on user-source weights."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits


@dataclass(frozen=True)
class AlsParams:
    """Hyper-parameters of one ALS fit."""

    factors: int
    regularization: float
    iterations: int
    alpha: float
    seed: int


@dataclass(frozen=True)
class Embeddings:
    """Learned factors with the ids their rows stand for."""

    user_ids: np.ndarray
    user_factors: np.ndarray
    source_ids: np.ndarray
    source_factors: np.ndarray


def interaction_matrix(pairs: pd.DataFrame, user_ids: np.ndarray, source_ids: np.ndarray, value: str = "weight") -> sp.csr_matrix:
    """CSR users x sources of `value`, rows and columns ordered like `user_ids` and `source_ids`."""
    rows = np.searchsorted(user_ids, pairs["user_id"].to_numpy())
    cols = np.searchsorted(source_ids, pairs["source_id"].to_numpy())
    known = (rows < len(user_ids)) & (cols < len(source_ids))
    known &= (user_ids[rows.clip(0, len(user_ids) - 1)] == pairs["user_id"].to_numpy())
    known &= (source_ids[cols.clip(0, len(source_ids) - 1)] == pairs["source_id"].to_numpy())
    data = pairs[value].to_numpy(dtype=np.float32) if value in pairs else np.ones(len(pairs), np.float32)
    matrix = sp.csr_matrix(
        (data[known], (rows[known], cols[known])), shape=(len(user_ids), len(source_ids)), dtype=np.float32
    )
    matrix.sum_duplicates()
    return matrix


def fit_als(features: pd.DataFrame, params: AlsParams) -> Embeddings:
    """Fit ALS on confidence `1 + alpha * weight` (Hu, Koren, Volinsky) over the feature pairs."""
    from implicit.cpu.als import AlternatingLeastSquares

    if features.empty:
        raise ValueError("cannot train on an empty feature table")
    user_ids = np.unique(features["user_id"].to_numpy())
    source_ids = np.unique(features["source_id"].to_numpy())
    confidence = interaction_matrix(features, user_ids, source_ids)
    confidence.data = (params.alpha * confidence.data).astype(np.float32)
    # implicit parallelises over users itself; a threaded BLAS underneath only contends with it.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=params.factors,
            regularization=params.regularization,
            iterations=params.iterations,
            random_state=params.seed,
            calculate_training_loss=False,
        )
        model.fit(confidence, show_progress=False)
    return Embeddings(
        user_ids=user_ids,
        user_factors=np.ascontiguousarray(model.user_factors, dtype=np.float32),
        source_ids=source_ids,
        source_factors=np.ascontiguousarray(model.item_factors, dtype=np.float32),
    )
