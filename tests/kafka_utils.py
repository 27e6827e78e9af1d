"""Reading a topic back from the real broker."""

from __future__ import annotations

import json
import uuid

from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from ok_ml_assets.lifecycle.publication import BATCH_KEY_PREFIX


def topic_exists(bootstrap: str, topic: str) -> bool:
    """Whether the broker knows the topic."""
    return topic in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=15).topics


def read_messages(bootstrap: str, topic: str) -> list[tuple[bytes, dict]]:
    """Every committed message of a topic, (key, value), in order per partition."""
    if not topic_exists(bootstrap, topic):
        return []
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4()}", "auto.offset.reset": "earliest",
        "enable.partition.eof": True, "isolation.level": "read_committed", "enable.auto.commit": False,
    })
    partitions = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=15).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    seen: list[tuple[bytes, dict]] = []
    finished: set[int] = set()
    try:
        while len(finished) < len(partitions):
            message = consumer.poll(10)
            if message is None:
                raise TimeoutError(f"reading {topic} stalled")
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    finished.add(message.partition())
                    continue
                raise RuntimeError(message.error())
            seen.append((message.key(), json.loads(message.value())))
    finally:
        consumer.close()
    return seen


def read_topic(bootstrap: str, topic: str) -> dict[str, list[dict]]:
    """Every committed data message of a topic (batch trailers left out), as the values seen per key (in order)."""
    values: dict[str, list[dict]] = {}
    for key, value in read_messages(bootstrap, topic):
        if not key.startswith(BATCH_KEY_PREFIX):
            values.setdefault(key.decode(), []).append(value)
    return values


def read_trailers(bootstrap: str, topic: str) -> list[dict]:
    """The batch trailers of every publication to a topic, in order per partition."""
    return [value for key, value in read_messages(bootstrap, topic) if key.startswith(BATCH_KEY_PREFIX)]
