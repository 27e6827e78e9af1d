"""The versioned JSON value `recommendation_als` publishes per user."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from itertools import chain

import numpy as np
import pandas as pd

from ok_ml_assets.engines import is_spark_frame
from ok_ml_assets.lifecycle import encoding
from ok_ml_assets.lifecycle.publication import Provenance, encoded_ahead, envelope, envelope_parts, message_key, rounded

MESSAGE_SCHEMA = "ok_ml.recommendations"
MESSAGE_VERSION = 1
# Users encoded at once: big enough to amortise the bulk steps, small enough that only a slice of the table is ever
# held encoded (the large preset publishes a million users).
CHUNK_ROWS = 4_000


def message_value(user_id: int, source_ids: list, scores: list, provenance: Provenance) -> bytes:
    """The versioned JSON value of one user's recommendations."""
    items = [{"source_id": int(s), "score": round(float(c), 6)} for s, c in zip(source_ids, scores)]
    return envelope(MESSAGE_SCHEMA, MESSAGE_VERSION, {"user_id": int(user_id), "items": items}, provenance)


def encode_messages(recommendations: pd.DataFrame, provenance: Provenance) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every row of the recommendation table, encoded a chunk of users at a time."""
    parts = envelope_parts(MESSAGE_SCHEMA, MESSAGE_VERSION, ("user_id", "items"), provenance)
    return encoded_ahead(recommendations, CHUNK_ROWS, partial(encode_chunk, parts=parts, provenance=provenance))


def encode_chunk(chunk: pd.DataFrame, parts: list[bytes], provenance: Provenance) -> list[tuple[bytes, bytes]]:
    """(key, value) of each user of a chunk, every value written at once as a row of bytes (see lifecycle.encoding)."""
    user_ids, source_lists, score_lists = chunk["user_id"].to_numpy(), chunk["source_ids"].tolist(), chunk["scores"].tolist()
    lengths = np.fromiter(map(len, source_lists), dtype=np.int64, count=len(chunk))
    sources, scores = flat(source_lists, lengths, score_lists)
    if sources is None or user_ids.dtype.kind != "i":
        # Lists of other shapes (mismatched lengths, ids that are not integers) keep the per-row encoder.
        return [(message_key(u), message_value(u, s, c, provenance)) for u, s, c in zip(user_ids, source_lists, score_lists)]
    scores = rounded(scores)
    rows = np.repeat(np.arange(len(chunk)), lengths)
    # Users the bulk writer does not write as json.dumps would (negative ids, NaN or 1e-05 scores) keep the per-row encoder.
    writable = encoding.writable_scores(scores)
    odd = np.zeros(len(chunk), dtype=bool)
    odd[user_ids < 0] = True
    odd[rows[(sources < 0) | ~writable]] = True
    rows = recommendation_rows(np.where(odd, 0, user_ids), lengths, np.where(sources < 0, 0, sources), scores, writable, parts)
    values = encoding.values_of(rows)
    keys = [b"%d" % user_id for user_id in user_ids.tolist()]
    for row in np.flatnonzero(odd).tolist():
        values[row] = message_value(user_ids[row], source_lists[row], score_lists[row], provenance)
    return list(zip(keys, values))


def recommendation_rows(user_ids: np.ndarray, lengths: np.ndarray, sources: np.ndarray, scores: np.ndarray, writable: np.ndarray,
                        parts: list[bytes]) -> np.ndarray:
    """One byte row per user: envelope, user id, then each (source, score) item in a fixed slot, absent slots NUL."""
    head, middle, tail = parts
    opening, between = b',{"source_id":', b',"score":'
    users, slots = len(user_ids), int(lengths.max()) if len(lengths) else 0
    user_width, source_width = encoding.digits_needed(user_ids), encoding.digits_needed(sources)
    layout = encoding.score_layout(scores, writable)
    score_width = encoding.score_field_width(layout)
    slot = len(opening) + source_width + len(between) + score_width + 1
    rows = np.empty((users, len(head) + user_width + len(middle) + 1 + slots * slot + 1 + len(tail) + 1), dtype=np.uint8)
    at = encoding.fill(rows, 0, head)
    encoding.write_integers(rows[:, at:at + user_width], user_ids)
    at = encoding.fill(rows, at + user_width, middle + b"[")
    items = rows[:, at:at + slots * slot].reshape(users, slots, slot)
    encoding.fill(rows, at + slots * slot, b"]" + tail + b"\n")
    dense_sources, dense_scores = encoding.dense(lengths, sources, slots), encoding.dense(lengths, np.where(writable, scores, 0.0), slots)
    encoding.fill(items, 0, opening + bytes(source_width) + between + bytes(score_width) + b"}")
    at = len(opening)
    encoding.write_integers(items[..., at:at + source_width], dense_sources)
    at += source_width + len(between)
    encoding.write_scores(items[..., at:at + score_width], dense_scores, layout)
    if slots:
        items[:, 0, 0] = encoding.NUL  # no comma before the first item
    items[np.arange(slots) >= lengths[:, None]] = encoding.NUL
    return rows


def flat(source_lists: list, lengths: np.ndarray, score_lists: list) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Every source id (int() of each, as int64) and score of the chunk in one array each; (None, None) unless the lists
    pair up and every id fits."""
    total = int(lengths.sum())
    if not np.array_equal(np.fromiter(map(len, score_lists), dtype=np.int64, count=len(score_lists)), lengths):
        return None, None
    try:
        sources = np.fromiter(chain.from_iterable(source_lists), dtype=np.int64, count=total)
    except (TypeError, ValueError, OverflowError):
        return None, None
    return sources, np.fromiter(chain.from_iterable(score_lists), dtype=np.float64, count=total)


def popular_fallback(recommendations: pd.DataFrame, top_k: int) -> dict:
    """The `top_k` sources in the most lists of the batch, scored by their share of lists (a Spark table counted there)."""
    if is_spark_frame(recommendations):
        counts, lists = spark_source_counts(recommendations), recommendations.count()
    else:
        counts, lists = listed_ids(recommendations["source_ids"]).value_counts(), len(recommendations)
    return fallback_of(counts, max(lists, 1), top_k)


def fallback_of(counts: pd.Series, lists: int, top_k: int) -> dict:
    """The fallback value from the number of lists each source is in, most first."""
    items = [{"source_id": int(s), "score": round(float(c) / lists, 6)} for s, c in counts.head(top_k).items()]
    return {"items": items, "source": "most recommended sources of this batch"}


def spark_source_counts(recommendations) -> pd.Series:
    """What `listed_ids(...).value_counts()` gives for the Spark table's rows in their order, counted on the executors:
    only one row per distinct source reaches the driver."""
    from pyspark.sql import functions as F

    # value_counts lists ids in order of first appearance, then sorts by count (ties keep no promised order): handing
    # the same sort the same first-appearance order gives the local ranking, ties included.
    listed = recommendations.select(F.monotonically_increasing_id().alias("row"), F.posexplode("source_ids").alias("at", "source_id"))
    counted = (listed.where(F.col("source_id").isNotNull()).groupBy("source_id")
               .agg(F.count("*").alias("lists"), F.min(F.struct("row", "at")).alias("first"))
               .select(F.col("source_id").cast("long"), "lists", F.col("first.row").alias("row"), F.col("first.at").alias("at"))
               .toPandas().sort_values(["row", "at"]))
    return pd.Series(counted["lists"].to_numpy(np.int64), index=pd.Index(counted["source_id"].to_numpy(np.int64)),
                     name="count").sort_values(ascending=False)


def listed_ids(lists: pd.Series) -> pd.Series:
    """Every id of the lists in order, as int64: what explode().dropna().astype("int64") gives, without its per-row objects."""
    try:
        return pd.Series(np.fromiter(chain.from_iterable(lists), dtype=np.int64))
    except (TypeError, ValueError, OverflowError):
        return lists.explode().dropna().astype("int64")
