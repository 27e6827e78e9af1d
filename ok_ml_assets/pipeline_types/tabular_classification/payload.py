"""The versioned JSON value `tabular_classification` publishes per entity."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np
import pandas as pd

from ok_ml_assets.lifecycle import encoding
from ok_ml_assets.lifecycle.publication import (
    Provenance,
    encoded_ahead,
    envelope,
    envelope_parts,
    integers,
    json_value,
    message_key,
)

MESSAGE_SCHEMA = "ok_ml.classification"
MESSAGE_VERSION = 1
FIELDS = ("entity_id", "label", "score", "flagged", "probabilities")
CHUNK_ROWS = 50_000  # entities encoded at once: only a slice of the table is ever held encoded


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
    """(key, value) of every row of the prediction table, encoded a chunk of entities at a time."""
    parts = envelope_parts(MESSAGE_SCHEMA, MESSAGE_VERSION, FIELDS, provenance)
    return encoded_ahead(predictions, CHUNK_ROWS,
                         partial(encode_chunk, id_column=id_column, classes=classes, parts=parts, provenance=provenance))


def encode_chunk(chunk: pd.DataFrame, id_column: str, classes: list[str], parts: list[bytes], provenance: Provenance
                 ) -> list[tuple[bytes, bytes]]:
    """(key, value) of each entity of a chunk: numbers and labels written in bulk into a %-template of the value."""
    entity_ids, probability_lists = integers(chunk[id_column]), chunk["probabilities"].tolist()
    probabilities = class_probabilities(probability_lists, classes)
    if probabilities is None:
        # Probabilities that do not pair up with the classes (or classes named twice) keep the per-row encoder.
        return [(message_key(e), message_value(e, label, score, flagged, classes, p, provenance))
                for e, label, score, flagged, p in zip(entity_ids, chunk["label"], chunk["score"], chunk["flagged"], probability_lists)]
    names = [json_value(name) for name in classes]
    pairs = b",".join(name.replace(b"%", b"%%") + b":%b" for name in names)
    template = encoding.value_template(parts, [b"%d", b"%b", b"%b", b"%b", b"{" + pairs + b"}"])
    labels = encoding.text_column(chunk["label"].astype(str), json_value)
    flagged = [b"true" if f else b"false" for f in chunk["flagged"].tolist()]
    columns = [encoding.score_texts(probabilities[:, c]) for c in range(len(classes))]
    rows = zip(entity_ids, labels, encoding.score_texts(chunk["score"].to_numpy(dtype=np.float64)), flagged, *columns)
    return [(b"%d" % row[0], template % row) for row in rows]


def class_probabilities(probability_lists: list, classes: list[str]) -> np.ndarray | None:
    """The probabilities as an (entities, classes) float array, or None unless every entity has one per (distinct) class."""
    if len(set(classes)) != len(classes) or any(len(p) != len(classes) for p in probability_lists):
        return None
    return np.asarray(probability_lists, dtype=np.float64).reshape(len(probability_lists), len(classes))
