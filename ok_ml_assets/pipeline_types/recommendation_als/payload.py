"""The versioned JSON value `recommendation_als` publishes per user."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

import numpy as np
import orjson
import pandas as pd

from ok_ml_assets.lifecycle.publication import Provenance, envelope, envelope_parts, json_friendly, message_key, rounded

MESSAGE_SCHEMA = "ok_ml.recommendations"
MESSAGE_VERSION = 1
# Users encoded at once: big enough to amortise the bulk steps, small enough that only a slice of the table is ever
# held encoded (the large preset publishes a million users).
CHUNK_ROWS = 20_000


def message_value(user_id: int, source_ids: list, scores: list, provenance: Provenance) -> bytes:
    """The versioned JSON value of one user's recommendations."""
    items = [{"source_id": int(s), "score": round(float(c), 6)} for s, c in zip(source_ids, scores)]
    return envelope(MESSAGE_SCHEMA, MESSAGE_VERSION, {"user_id": int(user_id), "items": items}, provenance)


def encode_messages(recommendations: pd.DataFrame, provenance: Provenance) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every row of the recommendation table, encoded a chunk of users at a time."""
    parts = envelope_parts(MESSAGE_SCHEMA, MESSAGE_VERSION, ("user_id", "items"), provenance)
    for start in range(0, len(recommendations), CHUNK_ROWS):
        yield from encode_chunk(recommendations.iloc[start:start + CHUNK_ROWS], parts, provenance)


def encode_chunk(chunk: pd.DataFrame, parts: list[bytes], provenance: Provenance) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of each user of a chunk: scores rounded in bulk, each list written by orjson into the envelope's parts."""
    user_ids, source_lists, score_lists = chunk["user_id"].to_numpy(), chunk["source_ids"].tolist(), chunk["scores"].tolist()
    lengths = np.fromiter(map(len, source_lists), dtype=np.int64, count=len(chunk))
    sources, scores = flat(source_lists, lengths, score_lists)
    if sources is None:
        # Lists of other shapes (mismatched lengths, ids that are not integers) keep the per-row encoder.
        yield from ((message_key(u), message_value(u, s, c, provenance)) for u, s, c in zip(user_ids, source_lists, score_lists))
        return
    scores = rounded(scores)
    ends = np.cumsum(lengths)
    # A user with a score orjson would write differently from json (NaN, 1e-05) keeps the per-row encoder.
    unlike = set(np.searchsorted(ends, np.flatnonzero(~json_friendly(scores)), side="right").tolist())
    items = [{"source_id": s, "score": c} for s, c in zip(sources.tolist(), scores.tolist())]
    head, middle, tail = parts
    for row, (user_id, end, length) in enumerate(zip(user_ids.tolist(), ends.tolist(), lengths.tolist())):
        if row in unlike:
            yield message_key(user_id), message_value(user_id, source_lists[row], score_lists[row], provenance)
        else:
            yield b"%d" % user_id, b"".join((head, b"%d" % user_id, middle, orjson.dumps(items[end - length:end]), tail))


def flat(source_lists: list, lengths: np.ndarray, score_lists: list) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Every source id and score of the chunk in one array each; (None, None) unless the lists pair up and the ids are ints."""
    if not np.array_equal(np.fromiter(map(len, score_lists), dtype=np.int64, count=len(score_lists)), lengths):
        return None, None
    sources = np.asarray(list(chain.from_iterable(source_lists)))
    if len(sources) and not (sources.dtype.kind == "i" or (sources.dtype.kind == "u" and sources.dtype.itemsize < 8)):
        return None, None
    return sources.astype(np.int64), np.fromiter(chain.from_iterable(score_lists), dtype=np.float64, count=len(sources))


def popular_fallback(recommendations: pd.DataFrame, top_k: int) -> dict:
    """The `top_k` sources in the most lists of the batch, scored by their share of lists."""
    counts = recommendations["source_ids"].explode().dropna().astype("int64").value_counts()
    lists = max(len(recommendations), 1)
    items = [{"source_id": int(s), "score": round(float(c) / lists, 6)} for s, c in counts.head(top_k).items()]
    return {"items": items, "source": "most recommended sources of this batch"}
