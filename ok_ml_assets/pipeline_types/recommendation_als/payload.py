"""The versioned JSON value `recommendation_als` publishes per user."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from ok_ml_assets.lifecycle.publication import Provenance, envelope, message_key

MESSAGE_SCHEMA = "ok_ml.recommendations"
MESSAGE_VERSION = 1


def message_value(user_id: int, source_ids: list, scores: list, provenance: Provenance) -> bytes:
    """The versioned JSON value of one user's recommendations."""
    items = [{"source_id": int(s), "score": round(float(c), 6)} for s, c in zip(source_ids, scores)]
    return envelope(MESSAGE_SCHEMA, MESSAGE_VERSION, {"user_id": int(user_id), "items": items}, provenance)


def encode_messages(recommendations: pd.DataFrame, provenance: Provenance) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every row of the recommendation table."""
    for user_id, source_ids, scores in zip(
        recommendations["user_id"], recommendations["source_ids"], recommendations["scores"]
    ):
        yield message_key(user_id), message_value(user_id, source_ids, scores, provenance)


def popular_fallback(recommendations: pd.DataFrame, top_k: int) -> dict:
    """The `top_k` sources in the most lists of the batch, scored by their share of lists."""
    counts = recommendations["source_ids"].explode().dropna().astype("int64").value_counts()
    lists = max(len(recommendations), 1)
    items = [{"source_id": int(s), "score": round(float(c) / lists, 6)} for s, c in counts.head(top_k).items()]
    return {"items": items, "source": "most recommended sources of this batch"}
