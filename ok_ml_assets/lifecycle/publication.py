"""Publication shared by every pipeline type: provenance, the A/B rollout and the all-or-nothing publish."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from ok_ml_assets.configs import Publication

ROLLOUT, CONTROL = "rollout", "control"


@dataclass(frozen=True)
class Provenance:
    """Which model and run produced a publication."""

    experiment: str
    model_name: str
    model_version: str
    run_id: str
    generated_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


def rollout_bucket(entity_id: int, salt: str) -> float:
    """A stable position in [0, 1) of an entity for an experiment's salt."""
    digest = hashlib.sha256(f"{salt}:{entity_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_rollout(entity_ids: np.ndarray, fraction: float, salt: str) -> np.ndarray:
    """True for entities in the rollout arm: the same ones for the same salt and fraction, on every run."""
    return np.fromiter((rollout_bucket(int(u), salt) < fraction for u in entity_ids), dtype=bool, count=len(entity_ids))


def envelope(schema: str, version: int, body: dict, provenance: Provenance) -> bytes:
    """A published value: the schema and its version, the type's fields, then where it came from, as compact JSON."""
    return json.dumps(
        {
            "schema": schema,
            "version": version,
            **body,
            "experiment": provenance.experiment,
            "model": {"name": provenance.model_name, "version": provenance.model_version},
            "run_id": provenance.run_id,
            "generated_at": provenance.generated_at,
        },
        separators=(",", ":"),
    ).encode()


def message_key(entity_id: int) -> bytes:
    """The Kafka key: the entity id in decimal, the key of the online store."""
    return str(int(entity_id)).encode()


class Publisher(Protocol):
    """What publication needs of a message broker."""

    def ensure_topic(self, topic: str, partitions: int) -> None: ...

    def publish(self, topic: str, messages: Iterable[tuple[bytes, bytes]]): ...


def with_arms(predictions: pd.DataFrame, publication: Publication, as_of: str, key_column: str = "user_id") -> pd.DataFrame:
    """The predictions with each entity's A/B arm (rollout or control) and the last data day they were computed from."""
    chosen = in_rollout(predictions[key_column].to_numpy(), publication.rollout_fraction, publication.salt)
    return predictions.assign(arm=np.where(chosen, ROLLOUT, CONTROL), as_of=as_of)


def publish_messages(publisher: Publisher, publication: Publication, messages: Iterable[tuple[bytes, bytes]]):
    """Publish encoded messages to the experiment's topic, all or nothing."""
    publisher.ensure_topic(publication.topic, publication.partitions)
    return publisher.publish(publication.topic, messages)
