"""What MLflow tracking and the Model Registry add to one training, at the default preset.

Run after `make run` (it reads the registered default world): `.venv/bin/python benchmarks/bench_tracking.py`.
Baseline: the same training (holdout evaluation + final fit) without any MLflow call, in the same process.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ok_ml_assets.factories.recommendation_als import embedding_arrays, promotion_policy
from ok_ml_assets.lifecycle import promote_challenger
from ok_ml_assets.pipelines.features import read_pairs
from ok_ml_assets.pipelines.lineage import flatten
from ok_ml_assets.pipelines.recommender import (
    recommend,
    train_recommender,
    window_features,
)
from ok_ml_assets.resources.mlflow import MlflowResource, metrics_json
from registered import prod_discovery_inputs  # benchmarks/ is on sys.path when a script runs


def main() -> None:
    """Print the wall time of training alone and of each MLflow step on top of it."""
    config, interactions, subscription_files = prod_discovery_inputs()
    subscribed = read_pairs(subscription_files)
    features = window_features(interactions, config)

    start = time.perf_counter()
    outcome = train_recommender(interactions, features, subscribed, config)
    training = time.perf_counter() - start
    table = recommend(outcome.embeddings, subscribed, config.recommendations.top_k)

    with tempfile.TemporaryDirectory() as tmp:
        mlflow = MlflowResource(tracking_uri=f"sqlite:///{Path(tmp) / 'bench.db'}", artifact_root=Path(tmp, "art").as_uri())
        mlflow.experiment_id("prod_discovery")
        timings = {}
        start = time.perf_counter()
        registered = mlflow.log_training(
            "prod_discovery", flatten(config.model_dump(mode="json")), outcome.report.as_metrics(),
            {"trained_by": "benchmark"}, {"config.yml": config.source_text, "metrics.json": metrics_json(outcome.report.as_metrics())},
            embedding_arrays(outcome.embeddings, subscribed, config.recommendations.top_k),
        )
        timings["log run, model and register challenger"] = time.perf_counter() - start
        start = time.perf_counter()
        promote_challenger(mlflow, registered.name, registered.version, promotion_policy(config))
        timings["promotion gate and decision tags"] = time.perf_counter() - start
        start = time.perf_counter()
        mlflow.log_recommendations(registered.run_id, table)
        timings["log recommendations artifact"] = time.perf_counter() - start

    added = sum(timings.values())
    print(f"users {len(outcome.embeddings.user_ids):,}, sources {len(outcome.embeddings.source_ids):,}, feature rows {len(features):,}")
    print(f"{'baseline: training without tracking':45} {training:7.2f} s")
    for name, seconds in timings.items():
        print(f"{name:45} {seconds:7.2f} s")
    print(f"{'tracking + registry added':45} {added:7.2f} s  ({added / training:.0%} of the training)")


if __name__ == "__main__":
    main()
