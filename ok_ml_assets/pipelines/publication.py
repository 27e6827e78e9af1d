"""A/B rollout selection and the versioned message format of published recommendations."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from ok_ml_assets.configs import Publication

MESSAGE_SCHEMA = "ok_ml.recommendations"
MESSAGE_VERSION = 1
ROLLOUT, CONTROL = "rollout", "control"


@dataclass(frozen=True)
class Provenance:
    """Which model and run produced a publication."""

    experiment: str
    model_name: str
    model_version: str
    run_id: str
    generated_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))


def rollout_bucket(user_id: int, salt: str) -> float:
    """A stable position in [0, 1) of a user for an experiment's salt."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_rollout(user_ids: np.ndarray, fraction: float, salt: str) -> np.ndarray:
    """True for users in the rollout arm: the same users for the same salt and fraction, on every run."""
    return np.fromiter((rollout_bucket(int(u), salt) < fraction for u in user_ids), dtype=bool, count=len(user_ids))


def message_key(user_id: int) -> bytes:
    """The Kafka key: the user id in decimal, the key of the online store."""
    return str(int(user_id)).encode()


def message_value(user_id: int, source_ids: list, scores: list, provenance: Provenance) -> bytes:
    """The versioned JSON value of one user's recommendations."""
    return json.dumps(
        {
            "schema": MESSAGE_SCHEMA,
            "version": MESSAGE_VERSION,
            "user_id": int(user_id),
            "items": [{"source_id": int(s), "score": round(float(c), 6)} for s, c in zip(source_ids, scores)],
            "experiment": provenance.experiment,
            "model": {"name": provenance.model_name, "version": provenance.model_version},
            "run_id": provenance.run_id,
            "generated_at": provenance.generated_at,
        },
        separators=(",", ":"),
    ).encode()


def encode_messages(recommendations: pd.DataFrame, provenance: Provenance) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every row of the recommendation table."""
    for user_id, source_ids, scores in zip(
        recommendations["user_id"], recommendations["source_ids"], recommendations["scores"]
    ):
        yield message_key(user_id), message_value(user_id, source_ids, scores, provenance)


class Publisher(Protocol):
    """What publication needs of a message broker."""

    def ensure_topic(self, topic: str, partitions: int) -> None: ...

    def publish(self, topic: str, messages: Iterable[tuple[bytes, bytes]]): ...


def with_arms(recommendations: pd.DataFrame, publication: Publication, as_of: str) -> pd.DataFrame:
    """The lists with each user's A/B arm (rollout or control) and the last data day they were computed from."""
    arms = np.where(in_rollout(recommendations["user_id"].to_numpy(), publication.rollout_fraction, publication.salt), ROLLOUT, CONTROL)
    return recommendations.assign(arm=arms, as_of=as_of)


def publish_rollout(publisher: Publisher, publication: Publication, rollout: pd.DataFrame, provenance: Provenance):
    """Publish the rollout users' lists to the experiment's topic, all or nothing."""
    publisher.ensure_topic(publication.topic, publication.partitions)
    return publisher.publish(publication.topic, encode_messages(rollout, provenance))
