"""The baseline of bench_run.py: prod_discovery's refresh as a bare script, the same work with the same libraries.

    python benchmarks/bare_refresh.py INPUTS.json CONFIG.yml

It runs the recipe's stages (features, holdout split, holdout evaluation with its baselines, final fit, top-K), keeps
the rollout arm and publishes it to the config's topic with one transactional confluent-kafka producer (the
product's settings), without Dagster, MLflow, monitoring or the registry. It prints one JSON line of timings.
INPUTS.json maps each recipe input (interactions, subscriptions) to its registered [day, path] pairs.
"""

import time

STARTED = time.perf_counter()

import datetime as dt  # noqa: E402  (imports are part of what is timed)
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import orjson  # noqa: E402
from confluent_kafka import Producer  # noqa: E402

from ok_ml_assets.configs import load_experiment_config  # noqa: E402
from ok_ml_assets.lifecycle.publication import in_rollout  # noqa: E402
from ok_ml_assets.pipeline_types.recommendation_als.recipe import DailyFile, run_recipe  # noqa: E402

IMPORTED = time.perf_counter()


def read_inputs(path: Path) -> dict[str, list[DailyFile]]:
    """The recipe's inputs from the JSON the benchmark wrote."""
    raw = json.loads(path.read_text())
    return {role: [DailyFile(dt.date.fromisoformat(day), Path(file)) for day, file in files] for role, files in raw.items()}


def messages(recommendations, config) -> list[tuple[bytes, bytes]]:
    """(key, value) of each user of the rollout arm, values as compact JSON like the product's envelope."""
    chosen = in_rollout(recommendations["user_id"].to_numpy(), config.publication.rollout_fraction, config.publication.salt)
    rows = recommendations[chosen]
    now = dt.datetime.now(dt.UTC).isoformat()
    return [
        (str(user).encode(), orjson.dumps({
            "schema": "ok_ml.recommendations", "version": 1, "user_id": int(user),
            "items": [{"source_id": s, "score": round(c, 6)} for s, c in zip(sources, scores)],
            "experiment": config.experiment_name, "model": {"name": config.experiment_name, "version": "bare"},
            "run_id": "bare", "generated_at": now}))
        for user, sources, scores in zip(rows["user_id"], rows["source_ids"], rows["scores"])
    ]


def publish(topic: str, batch: list[tuple[bytes, bytes]]) -> None:
    """Send every message in one transaction with the product's producer settings."""
    producer = Producer({"bootstrap.servers": os.environ["OK_ML_BENCH_BOOTSTRAP"], "transactional.id": f"bare-{topic}",
                         "enable.idempotence": True, "acks": "all", "compression.type": "lz4", "linger.ms": 20,
                         "batch.size": 1 << 20, "queue.buffering.max.messages": 1_000_000})
    producer.init_transactions(30)
    producer.begin_transaction()
    for key, value in batch:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(120)
    producer.commit_transaction(60)


def main() -> None:
    """Run the refresh and print its timings."""
    inputs, config = read_inputs(Path(sys.argv[1])), load_experiment_config(Path(sys.argv[2]))
    started = time.perf_counter()
    values = run_recipe(config, inputs, targets=("holdout_report", "recommendations"))
    computed = time.perf_counter()
    publish(config.publication.topic, messages(values["recommendations"], config))
    published = time.perf_counter()
    print(json.dumps({"imports": IMPORTED - STARTED, "compute": computed - started, "publish": published - computed,
                      "total": published - STARTED}))


if __name__ == "__main__":
    main()
