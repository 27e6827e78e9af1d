"""The online store's narrow interface, and the served generation record both the ingester and the API read."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

# Meta keys: the generation each experiment serves, and partition trailers seen of generations not complete yet.
CURRENT = "current/"
PENDING = "pending/"


@dataclass(frozen=True)
class Generation:
    """One publication of an experiment, as served: its model, when it was generated, and how to answer other keys."""

    experiment: str
    generation_id: str
    model_name: str
    model_version: str
    run_id: str
    generated_at: str
    topic: str
    rollout_fraction: float
    salt: str
    messages: int
    fallback: dict = field(default_factory=dict)
    served_since: float = 0.0

    @property
    def namespace(self) -> str:
        """Where this generation's values live in the store."""
        return f"{self.experiment}/{self.generation_id}"

    def to_bytes(self) -> bytes:
        """The record as stored JSON."""
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Generation:
        """The record from stored JSON."""
        return cls(**json.loads(data))


class OnlineStore(Protocol):
    """A key-value store the ingester writes in atomic, durable commits and the API reads by key.

    Values live in namespaces (one per experiment generation); meta keys hold the served generation per experiment
    (`current/<experiment>`) and ingestion state; offsets are the consumer's next offset per `topic:partition`.
    """

    def commit(self, values: Sequence[tuple[str, str, bytes]], meta: Mapping[str, bytes | None], offsets: Mapping[str, int]) -> None:
        """Write (namespace, key, value) triples, set meta keys (delete when None) and offsets: all or nothing, durable on return."""

    def offsets(self) -> dict[str, int]:
        """The consumer's next offset per `topic:partition`, as last committed."""

    def meta(self, key: str) -> bytes | None:
        """One meta value."""

    def meta_items(self, prefix: str) -> dict[str, bytes]:
        """Every meta key (and value) starting with `prefix`."""

    def get(self, namespace: str, key: str) -> bytes | None:
        """One value of a namespace."""

    def get_many(self, namespace: str, keys: Sequence[str]) -> list[bytes | None]:
        """Values of many keys of a namespace, in order (None where absent)."""

    def drop(self, namespace: str) -> int:
        """Delete every value of a namespace; return how many were deleted."""

    def close(self) -> None:
        """Release the store."""


def current_generation(store: OnlineStore, experiment: str) -> Generation | None:
    """The generation an experiment serves, or None before its first complete publication."""
    data = store.meta(CURRENT + experiment)
    return Generation.from_bytes(data) if data is not None else None


def served_generations(store: OnlineStore) -> dict[str, Generation]:
    """The served generation of every experiment in the store."""
    return {key.removeprefix(CURRENT): Generation.from_bytes(value) for key, value in store.meta_items(CURRENT).items()}
