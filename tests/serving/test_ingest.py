"""The ingester's bookkeeping on records, without a broker: whole publications flip at once, nothing is half served."""

from __future__ import annotations

import json

from ok_ml_assets.configs import Publication
from ok_ml_assets.lifecycle.publication import BatchEnd, Provenance, envelope
from ok_ml_assets.serving.ingest import INGESTED, MALFORMED, PENDING, Record, apply_records
from ok_ml_assets.serving.store import current_generation
from tests.serving.memory_store import MemoryStore

TOPIC = "exp.scores"
PUBLICATION = Publication(topic=TOPIC, partitions=2, rollout_fraction=1.0, salt="s")


def publication(version: str, keys: list[int], at: str) -> list[Record]:
    """A publication's records as a consumer reads them: values on partition key % 2, then each partition's trailer."""
    provenance = Provenance("exp", "exp", version, f"run-{version}", generated_at=at)
    records, counts = [], {0: 0, 1: 0}
    for key in keys:
        value = envelope("ok_ml.scores", 1, {"entity_id": key, "score": float(version)}, provenance)
        records.append(Record(TOPIC, key % 2, counts[key % 2], str(key).encode(), value))
        counts[key % 2] += 1
    trailers = BatchEnd(provenance, PUBLICATION, {"score": None}).trailers(counts, [0, 1])
    records += [Record(TOPIC, p, counts[p], key, value) for p, key, value in trailers]
    return records


def served(store: MemoryStore, key: str) -> tuple[str, float] | None:
    """(model version, score) the store serves for a key."""
    generation = current_generation(store, "exp")
    value = store.get(generation.namespace, key) if generation else None
    return (generation.model_version, json.loads(value)["score"]) if value else None


def test_a_publication_is_served_only_once_every_partition_is_in():
    store = MemoryStore()
    records = publication("1", list(range(10)), "2026-11-30T10:00:00+00:00")
    apply_records(store, records[:-1])
    assert current_generation(store, "exp") is None and store.meta_items(PENDING)
    apply_records(store, records[-1:])
    generation = current_generation(store, "exp")
    assert generation.model_version == "1" and generation.messages == 10 and generation.fallback == {"score": None}
    assert served(store, "7") == ("1", 1.0) and not store.meta_items(PENDING)
    assert store.offsets() == {f"{TOPIC}:0": 6, f"{TOPIC}:1": 6} and store.meta(INGESTED + "exp") == b"10"


def test_a_new_model_replaces_the_old_one_whole_and_the_one_before_is_dropped():
    store = MemoryStore()
    for version, hour in (("1", 10), ("2", 11)):
        apply_records(store, publication(version, list(range(10)), f"2026-11-30T{hour}:00:00+00:00"))
    second = publication("3", list(range(10)), "2026-11-30T12:00:00+00:00")
    apply_records(store, second[:8])
    assert {served(store, str(k)) for k in range(10)} == {("2", 2.0)}
    apply_records(store, second[8:])
    assert {served(store, str(k)) for k in range(10)} == {("3", 3.0)}
    assert len(store.values) == 2


def test_a_malformed_message_is_counted_and_skipped_without_stopping_ingestion():
    store = MemoryStore()
    records = publication("1", [1, 3], "2026-11-30T10:00:00+00:00")
    bad = [Record(TOPIC, 1, 90, b"5", b"not json"), Record(TOPIC, 1, 91, b"6", b'{"schema":"x"}')]
    apply_records(store, records[:1] + bad + records[1:])
    assert served(store, "3") == ("1", 1.0) and store.meta(MALFORMED + TOPIC) == b"2"


def test_an_older_publication_completing_late_does_not_replace_a_newer_one():
    store = MemoryStore()
    old = publication("1", [1, 2], "2026-11-30T10:00:00+00:00")
    new = publication("2", [1, 2], "2026-11-30T11:00:00+00:00")
    apply_records(store, new)
    apply_records(store, old)
    assert served(store, "1") == ("2", 2.0)


def test_replaying_a_batch_after_a_crash_before_its_commit_changes_nothing_visible():
    store = MemoryStore()
    records = publication("1", list(range(6)), "2026-11-30T10:00:00+00:00")
    apply_records(store, records[:3])
    before = store.meta_items(PENDING)
    apply_records(store, [])
    assert store.meta_items(PENDING) == before
    apply_records(store, records[3:])
    assert {served(store, str(k)) for k in range(6)} == {("1", 1.0)}
