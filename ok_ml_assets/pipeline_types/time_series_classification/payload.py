"""The versioned JSON value `time_series_classification` publishes per series."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from ok_ml_assets.lifecycle.publication import Provenance, envelope, message_key

MESSAGE_SCHEMA = "ok_ml.anomaly"
MESSAGE_VERSION = 1


def message_value(row, provenance: Provenance) -> bytes:
    """The versioned JSON value of one series' latest window."""
    body = {
        "series_id": int(row.series_id),
        "service": str(row.service),
        "metric": str(row.metric),
        "window_end": pd.Timestamp(row.window_end).isoformat(),
        "score": round(float(row.score), 6),
        "alert": bool(row.alert),
    }
    return envelope(MESSAGE_SCHEMA, MESSAGE_VERSION, body, provenance)


def encode_messages(predictions: pd.DataFrame, provenance: Provenance) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every series' prediction, keyed by series id."""
    for row in predictions.itertuples(index=False):
        yield message_key(row.series_id), message_value(row, provenance)
