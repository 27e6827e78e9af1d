"""Serving against the real broker and both real stores: publications ingested whole, read back through the API,
an ingester killed mid-batch loses nothing and never shows two model versions at once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid

import pytest
from starlette.testclient import TestClient

from ok_ml_assets.configs import Publication
from ok_ml_assets.lifecycle.publication import BatchEnd, Provenance, envelope, message_key, publish_messages
from ok_ml_assets.resources.kafka import KafkaResource
from ok_ml_assets.serving.api import build_app
from ok_ml_assets.serving.ingest import MALFORMED
from ok_ml_assets.serving.store import current_generation
from ok_ml_assets.settings import load_settings

pytestmark = pytest.mark.integration
EXPERIMENT = "serving_test"

INGEST = """
import threading
from pathlib import Path
{opener}
from ok_ml_assets.serving.ingest import Ingester
with Ingester(store, {{"bootstrap.servers": {bootstrap!r}}}, [{topic!r}], batch_size={batch}) as ingester:
    print("started", flush=True)
    ingester.run(threading.Event(), idle_stop_after={idle})
store.close()
"""


@pytest.fixture
def kafka() -> KafkaResource:
    return KafkaResource(bootstrap_servers=load_settings().kafka_bootstrap_servers)


@pytest.fixture
def topic(kafka) -> str:
    name = f"test.serving.{uuid.uuid4().hex[:12]}"
    kafka.ensure_topic(name, partitions=3)
    return name


def publish(kafka: KafkaResource, topic: str, version: str, keys: range) -> Provenance:
    """Publish one model version's scores for `keys` as the pipeline does: values, then the trailers."""
    publication = Publication(topic=topic, partitions=3, rollout_fraction=1.0, salt="s")
    provenance = Provenance(EXPERIMENT, EXPERIMENT, version, f"run-{version}")
    messages = ((message_key(k), envelope("ok_ml.scores", 1, {"entity_id": k, "score": float(version)}, provenance)) for k in keys)
    publish_messages(kafka, publication, messages, BatchEnd(provenance, publication, {"score": None}))
    return provenance


def ingest(backend, kafka, topic: str, batch: int = 5000, idle: float = 3.0) -> subprocess.Popen:
    """The ingester in its own process, as `ok-ml serve ingest` runs it, on the test's store."""
    script = INGEST.format(opener=backend.opener, bootstrap=kafka.bootstrap_servers, topic=topic, batch=batch, idle=idle)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "started"
    return process


def served_versions(client: TestClient, keys: range) -> set[tuple[str, str]]:
    """(model version of the response, version inside the value) of every key, read in batches through the API."""
    seen = set()
    for start in range(keys.start, keys.stop, 1000):
        body = client.post(f"/v1/{EXPERIMENT}/batch", json={"keys": list(range(start, min(start + 1000, keys.stop)))}).json()
        for result in body["results"]:
            value = result["value"]
            seen.add((body["model"]["version"], str(int(value["score"])) if "entity_id" in value else "fallback"))
    return seen


def test_a_published_batch_is_served_key_by_key_through_the_api(backend, kafka, topic):
    keys = range(1, 3001)
    provenance = publish(kafka, topic, "1", keys)
    assert ingest(backend, kafka, topic).wait(60) == 0
    store = backend.open()
    client = TestClient(build_app(store, [EXPERIMENT]))
    assert client.get("/ready").status_code == 200
    assert served_versions(client, keys) == {("1", "1")}
    one = client.get(f"/v1/{EXPERIMENT}/42").json()
    assert one["value"]["entity_id"] == 42 and one["model"]["version"] == "1" and one["arm"] == "rollout"
    assert one["generation_id"] == provenance.generation_id
    unknown = client.get(f"/v1/{EXPERIMENT}/999999").json()
    assert unknown["fallback"] is True and unknown["value"] == {"score": None}
    metrics = client.get("/metrics").text
    assert f'ok_ml_serving_model_version{{experiment="{EXPERIMENT}"}} 1.0' in metrics
    store.close()


def test_an_ingester_killed_mid_batch_loses_nothing_and_never_mixes_versions(backend, kafka, topic):
    keys = range(1, 20001)
    publish(kafka, topic, "1", keys)
    assert ingest(backend, kafka, topic).wait(60) == 0
    publish(kafka, topic, "2", keys)
    process = ingest(backend, kafka, topic, batch=200, idle=30)
    store = backend.open()
    deadline = time.monotonic() + 30
    while sum(store.offsets().values()) <= 20003 + 600 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    client = TestClient(build_app(store, [EXPERIMENT]))
    assert served_versions(client, keys) == {("1", "1")}, "a half-ingested version is visible"
    assert ingest(backend, kafka, topic, batch=2000).wait(120) == 0
    assert served_versions(client, keys) == {("2", "2")}
    assert current_generation(store, EXPERIMENT).messages == len(keys)
    store.close()


def test_a_malformed_message_is_counted_and_skipped(backend, kafka, topic):
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    producer.produce(topic, key=b"7", value=b"{not json", partition=0)
    producer.produce(topic, key=b"8", value=json.dumps({"schema": "other"}).encode(), partition=1)
    producer.flush(10)
    publish(kafka, topic, "3", range(1, 101))
    assert ingest(backend, kafka, topic).wait(60) == 0
    store = backend.open()
    assert store.meta(MALFORMED + topic) == b"2"
    assert served_versions(TestClient(build_app(store, [EXPERIMENT])), range(1, 101)) == {("3", "3")}
    store.close()
