"""The read API answers each key from one served generation: its value in the rollout arm, else the fallback and why."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from ok_ml_assets.lifecycle.publication import rollout_bucket
from ok_ml_assets.serving.api import MAX_BATCH, build_app
from ok_ml_assets.serving.store import CURRENT, Generation
from tests.serving.memory_store import MemoryStore

EXPERIMENT = "prod_discovery"
SALT = "discovery-ab"
FRACTION = 0.5
FALLBACK = {"items": [{"source_id": 1, "score": 0.0}], "popular": True}
ENTITIES = range(200)
ROLLOUT_IDS = [u for u in ENTITIES if rollout_bucket(u, SALT) < FRACTION]
CONTROL_IDS = [u for u in ENTITIES if rollout_bucket(u, SALT) >= FRACTION]


def envelope(user_id: int, version: str, generated_at: str) -> bytes:
    """A published value of prod_discovery, as the pipeline writes it."""
    body = {"schema": "ok_ml.recommendations", "version": 1, "user_id": user_id, "items": [{"source_id": user_id % 7, "score": 0.9}],
            "experiment": EXPERIMENT, "model": {"name": EXPERIMENT, "version": version}, "run_id": f"run-{version}",
            "generated_at": generated_at}
    return json.dumps(body, separators=(",", ":")).encode()


def publish(store: MemoryStore, version: str, age_seconds: float = 3600.0, published: list[int] | None = None,
            experiment: str = EXPERIMENT) -> Generation:
    """Write a complete generation of rollout-arm values (all but the unpublished ones) and serve it, as the ingester does."""
    generated_at = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age_seconds)).isoformat(timespec="seconds")
    ids = ROLLOUT_IDS if published is None else published
    generation = Generation(experiment=experiment, generation_id=f"gen-{version}", model_name=experiment, model_version=version,
                            run_id=f"run-{version}", generated_at=generated_at, topic=f"ok_ml.{experiment}", rollout_fraction=FRACTION,
                            salt=SALT, messages=len(ids), fallback=FALLBACK, served_since=time.time())
    values = [(generation.namespace, str(u), envelope(u, version, generated_at)) for u in ids]
    store.commit(values, {CURRENT + experiment: generation.to_bytes()}, {})
    return generation


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def client(store) -> TestClient:
    return TestClient(build_app(store), raise_server_exceptions=False)


def test_a_rollout_key_gets_its_value_with_model_arm_and_age(store, client):
    publish(store, "2")
    user = ROLLOUT_IDS[0]
    response = client.get(f"/v1/{EXPERIMENT}/{user}")
    assert response.status_code == 200
    body = response.json()
    assert body["value"]["user_id"] == user and body["value"]["model"] == {"name": EXPERIMENT, "version": "2"}
    assert body["model"] == {"name": EXPERIMENT, "version": "2"} and body["generation_id"] == "gen-2"
    assert body["arm"] == "rollout" and body["fallback"] is False and "reason" not in body
    assert body["experiment"] == EXPERIMENT and body["key"] == str(user)
    assert 3599 <= body["age_seconds"] <= 3700


def test_a_control_arm_key_gets_the_fallback_and_says_so(store, client):
    publish(store, "2")
    body = client.get(f"/v1/{EXPERIMENT}/{CONTROL_IDS[0]}").json()
    assert body["value"] == FALLBACK and body["fallback"] is True
    assert body["arm"] == "control" and body["reason"] == "control arm"
    assert body["model"]["version"] == "2"


def test_an_unknown_rollout_key_gets_the_fallback_with_the_reason(store, client):
    missing = ROLLOUT_IDS[0]
    publish(store, "2", published=ROLLOUT_IDS[1:])
    body = client.get(f"/v1/{EXPERIMENT}/{missing}").json()
    assert body["value"] == FALLBACK and body["fallback"] is True
    assert body["arm"] == "rollout" and body["reason"] == "unknown key"


def test_keys_are_read_in_canonical_decimal_and_non_numbers_are_unknown(store, client):
    publish(store, "2")
    user = ROLLOUT_IDS[0]
    padded = client.get(f"/v1/{EXPERIMENT}/000{user}").json()
    assert padded["fallback"] is False and padded["value"]["user_id"] == user and padded["key"] == f"000{user}"
    word = client.get(f"/v1/{EXPERIMENT}/alice").json()
    assert word["fallback"] is True and word["reason"] == "unknown key" and word["arm"] is None
    oversized = client.get(f"/v1/{EXPERIMENT}/{'9' * 200}")
    assert oversized.status_code == 400 and "at most 128 characters" in oversized.json()["error"]


def test_an_experiment_without_a_served_generation_is_404_naming_the_served_ones(store, client):
    publish(store, "2")
    response = client.get("/v1/nope/1")
    assert response.status_code == 404
    assert "'nope'" in response.json()["error"] and response.json()["served"] == [EXPERIMENT]
    assert client.post("/v1/nope/batch", json={"keys": [1]}).status_code == 404


def test_a_batch_answers_every_key_in_order_from_one_store_read(store, client):
    missing = ROLLOUT_IDS[0]
    publish(store, "3", published=ROLLOUT_IDS[1:])
    keys = [ROLLOUT_IDS[2], CONTROL_IDS[0], missing, "alice", ROLLOUT_IDS[1], str(ROLLOUT_IDS[2])]
    response = client.post(f"/v1/{EXPERIMENT}/batch", json={"keys": keys})
    assert response.status_code == 200 and store.get_many_calls == 1
    body = response.json()
    assert body["model"] == {"name": EXPERIMENT, "version": "3"} and body["generation_id"] == "gen-3"
    results = body["results"]
    assert [r["key"] for r in results] == keys and all("model" not in r for r in results)
    assert [r["fallback"] for r in results] == [False, True, True, True, False, False]
    assert [r.get("reason") for r in results] == [None, "control arm", "unknown key", "unknown key", None, None]
    assert [r["arm"] for r in results] == ["rollout", "control", "rollout", None, "rollout", "rollout"]
    assert results[0]["value"]["user_id"] == ROLLOUT_IDS[2] and results[4]["value"]["user_id"] == ROLLOUT_IDS[1]
    assert results[1]["value"] == FALLBACK == results[2]["value"]


def test_a_batch_holds_at_most_the_limit_and_must_be_a_list_of_keys(store, client):
    publish(store, "3")
    assert client.post(f"/v1/{EXPERIMENT}/batch", json={"keys": list(range(MAX_BATCH))}).status_code == 200
    too_many = client.post(f"/v1/{EXPERIMENT}/batch", json={"keys": list(range(MAX_BATCH + 1))})
    assert too_many.status_code == 400 and f"at most {MAX_BATCH} keys" in too_many.json()["error"]
    assert client.post(f"/v1/{EXPERIMENT}/batch", content=b"[1, 2]").status_code == 400
    assert client.post(f"/v1/{EXPERIMENT}/batch", json={"keys": [1, ""]}).status_code == 400
    assert client.post(f"/v1/{EXPERIMENT}/batch", json={"keys": [True]}).status_code == 400
    assert client.post(f"/v1/{EXPERIMENT}/batch", content=b"x" * 1_000_000).status_code == 413


def test_health_is_always_ok_and_ready_waits_for_a_served_generation(store, client):
    assert client.get("/health").json() == {"status": "ok"}
    not_ready = client.get("/ready")
    assert not_ready.status_code == 503 and "no experiment" in not_ready.json()["reason"]
    publish(store, "1")
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["served"] == {EXPERIMENT: "gen-1"}


def test_ready_waits_for_every_named_experiment(store):
    client = TestClient(build_app(store, experiments=[EXPERIMENT, "spam"]))
    publish(store, "1")
    response = client.get("/ready")
    assert response.status_code == 503 and response.json()["waiting_for"] == ["spam"]
    publish(store, "1", experiment="spam")
    assert client.get("/ready").status_code == 200


def samples(client: TestClient) -> dict[tuple[str, tuple], float]:
    """Every sample of the exposition by (name, sorted labels)."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def test_metrics_export_requests_reads_and_the_stores_ingestion_state(store, client):
    publish(store, "4", age_seconds=120)
    store.commit([], {"lag/ok_ml.prod_discovery:0": b"17", "lag/ok_ml.prod_discovery:1": b"0",
                      f"stats/ingested/{EXPERIMENT}": b"1234", "stats/malformed/ok_ml.prod_discovery": b"3",
                      f"stats/ingest_seconds/{EXPERIMENT}": b"2.5"}, {})
    for user in ROLLOUT_IDS[:3]:
        assert client.get(f"/v1/{EXPERIMENT}/{user}").status_code == 200
    client.post(f"/v1/{EXPERIMENT}/batch", json={"keys": ROLLOUT_IDS[:5]})
    client.get("/v1/nope/1")
    metrics = samples(client)
    key_route = (("route", "/v1/{experiment}/{key}"),)
    assert metrics["ok_ml_serving_requests_total", key_route + (("status", "200"),)] == 3
    assert metrics["ok_ml_serving_requests_total", key_route + (("status", "404"),)] == 1
    assert metrics["ok_ml_serving_requests_total", (("route", "/v1/{experiment}/batch"), ("status", "200"))] == 1
    assert metrics["ok_ml_serving_request_seconds_count", key_route] == 4
    assert metrics["ok_ml_serving_store_read_seconds_count", (("op", "get"),)] == 3
    assert metrics["ok_ml_serving_store_read_seconds_count", (("op", "get_many"),)] == 1
    assert metrics["ok_ml_serving_model_version", (("experiment", EXPERIMENT),)] == 4
    assert 119 <= metrics["ok_ml_serving_batch_age_seconds", (("experiment", EXPERIMENT),)] <= 200
    assert metrics["ok_ml_serving_consumer_lag", (("partition", "0"), ("topic", "ok_ml.prod_discovery"))] == 17
    assert metrics["ok_ml_serving_consumer_lag", (("partition", "1"), ("topic", "ok_ml.prod_discovery"))] == 0
    assert metrics["ok_ml_serving_ingested_messages_total", (("experiment", EXPERIMENT),)] == 1234
    assert metrics["ok_ml_serving_malformed_messages_total", (("topic", "ok_ml.prod_discovery"),)] == 3
    assert metrics["ok_ml_serving_ingest_seconds", (("experiment", EXPERIMENT),)] == 2.5
    assert not any(name.startswith("ok_ml_serving_requests_total") and "nope" in str(labels) for name, labels in metrics)


def test_a_failing_store_read_is_a_json_500_counted_as_an_error(store, client):
    publish(store, "4")

    def broken(namespace, key):
        raise RuntimeError("disk on fire")

    store.get = broken
    response = client.get(f"/v1/{EXPERIMENT}/{ROLLOUT_IDS[0]}")
    assert response.status_code == 500 and response.json() == {"error": "internal error", "kind": "RuntimeError"}
    metrics = samples(client)
    route = ("route", "/v1/{experiment}/{key}")
    assert metrics["ok_ml_serving_errors_total", (("kind", "RuntimeError"), route)] == 1
    assert metrics["ok_ml_serving_requests_total", (route, ("status", "500"))] == 1


def test_every_response_comes_from_one_generation_across_a_flip(store, client):
    user = ROLLOUT_IDS[0]
    publish(store, "1")
    before = client.get(f"/v1/{EXPERIMENT}/{user}").json()
    publish(store, "2")
    store.drop(f"{EXPERIMENT}/gen-1")
    after = client.get(f"/v1/{EXPERIMENT}/{user}").json()
    for body, version in ((before, "1"), (after, "2")):
        assert body["model"]["version"] == body["value"]["model"]["version"] == version
        assert body["generation_id"] == f"gen-{version}" and body["value"]["run_id"] == f"run-{version}"


def test_a_flip_between_the_pointer_and_the_value_read_answers_from_the_new_generation(store, client):
    """The ingester may flip and drop the generation a request started from; the answer is then wholly the new one's."""
    user = ROLLOUT_IDS[0]
    publish(store, "1")
    reads = {"get": store.get, "get_many": store.get_many}

    def flip_first(op):
        def read(namespace, keys):
            if reads.get(op + "-flipped") is None:
                reads[op + "-flipped"] = True
                publish(store, "2" if op == "get" else "3")
                store.drop(namespace)
            return reads[op](namespace, keys)
        return read

    store.get, store.get_many = flip_first("get"), flip_first("get_many")
    single = client.get(f"/v1/{EXPERIMENT}/{user}").json()
    assert single["fallback"] is False and single["model"]["version"] == single["value"]["model"]["version"] == "2"
    batch = client.post(f"/v1/{EXPERIMENT}/batch", json={"keys": ROLLOUT_IDS[:10]}).json()
    assert batch["model"]["version"] == "3" and batch["generation_id"] == "gen-3"
    assert all(r["fallback"] is False and r["value"]["model"]["version"] == "3" for r in batch["results"])
