"""The versioned JSON value `time_series_classification` publishes per series."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np
import pandas as pd

from ok_ml_assets.lifecycle import encoding
from ok_ml_assets.lifecycle.publication import Provenance, encoded_ahead, envelope_parts, integers, json_value

MESSAGE_SCHEMA = "ok_ml.anomaly"
MESSAGE_VERSION = 1
FIELDS = ("series_id", "service", "metric", "window_end", "score", "alert")
CHUNK_ROWS = 50_000  # series encoded at once: only a slice of the table is ever held encoded


def encode_messages(predictions: pd.DataFrame, provenance: Provenance) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every series' prediction, keyed by series id, encoded a chunk of series at a time."""
    template = encoding.value_template(envelope_parts(MESSAGE_SCHEMA, MESSAGE_VERSION, FIELDS, provenance),
                                       [b"%d", b"%b", b"%b", b"%b", b"%b", b"%b"])
    return encoded_ahead(predictions, CHUNK_ROWS, partial(encode_chunk, template=template))


def encode_chunk(chunk: pd.DataFrame, template: bytes) -> list[tuple[bytes, bytes]]:
    """(key, value) of each series of a chunk: names, times and scores written once per distinct value or in bulk."""
    rows = zip(
        integers(chunk["series_id"]),
        encoding.text_column(chunk["service"].astype(str), json_value),
        encoding.text_column(chunk["metric"].astype(str), json_value),
        encoding.text_column(chunk["window_end"], lambda end: json_value(pd.Timestamp(end).isoformat())),
        encoding.score_texts(chunk["score"].to_numpy(dtype=np.float64)),
        [b"true" if alert else b"false" for alert in chunk["alert"].tolist()],
    )
    return [(b"%d" % row[0], template % row) for row in rows]
