"""Reading a topic back from the real broker."""

from __future__ import annotations

import json
import uuid

from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient


def topic_exists(bootstrap: str, topic: str) -> bool:
    """Whether the broker knows the topic."""
    return topic in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=15).topics


def read_topic(bootstrap: str, topic: str) -> dict[str, list[dict]]:
    """Every committed message of a topic, as the values seen per key (in order)."""
    if not topic_exists(bootstrap, topic):
        return {}
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4()}", "auto.offset.reset": "earliest",
        "enable.partition.eof": True, "isolation.level": "read_committed", "enable.auto.commit": False,
    })
    partitions = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=15).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    seen: dict[str, list[dict]] = {}
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
            seen.setdefault(message.key().decode(), []).append(json.loads(message.value()))
    finally:
        consumer.close()
    return seen
