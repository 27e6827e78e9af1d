"""The versioned JSON value `tabular_classification` publishes per entity."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from ok_ml_assets.lifecycle.publication import Provenance, envelope, message_key

MESSAGE_SCHEMA = "ok_ml.classification"
MESSAGE_VERSION = 1


def message_value(entity_id: int, label: str, score: float, flagged: int, classes: list[str], probabilities: list,
                  provenance: Provenance) -> bytes:
    """The versioned JSON value of one entity's prediction."""
    body = {
        "entity_id": int(entity_id),
        "label": str(label),
        "score": round(float(score), 6),
        "flagged": bool(flagged),
        "probabilities": {name: round(float(p), 6) for name, p in zip(classes, probabilities)},
    }
    return envelope(MESSAGE_SCHEMA, MESSAGE_VERSION, body, provenance)


def encode_messages(predictions: pd.DataFrame, id_column: str, classes: list[str], provenance: Provenance) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every row of the prediction table."""
    for entity_id, label, score, flagged, probabilities in zip(
        predictions[id_column], predictions["label"], predictions["score"], predictions["flagged"], predictions["probabilities"]
    ):
        yield message_key(entity_id), message_value(entity_id, label, score, flagged, classes, probabilities, provenance)
