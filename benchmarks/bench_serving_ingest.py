"""Ingestion into each online store against a bare consumer loop that discards messages, in one run on loopback.

    .venv/bin/python benchmarks/bench_serving_ingest.py [--messages 200000]

Needs the local Kafka (`make kafka-up`) and, for the Redis row, Redis (`make redis-up` or REDIS_URL).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from ok_ml_assets.configs import Publication
from ok_ml_assets.lifecycle.publication import BatchEnd, Provenance, envelope, message_key, publish_messages
from ok_ml_assets.resources.kafka import KafkaResource
from ok_ml_assets.serving.ingest import Ingester
from ok_ml_assets.serving.store import current_generation
from ok_ml_assets.settings import load_settings

EXPERIMENT = "bench_ingest"


def publish(kafka: KafkaResource, topic: str, messages: int) -> None:
    """One publication of `messages` recommendation-sized values (10 items each), with its trailers."""
    publication = Publication(topic=topic, partitions=6, rollout_fraction=1.0, salt="s")
    provenance = Provenance(EXPERIMENT, EXPERIMENT, "1", "run-1")
    items = [{"source_id": i, "score": 0.5} for i in range(10)]
    values = ((message_key(u), envelope("ok_ml.recommendations", 1, {"user_id": u, "items": items}, provenance))
              for u in range(1, messages + 1))
    kafka.ensure_topic(topic, publication.partitions)
    publish_messages(kafka, publication, values, BatchEnd(provenance, publication, {"items": []}))


def bare_consumer(bootstrap: str, topic: str, expected: int) -> float:
    """Seconds for a bare read_committed consumer loop to read every message and discard it."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}", "isolation.level": "read_committed",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    seen, start = 0, time.perf_counter()
    while seen < expected:
        seen += sum(1 for m in consumer.consume(5000, 1.0) if not m.error())
    took = time.perf_counter() - start
    consumer.close()
    return took


def ingester(store, bootstrap: str, topic: str) -> float:
    """Seconds for the ingester to bring the whole publication into the store and serve it."""
    start = time.perf_counter()
    with Ingester(store, {"bootstrap.servers": bootstrap}, [topic], group_id=f"bench-{uuid.uuid4()}") as running:
        while current_generation(store, EXPERIMENT) is None:
            running.step()
    return time.perf_counter() - start


def stores(tmp: Path):
    """(name, store) of each store this machine can run."""
    from ok_ml_assets.serving.lmdb_store import LmdbStore

    yield "LMDB (embedded)", LmdbStore(tmp / "store.lmdb")
    url = os.environ.get("REDIS_URL") or f"redis://127.0.0.1:{os.environ.get('OK_ML_REDIS_PORT', '6390')}/0"
    try:
        from ok_ml_assets.serving.redis_store import RedisStore

        store = RedisStore(url, prefix=f"bench:{uuid.uuid4().hex}")
        store.offsets()
        yield f"Redis ({url})", store
    except Exception as error:  # noqa: BLE001 - a missing Redis only leaves its row out
        print(f"Redis row skipped: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    bootstrap = load_settings().kafka_bootstrap_servers
    kafka = KafkaResource(bootstrap_servers=bootstrap)
    topic = f"bench.serving.{uuid.uuid4().hex[:8]}"
    publish(kafka, topic, args.messages)
    total = args.messages + 6
    baseline = bare_consumer(bootstrap, topic, total)
    print(f"{args.messages:,} messages of one publication, 6 partitions, on {bootstrap}")
    print(f"{'reader':40} {'seconds':>8} {'msg/s':>10} {'vs bare':>8}")
    print(f"{'bare consumer loop (discards)':40} {baseline:8.2f} {total / baseline:10,.0f} {1:8.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, store in stores(Path(tmp)):
            took = ingester(store, bootstrap, topic)
            print(f"{'ingester -> ' + name:40} {took:8.2f} {total / took:10,.0f} {baseline / took:8.2f}")
            store.close()
    print("aim: ingestion at least half the bare consumer's rate (vs bare >= 0.50)")


if __name__ == "__main__":
    main()
