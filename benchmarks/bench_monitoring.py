"""Monitoring's share of the pipeline's wall time at the default preset, cold (first call in a process) and warm.

Run after `make run` (it reads the registered default world): `.venv/bin/python benchmarks/bench_monitoring.py`.
Baseline: the pipeline's own compute in the same process (features, holdout evaluation, final fit, top-K).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from registered import prod_discovery_inputs  # benchmarks/ is on sys.path when a script runs

from ok_ml_assets.monitoring import ReferenceStore, monitor
from ok_ml_assets.pipeline_types.recommendation_als.recipe import run_recipe


def timed(action):
    """(seconds, result) of calling `action`."""
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def main() -> None:
    """Print the pipeline's compute time and what the monitoring rules add to it."""
    config, inputs = prod_discovery_inputs()

    def pipeline():
        values = run_recipe(config, inputs, targets=("holdout_report", "recommendations"))
        return values["user_source_features"], values["subscribed_pairs"], values["recommendations"]

    compute, (features, subscribed, recommendations) = timed(pipeline)
    context = {"user_source_features": features, "subscribed_pairs": subscribed}
    with tempfile.TemporaryDirectory() as tmp:
        store = ReferenceStore(Path(tmp))

        def monitoring():
            monitor(store, "bench", "user_source_features", config.monitoring["user_source_features"], features)
            monitor(store, "bench", "recommendations", config.monitoring["recommendations"], recommendations, context)
            store.record_published("bench", "recommendations", recommendations)

        cold, _ = timed(monitoring)
        warm, _ = timed(monitoring)  # with a reference and published lists: every drift and novelty rule evaluates

    rules = sum(len(r) for r in config.monitoring.values())
    print(f"features {len(features):,} rows, recommendations {len(recommendations):,} users, {rules} rules")
    print(f"{'baseline: pipeline compute':46} {compute:7.2f} s")
    print(f"{'monitoring, first call (imports GX)':46} {cold:7.2f} s  ({cold / (compute + cold):.1%} of pipeline + monitoring)")
    print(f"{'monitoring, warm, against a reference':46} {warm:7.2f} s  ({warm / (compute + warm):.1%} of pipeline + monitoring)")


if __name__ == "__main__":
    main()
