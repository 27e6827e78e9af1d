"""Kafka: compacted topics and all-or-nothing transactional publication."""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

import dagster as dg
import numpy as np
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

# Delivery reports are served every POLL_EVERY messages (and when the queue is full): a poll per message costs a call each.
POLL_EVERY = 1_000


class BrokerUnreachable(RuntimeError):
    """The Kafka cluster did not answer: nothing should be trained for a publication that cannot happen."""


class PublicationError(RuntimeError):
    """Some messages were not acknowledged; the transaction was aborted and nothing is visible."""


@dataclass
class PublicationReport:
    """What a publication delivered, per partition."""

    messages: int = 0
    bytes: int = 0
    seconds: float = 0.0
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    # The publication's identity in its trailers (what serving reports it holds); empty without trailers.
    generation_id: str = ""

    @property
    def messages_per_second(self) -> float:
        """Delivered messages per wall-clock second."""
        return self.messages / self.seconds if self.seconds else 0.0

    def record(self, partitions: np.ndarray, offsets: np.ndarray, size: int) -> None:
        """Account the acknowledged messages: their partitions and offsets, in delivery order, and their bytes."""
        for partition in np.unique(partitions).tolist():
            mine = offsets[partitions == partition]
            self.offsets[partition] = (int(mine.min()), int(mine.max()))
            self.counts[partition] = len(mine)
        self.messages += len(offsets)
        self.bytes += size


class Acknowledgements:
    """The delivery reports of a publication: each acknowledged message's partition and offset, and every failure."""

    def __init__(self) -> None:
        self.failures: list = []
        self.partitions, self.offsets = array("q"), array("q")

    def callback(self):
        """The on_delivery callback: as little work per message as the reports allow (it runs once per message)."""
        failures, partition, offset = self.failures, self.partitions.append, self.offsets.append

        def on_delivery(error, message) -> None:
            if error is None:
                partition(message.partition())
                offset(message.offset())
            else:
                failures.append(error)

        return on_delivery

    def delivered(self) -> tuple[np.ndarray, np.ndarray]:
        """(partitions, offsets) of the acknowledged messages."""
        return np.frombuffer(self.partitions, dtype=np.int64), np.frombuffer(self.offsets, dtype=np.int64)


def abort(producer: Producer, topic: str, cause: BaseException) -> None:
    """Abort the open transaction; when the broker cannot even be told, say what that means instead of the abort's timeout."""
    try:
        producer.abort_transaction(60)
    except KafkaException:
        # Unacknowledged, the transaction is aborted by the broker when transaction.timeout.ms passes: nothing is visible.
        raise PublicationError(f"publication to {topic} failed ({cause}) and the broker could not be reached to abort it: "
                               "nothing was published; the transaction was aborted") from cause


class KafkaResource(dg.ConfigurableResource):
    """A Kafka cluster: 127.0.0.1:9092 by default; KAFKA_* environment variables for SASL/TLS clusters."""

    bootstrap_servers: str
    security: dict[str, str] = {}
    delivery_timeout_ms: int = 120_000

    def client_config(self) -> dict[str, str]:
        """librdkafka settings shared by every client."""
        return {"bootstrap.servers": self.bootstrap_servers, **self.security}

    def require_reachable(self, timeout_seconds: float = 8.0) -> None:
        """Fail in seconds, naming the bootstrap servers and the cause, when the cluster does not answer."""
        errors: list[str] = []
        # Errors reach error_cb; librdkafka's own log lines would go to the terminal, even after the run's output is restored.
        admin = AdminClient({**self.client_config(), "socket.connection.setup.timeout.ms": int(timeout_seconds * 1000),
                             "error_cb": lambda error: errors.append(error.str()), "log_level": 0})
        try:
            admin.list_topics(timeout=timeout_seconds)
            return
        except KafkaException as error:
            cause = errors[-1] if errors else error.args[0].str()
        # Dropped before raising: a traceback would keep the client, and its retrying threads, alive.
        del admin
        raise BrokerUnreachable(f"Kafka at {self.bootstrap_servers} is unreachable: {cause}")

    def ensure_topic(self, topic: str, partitions: int) -> None:
        """Create a compacted topic if missing; an existing topic is left as it is."""
        admin = AdminClient(self.client_config())
        try:
            if topic in admin.list_topics(timeout=10).topics:
                return
        except KafkaException as error:
            raise BrokerUnreachable(f"Kafka at {self.bootstrap_servers} is unreachable ({error.args[0].str()}); "
                                    f"nothing was published to {topic}") from None
        spec = NewTopic(topic, num_partitions=partitions, replication_factor=-1,
                        config={"cleanup.policy": "compact", "min.compaction.lag.ms": "0"})
        try:
            admin.create_topics([spec])[topic].result(timeout=30)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise

    def producer_config(self, topic: str) -> dict:
        """The transactional producer's settings for a topic."""
        return {
            **self.client_config(),
            # One id per topic: a second publisher to the same topic fences the first instead of interleaving.
            "transactional.id": f"ok-ml-{topic}",
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 20,
            "batch.size": 1 << 20,
            "delivery.timeout.ms": self.delivery_timeout_ms,
            "transaction.timeout.ms": self.delivery_timeout_ms + 60_000,
            "queue.buffering.max.messages": 1_000_000,
        }

    def publish(self, topic: str, messages: Iterable[tuple[bytes, bytes]], trailers=None) -> PublicationReport:
        """Send keyed messages, then the trailers made from what each partition got, in one transaction; commit only if
        every delivery report is a success."""
        producer = Producer(self.producer_config(topic))
        report, acknowledgements = PublicationReport(), Acknowledgements()
        failures = acknowledgements.failures

        def on_trailer(error, _message) -> None:
            if error is not None:
                failures.append(error)

        started = time.perf_counter()
        producer.init_transactions(30)
        producer.begin_transaction()
        try:
            size = self._produce_all(producer, topic, messages, acknowledgements.callback())
            self._flush(producer, topic, failures)
            report.record(*acknowledgements.delivered(), size)
            if trailers is not None:
                partitions = sorted(producer.list_topics(topic, timeout=30).topics[topic].partitions)
                for partition, key, value in trailers(dict(report.counts), partitions):
                    producer.produce(topic, key=key, value=value, partition=partition, on_delivery=on_trailer)
                self._flush(producer, topic, failures)
            producer.commit_transaction(60)
        except BaseException as error:
            abort(producer, topic, error)
            raise
        report.seconds = time.perf_counter() - started
        return report

    def _flush(self, producer: Producer, topic: str, failures: list) -> None:
        """Wait for every delivery report; refuse to go on if any message failed or is still unacknowledged."""
        producer.flush(self.delivery_timeout_ms / 1000)
        if failures or len(producer):
            raise PublicationError(
                f"{len(failures)} messages to {topic} failed and {len(producer)} are unacknowledged "
                f"(first error: {failures[0] if failures else 'timeout'}); nothing was published"
            )

    @staticmethod
    def _produce_all(producer: Producer, topic: str, messages: Iterable[tuple[bytes, bytes]], on_delivery) -> int:
        """Queue every message, serving delivery reports every POLL_EVERY messages and whenever the queue is full; their bytes."""
        produce, poll, size = producer.produce, producer.poll, 0
        for queued, (key, value) in enumerate(messages, 1):
            while True:
                try:
                    produce(topic, value, key, on_delivery=on_delivery)
                    break
                except BufferError:
                    poll(0.1)
            size += len(key) + len(value)
            if queued % POLL_EVERY == 0:
                poll(0)
        return size
