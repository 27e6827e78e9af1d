"""Publication of a recommendation table against a bare transactional producer, in one run on the local broker.

    .venv/bin/python benchmarks/bench_publication.py [--users 200000] [--top-k 20] [--sources 5000] [--repeats 3]

A table like prod_discovery's (top-K sources per user, float32 scores) is published three ways, each to a fresh topic:
the product (`publish_rollout`: rollout arm, fallback, encoding, the transaction with its delivery checks and trailers,
from the DataFrame to the commit), the product's send path fed by the per-row JSON encoding it had before ("before"),
and a bare confluent-kafka transactional producer sending the product's own encoded messages, encoded beforehand, with
the product's producer settings. Each figure is the best of the repeats; the paths take turns so a busy machine slows
them alike. Needs the local Kafka (`make kafka-up`; KAFKA_BOOTSTRAP_SERVERS or OK_ML_KAFKA_PORT to point elsewhere).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from confluent_kafka import Producer
from summary import record

from ok_ml_assets.configs import ExperimentConfig, load_experiment_config
from ok_ml_assets.lifecycle.operations import publish_rollout
from ok_ml_assets.lifecycle.publication import ROLLOUT, BatchEnd, Provenance, publish_messages, with_arms
from ok_ml_assets.pipeline_types import pipeline_type
from ok_ml_assets.resources.kafka import KafkaResource
from ok_ml_assets.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


def recommendation_table(users: int, top_k: int, sources: int, seed: int = 0) -> pd.DataFrame:
    """Per user, `top_k` distinct sources best first with float32 scores, as lists (what scoring hands to publication)."""
    rng = np.random.default_rng(seed)
    items = np.argsort(rng.random((users, sources), dtype=np.float32), axis=1)[:, :top_k] if sources <= 5_000 else \
        rng.integers(0, sources, (users, top_k))
    scores = -np.sort(-rng.gamma(2.0, 0.15, (users, top_k)).astype(np.float32), axis=1).astype(np.float64)
    return pd.DataFrame({"user_id": rng.choice(10 * users, users, replace=False).astype(np.int64) + 1,
                         "source_ids": items.tolist(), "scores": scores.tolist()})


def config_for(base: ExperimentConfig, topic: str) -> ExperimentConfig:
    """The experiment's config publishing to `topic`."""
    return base.model_copy(update={"publication": base.publication.model_copy(update={"topic": topic})})


# The publication path as it was before bulk encoding: per-entity rollout hash, per-row json.dumps of each message.
def rollout_before(entity_ids, fraction: float, salt: str) -> np.ndarray:
    """The A/B arm as the per-entity loop chose it."""
    def bucket(entity_id: int) -> float:
        return int.from_bytes(hashlib.sha256(f"{salt}:{entity_id}".encode()).digest()[:8], "big") / 2**64
    return np.fromiter((bucket(int(u)) < fraction for u in entity_ids), dtype=bool, count=len(entity_ids))


def messages_before(rows: pd.DataFrame, provenance: Provenance):
    """(key, value) of each user as the per-row encoder wrote them."""
    for user_id, source_ids, scores in zip(rows["user_id"], rows["source_ids"], rows["scores"]):
        body = {"schema": "ok_ml.recommendations", "version": 1, "user_id": int(user_id),
                "items": [{"source_id": int(s), "score": round(float(c), 6)} for s, c in zip(source_ids, scores)],
                "experiment": provenance.experiment, "model": {"name": provenance.model_name, "version": provenance.model_version},
                "run_id": provenance.run_id, "generated_at": provenance.generated_at}
        yield str(int(user_id)).encode(), json.dumps(body, separators=(",", ":")).encode()


def publish_before(kafka: KafkaResource, config: ExperimentConfig, table: pd.DataFrame, provenance: Provenance) -> float:
    """Seconds for the old path: per-entity rollout, per-row encoding, the product's send path and trailers."""
    started = time.perf_counter()
    chosen = rollout_before(table["user_id"].to_numpy(), config.publication.rollout_fraction, config.publication.salt)
    rollout = table[chosen]
    fallback = pipeline_type(config.pipeline_type).fallback(config, rollout)
    publish_messages(kafka, config.publication, messages_before(rollout, provenance), BatchEnd(provenance, config.publication, fallback))
    return time.perf_counter() - started


def publish_product(kafka: KafkaResource, config: ExperimentConfig, table: pd.DataFrame, provenance: Provenance) -> float:
    """Seconds for the product's publication of the table, from the DataFrame to the committed transaction."""
    started = time.perf_counter()
    publish_rollout(kafka, config, table, provenance, "2026-11-29")
    return time.perf_counter() - started


def publish_bare(settings: dict, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    """Seconds for a bare transactional producer to send pre-encoded messages and commit."""
    started = time.perf_counter()
    producer = Producer(settings)
    producer.init_transactions(30)
    producer.begin_transaction()
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush(120)
    producer.commit_transaction(60)
    return time.perf_counter() - started


def encoded_rollout(config: ExperimentConfig, table: pd.DataFrame, provenance: Provenance) -> list[tuple[bytes, bytes]]:
    """The product's encoded messages of the rollout arm (what the bare producer sends)."""
    rollout = with_arms(table, config.publication, "2026-11-29")
    return list(pipeline_type(config.pipeline_type).encode_messages(config, rollout[rollout["arm"] == ROLLOUT], provenance))


def stages(config: ExperimentConfig, table: pd.DataFrame, provenance: Provenance) -> dict[str, float]:
    """Seconds of the product's steps before the broker (rollout arms, fallback, encoding), and of the old encoding."""
    kind, timings = pipeline_type(config.pipeline_type), {}
    started = time.perf_counter()
    arms = with_arms(table, config.publication, "2026-11-29")
    rollout = arms[arms["arm"] == ROLLOUT]
    timings["rollout arms (sha256 per user)"] = time.perf_counter() - started
    started = time.perf_counter()
    kind.fallback(config, rollout)
    timings["fallback (most recommended sources)"] = time.perf_counter() - started
    started = time.perf_counter()
    for _ in kind.encode_messages(config, rollout, provenance):
        pass
    timings["encoding, product (bulk, chunked)"] = time.perf_counter() - started
    started = time.perf_counter()
    for _ in messages_before(rollout, provenance):
        pass
    timings["encoding, before (per-row json.dumps)"] = time.perf_counter() - started
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--sources", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    kafka = KafkaResource(bootstrap_servers=load_settings().kafka_bootstrap_servers)
    kafka.require_reachable()
    base = load_experiment_config(ROOT / "asset_configs" / "prod_discovery.yml")
    table = recommendation_table(args.users, args.top_k, args.sources)
    provenance = Provenance(base.experiment_name, base.experiment_name, "1", "bench-run")
    messages = encoded_rollout(base, table, provenance)
    size = sum(len(k) + len(v) for k, v in messages)
    assert messages == list(messages_before(table[rollout_before(table["user_id"].to_numpy(), base.publication.rollout_fraction,
                                                                 base.publication.salt)], provenance)), "encodings differ"
    paths = {"bare transactional producer (pre-encoded)": lambda c: publish_bare(kafka.producer_config(c.publication.topic),
                                                                                 c.publication.topic, messages),
             "product (publish_rollout, DataFrame to commit)": lambda c: publish_product(kafka, c, table, provenance),
             "before (per-row json.dumps, same send path)": lambda c: publish_before(kafka, c, table, provenance)}
    best = dict.fromkeys(paths, float("inf"))
    for _ in range(args.repeats):
        for name, publish in paths.items():
            config = config_for(base, f"bench.publication.{uuid.uuid4().hex[:12]}")
            kafka.ensure_topic(config.publication.topic, config.publication.partitions)
            best[name] = min(best[name], publish(config))
    print(f"{args.users:,} users x top-{args.top_k}, rollout {base.publication.rollout_fraction:.0%}: {len(messages):,} messages, "
          f"{size / len(messages):,.0f} bytes each, {base.publication.partitions} partitions, lz4; best of {args.repeats}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    bare = best["bare transactional producer (pre-encoded)"]
    print(f"{'path':50} {'seconds':>8} {'msg/s':>10} {'MB/s':>7} {'vs bare':>8}")
    for name, seconds in best.items():
        print(f"{name:50} {seconds:8.2f} {len(messages) / seconds:10,.0f} {size / seconds / 1e6:7.1f} {bare / seconds:8.2f}")
    print(f"{'where the product spends it (no broker)':50} {'seconds':>8}")
    for name, seconds in stages(base, table, provenance).items():
        print(f"{name:50} {seconds:8.2f}")
    product = best["product (publish_rollout, DataFrame to commit)"]
    record(f"publication, {args.users // 1000}k users x top-{args.top_k} (msg/s)", len(messages) / product, len(messages) / bare, "msg/s",
           "bare transactional producer", "at least 0.7x")


if __name__ == "__main__":
    main()
