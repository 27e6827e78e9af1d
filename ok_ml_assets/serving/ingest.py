"""The ingester: every experiment's publication topic (read_committed) into the online store.

Values of a publication are written aside under its generation; when every partition's trailer is in and each
partition holds as many of its messages as its trailer says, one commit flips the experiment's served generation.
Offsets live in the store and move in the same commit as the values they cover, so a crash at any point loses
nothing and shows nothing twice; Kafka's group offsets are committed after, for lag tools.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import orjson

from ok_ml_assets.lifecycle.publication import BATCH_KEY_PREFIX, BATCH_SCHEMA, generation_id
from ok_ml_assets.serving.store import CURRENT, PENDING, Generation, OnlineStore

log = logging.getLogger(__name__)
# Every message of a publication shares its provenance: its generation id is computed once.
publication_id = functools.lru_cache(maxsize=64)(generation_id)
# Lag is measured at most this often (it is a gauge: fresher adds commits, not information).
LAG_EVERY_SECONDS = 2.0
PREVIOUS = "previous/"
LAG, INGESTED, MALFORMED, INGEST_SECONDS = "lag/", "stats/ingested/", "stats/malformed/", "stats/ingest_seconds/"


class MalformedMessage(ValueError):
    """A message the ingester cannot serve: not JSON, or missing what a value or trailer must carry."""


@dataclass
class Pending:
    """What has arrived of one publication not complete yet: messages and trailers per partition."""

    experiment: str
    generation_id: str
    generated_at: str
    first_seen: float
    counts: dict[str, int] = field(default_factory=dict)
    trailers: dict[str, dict] = field(default_factory=dict)

    def complete(self) -> bool:
        """Every partition's trailer is in, and each partition holds the messages its trailer counts."""
        if not self.trailers:
            return False
        partitions = next(iter(self.trailers.values()))["partitions"]
        return len(self.trailers) == partitions and all(self.counts.get(p, 0) == t["messages"] for p, t in self.trailers.items())

    def generation(self, now: float) -> Generation:
        """The served record of the complete publication."""
        trailer = next(iter(self.trailers.values()))
        return Generation(
            experiment=self.experiment, generation_id=self.generation_id, model_name=trailer["model"]["name"],
            model_version=str(trailer["model"]["version"]), run_id=trailer["run_id"], generated_at=trailer["generated_at"],
            topic=trailer["topic"], rollout_fraction=float(trailer["rollout_fraction"]), salt=trailer["salt"],
            messages=sum(t["messages"] for t in self.trailers.values()), fallback=trailer["fallback"], served_since=now,
        )

    def to_bytes(self) -> bytes:
        """The state as stored JSON."""
        return json.dumps(self.__dict__, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Pending:
        """The state from stored JSON."""
        return cls(**json.loads(data))


@dataclass(frozen=True)
class Record:
    """One consumed message: where it was and what it said."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes


def parse(record: Record) -> tuple[str, str, dict]:
    """(experiment, generation id, body) of a value or trailer; MalformedMessage names what is wrong."""
    try:
        body = orjson.loads(record.value)
        experiment, model, run_id, generated_at = body["experiment"], body["model"], body["run_id"], body["generated_at"]
        generation = publication_id(str(model["version"]), run_id, generated_at)
    except (ValueError, KeyError, TypeError) as error:
        raise MalformedMessage(f"{record.topic}[{record.partition}]@{record.offset}: {type(error).__name__}: {error}") from None
    if record.key.startswith(BATCH_KEY_PREFIX) and body.get("schema") != BATCH_SCHEMA:
        raise MalformedMessage(f"{record.topic}[{record.partition}]@{record.offset}: a trailer key without a trailer body")
    if record.key.startswith(BATCH_KEY_PREFIX) and not {"partition", "partitions", "messages", "fallback"} <= set(body):
        raise MalformedMessage(f"{record.topic}[{record.partition}]@{record.offset}: trailer misses fields")
    return experiment, generation, body


class Batch:
    """One store commit in the making: values, changed pending states, flips, offsets and counters."""

    def __init__(self, store: OnlineStore):
        self.store = store
        self.values: list[tuple[str, str, bytes]] = []
        self.meta: dict[str, bytes | None] = {}
        self.offsets: dict[str, int] = {}
        self.pending: dict[tuple[str, str], Pending] = {}
        self.flipped: list[Generation] = []
        self.dropped: list[str] = []
        self.counters: dict[str, int] = {}

    def state(self, experiment: str, generation: str, generated_at: str, now: float) -> Pending:
        """The pending state of a publication: from this batch, else from the store, else new."""
        key = (experiment, generation)
        if key not in self.pending:
            stored = self.store.meta(f"{PENDING}{experiment}/{generation}")
            self.pending[key] = Pending.from_bytes(stored) if stored else Pending(experiment, generation, generated_at, now)
        return self.pending[key]

    def count(self, name: str, by: int = 1) -> None:
        """Add to a counter kept in the store's meta."""
        self.counters[name] = self.counters.get(name, 0) + by

    def add(self, record: Record, now: float) -> None:
        """Take one message: a value goes aside under its generation, a trailer into its publication's state."""
        self.offsets[f"{record.topic}:{record.partition}"] = record.offset + 1
        try:
            experiment, generation, body = parse(record)
        except MalformedMessage as error:
            log.warning("skipped malformed message %s", error)
            self.count(MALFORMED + record.topic)
            return
        state = self.state(experiment, generation, body["generated_at"], now)
        partition = str(record.partition)
        if record.key.startswith(BATCH_KEY_PREFIX):
            state.trailers[partition] = body
        else:
            state.counts[partition] = state.counts.get(partition, 0) + 1
            self.values.append((f"{experiment}/{generation}", record.key.decode(), record.value))
            self.count(INGESTED + experiment)

    def settle(self, now: float) -> None:
        """Flip every publication that is complete, oldest first; keep the state of the others."""
        for state in sorted(self.pending.values(), key=lambda s: s.generated_at):
            key = f"{PENDING}{state.experiment}/{state.generation_id}"
            self.meta[key] = None if state.complete() else state.to_bytes()
            if state.complete():
                self.flip(state.generation(now), now - state.first_seen)

    def flip(self, generation: Generation, took: float) -> None:
        """Serve a complete generation newer than the served one; keep the one it replaces for readers mid-request,
        drop the one before it and what is left of older publications that never completed."""
        experiment = generation.experiment
        current = self.meta.get(CURRENT + experiment) or self.store.meta(CURRENT + experiment)
        previous = self.meta.get(PREVIOUS + experiment) or self.store.meta(PREVIOUS + experiment)
        if current is not None:
            replaced = Generation.from_bytes(current)
            if replaced.generated_at >= generation.generated_at:
                self.dropped.append(generation.namespace)
                return
            self.meta[PREVIOUS + experiment] = replaced.namespace.encode()
        if previous is not None:
            self.dropped.append(previous.decode())
        self.drop_abandoned(generation)
        self.meta[CURRENT + experiment] = generation.to_bytes()
        self.meta[INGEST_SECONDS + experiment] = f"{took:.3f}".encode()
        self.flipped.append(generation)

    def drop_abandoned(self, generation: Generation) -> None:
        """Forget publications of the experiment older than the one now served that never completed (compacted away)."""
        prefix = f"{PENDING}{generation.experiment}/"
        states = {k: Pending.from_bytes(v) for k, v in self.store.meta_items(prefix).items()}
        states |= {f"{prefix}{s.generation_id}": s for s in self.pending.values() if s.experiment == generation.experiment}
        for key, state in states.items():
            if state.generated_at < generation.generated_at and not state.complete():
                self.meta[key] = None
                self.dropped.append(f"{state.experiment}/{state.generation_id}")

    def counter_meta(self) -> dict[str, bytes]:
        """Counters added to their stored totals."""
        return {name: str(int(self.store.meta(name) or b"0") + by).encode() for name, by in self.counters.items()}

    def commit(self, lags: dict[str, int]) -> None:
        """One atomic, durable store commit of everything this batch saw, then the drops it made possible."""
        meta = {**self.meta, **self.counter_meta(), **{LAG + tp: str(lag).encode() for tp, lag in lags.items()}}
        self.store.commit(self.values, meta, self.offsets)
        for namespace in self.dropped:
            self.store.drop(namespace)


class Ingester:
    """Consumes the publication topics into a store, in batches, until stopped."""

    def __init__(self, store: OnlineStore, consumer_config: dict[str, str], topics: Sequence[str], batch_size: int = 5000,
                 poll_seconds: float = 0.5, group_id: str = "ok-ml-serving"):
        self.store, self.topics, self.batch_size, self.poll_seconds = store, list(topics), batch_size, poll_seconds
        self.config = {**consumer_config, "group.id": group_id, "isolation.level": "read_committed",
                       "enable.auto.commit": False, "auto.offset.reset": "earliest", "enable.partition.eof": False}
        self.consumer = None
        self.assigned: set[str] = set()
        self.last_refresh = 0.0
        self.last_lag = 0.0

    def __enter__(self) -> Ingester:
        from confluent_kafka import Consumer

        self.consumer = Consumer(self.config)
        return self

    def __exit__(self, *exc) -> None:
        if self.consumer is not None:
            self.consumer.close()

    def assign_new_partitions(self) -> None:
        """Assign partitions of the topics that exist now, each from the offset the store committed."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        metadata = self.consumer.list_topics(timeout=10)
        stored = self.store.offsets()
        fresh = [TopicPartition(t, p, stored.get(f"{t}:{p}", OFFSET_BEGINNING))
                 for t in self.topics if t in metadata.topics for p in metadata.topics[t].partitions
                 if f"{t}:{p}" not in self.assigned]
        if fresh:
            self.consumer.incremental_assign(fresh)
            self.assigned |= {f"{tp.topic}:{tp.partition}" for tp in fresh}
            log.info("assigned %d partitions", len(fresh))
        self.last_refresh = time.monotonic()

    def lags(self, offsets: dict[str, int]) -> dict[str, int]:
        """Messages behind the high watermark, per partition this batch moved (every few seconds, else nothing new)."""
        from confluent_kafka import TopicPartition

        if time.monotonic() - self.last_lag < LAG_EVERY_SECONDS:
            return {}
        self.last_lag = time.monotonic()
        lags = {}
        # The consumer's position, not the store's offset: it has stepped over transaction markers, which take offsets too.
        parts = self.consumer.position([TopicPartition(n.rpartition(":")[0], int(n.rpartition(":")[2])) for n in offsets])
        for part in parts:
            # Cached: the high watermark every fetch response carries, no extra round trip.
            _, high = self.consumer.get_watermark_offsets(part, cached=True)
            name = f"{part.topic}:{part.partition}"
            if high >= 0:
                lags[name] = max(high - max(part.offset, offsets[name]), 0)
        return lags

    def records(self) -> list[Record]:
        """Up to a batch of messages, or none after the poll timeout."""
        messages = self.consumer.consume(self.batch_size, self.poll_seconds)
        records = []
        for message in messages:
            if message.error():
                log.warning("consumer error: %s", message.error())
                continue
            records.append(Record(message.topic(), message.partition(), message.offset(), message.key() or b"", message.value() or b""))
        return records

    def step(self) -> Batch | None:
        """Consume one batch into one store commit; None when nothing arrived."""
        if time.monotonic() - self.last_refresh > 5:
            self.assign_new_partitions()
        records = self.records()
        if not records:
            lags = self.lags(self.store.offsets())
            if lags:
                self.store.commit([], {LAG + tp: str(lag).encode() for tp, lag in lags.items()}, {})
            return None
        batch = apply_records(self.store, records, lambda offsets: self.lags(offsets))
        self.commit_group_offsets(batch.offsets)
        return batch

    def commit_group_offsets(self, offsets: dict[str, int]) -> None:
        """Tell Kafka how far the store is (for lag tools); the store's own offsets are what a restart uses."""
        from confluent_kafka import KafkaException, TopicPartition

        parts = [TopicPartition(n.rpartition(":")[0], int(n.rpartition(":")[2]), o) for n, o in offsets.items()]
        try:
            self.consumer.commit(offsets=parts, asynchronous=False)
        except KafkaException as error:
            log.warning("group offset commit failed (the store's offsets stand): %s", error)

    def run(self, stop: threading.Event, idle_stop_after: float | None = None) -> None:
        """Consume until `stop` is set (or nothing arrived for `idle_stop_after` seconds)."""
        idle_since = time.monotonic()
        while not stop.is_set():
            if self.step() is not None:
                idle_since = time.monotonic()
            elif idle_stop_after is not None and time.monotonic() - idle_since > idle_stop_after:
                return


def apply_records(store: OnlineStore, records: Iterable[Record], lags=lambda offsets: {}) -> Batch:
    """Apply consumed records to the store in one commit, flipping the publications they complete."""
    now = time.time()
    batch = Batch(store)
    for record in records:
        batch.add(record, now)
    batch.settle(now)
    for generation in batch.flipped:
        log.info("%s now serves %s v%s (%s, %d messages)", generation.experiment, generation.model_name,
                 generation.model_version, generation.generation_id, generation.messages)
    batch.commit(lags(batch.offsets))
    return batch
