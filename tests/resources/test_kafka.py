"""Transactional publication against the real broker: all or nothing."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from ok_ml_assets.configs import Publication
from ok_ml_assets.lifecycle.publication import BatchEnd, Provenance, publish_messages
from ok_ml_assets.resources.kafka import KafkaResource
from ok_ml_assets.settings import load_settings
from tests.kafka_utils import read_topic, read_trailers

pytestmark = pytest.mark.integration


@pytest.fixture
def kafka() -> KafkaResource:
    return KafkaResource(bootstrap_servers=load_settings().kafka_bootstrap_servers)


def test_topic_is_compacted_and_messages_are_keyed(kafka):
    topic = f"test.{uuid.uuid4().hex[:12]}"
    kafka.ensure_topic(topic, partitions=3)
    report = kafka.publish(topic, [(b"1", b'{"a":1}'), (b"2", b'{"a":2}'), (b"1", b'{"a":3}')])
    assert report.messages == 3 and report.bytes == 3 * 8 and report.messages_per_second > 0
    assert read_topic(kafka.bootstrap_servers, topic) == {"1": [{"a": 1}, {"a": 3}], "2": [{"a": 2}]}
    admin = AdminClient(kafka.client_config())
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=15)
    assert configs["cleanup.policy"].value == "compact"
    assert len(admin.list_topics(topic, timeout=15).topics[topic].partitions) == 3


def test_a_failure_midway_leaves_the_topic_as_it_was(kafka):
    topic = f"test.{uuid.uuid4().hex[:12]}"
    kafka.ensure_topic(topic, partitions=2)
    kafka.publish(topic, [(b"1", b'{"v":"old"}')])

    def messages():
        yield b"1", b'{"v":"new"}'
        yield b"2", b'{"v":"new"}'
        raise RuntimeError("scoring broke halfway")

    with pytest.raises(RuntimeError, match="halfway"):
        kafka.publish(topic, messages())
    assert read_topic(kafka.bootstrap_servers, topic) == {"1": [{"v": "old"}]}


def test_a_publication_ends_with_one_trailer_per_partition_in_the_same_transaction(kafka):
    topic = f"test.{uuid.uuid4().hex[:12]}"
    kafka.ensure_topic(topic, partitions=3)
    publication = Publication(topic=topic, partitions=3, rollout_fraction=1.0, salt="s")
    batch_end = BatchEnd(Provenance("exp", "exp", "4", "run-1"), publication, {"items": []})
    report = publish_messages(kafka, publication, [(str(i).encode(), b'{"a":1}') for i in range(20)], batch_end)
    trailers = read_trailers(kafka.bootstrap_servers, topic)
    assert sorted(t["partition"] for t in trailers) == [0, 1, 2] and report.messages == 20
    assert {t["partition"]: t["messages"] for t in trailers} == {p: report.counts.get(p, 0) for p in range(3)}
    assert {t["generation_id"] for t in trailers} == {batch_end.provenance.generation_id}
    assert all(t["model"] == {"name": "exp", "version": "4"} and t["fallback"] == {"items": []} for t in trailers)
