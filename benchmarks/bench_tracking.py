"""What MLflow tracking and the Model Registry add to one training, at the default preset.

Run after `make run` (it reads the registered default world): `.venv/bin/python benchmarks/bench_tracking.py`.
Baseline: the same training (holdout evaluation + final fit) without any MLflow call, in the same process.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from registered import prod_discovery_inputs  # benchmarks/ is on sys.path when a script runs
from summary import record

from ok_ml_assets.lifecycle import promote_challenger
from ok_ml_assets.lifecycle.assets import TrainingOrigin, promotion_policy
from ok_ml_assets.pipeline_types.recommendation_als.builder import log_recommender
from ok_ml_assets.pipeline_types.recommendation_als.recipe import run_recipe
from ok_ml_assets.resources.mlflow import MlflowResource


def main() -> None:
    """Print the wall time of training alone and of each MLflow step on top of it."""
    config, inputs = prod_discovery_inputs()
    values = run_recipe(config, inputs, targets=("user_source_features", "subscribed_pairs", "holdout_split"))
    features, subscribed = values["user_source_features"], values["subscribed_pairs"]

    start = time.perf_counter()
    values = run_recipe(config, values, targets=("holdout_report", "embeddings"))
    training = time.perf_counter() - start
    metrics, embeddings = values["holdout_report"].as_metrics(), values["embeddings"]
    table = run_recipe(config, values)["recommendations"]

    with tempfile.TemporaryDirectory() as tmp:
        mlflow = MlflowResource(tracking_uri=f"sqlite:///{Path(tmp) / 'bench.db'}", artifact_root=Path(tmp, "art").as_uri())
        mlflow.experiment_id("prod_discovery")
        timings = {}
        start = time.perf_counter()
        registered = log_recommender(mlflow, config, metrics, TrainingOrigin({"trained_by": "benchmark"}, []), embeddings, subscribed)
        timings["log run, model and register challenger"] = time.perf_counter() - start
        start = time.perf_counter()
        promote_challenger(mlflow, registered.name, registered.version, promotion_policy(config))
        timings["promotion gate and decision tags"] = time.perf_counter() - start
        start = time.perf_counter()
        mlflow.log_predictions(registered.run_id, table)
        timings["log recommendations artifact"] = time.perf_counter() - start

    added = sum(timings.values())
    print(f"users {len(embeddings.user_ids):,}, sources {len(embeddings.source_ids):,}, feature rows {len(features):,}")
    print(f"{'baseline: training without tracking':45} {training:7.2f} s")
    for name, seconds in timings.items():
        print(f"{name:45} {seconds:7.2f} s")
    print(f"{'tracking + registry added':45} {added:7.2f} s  ({added / training:.0%} of the training)")
    record("training with MLflow tracking and registry", training + added, training, "s", "training alone")


if __name__ == "__main__":
    main()
