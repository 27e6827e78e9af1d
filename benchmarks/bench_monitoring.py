"""Monitoring's share of a refresh at the default preset, cold and warm, with the value rules in numpy and in GX.

Run after `make run` (it reads the registered default world): `.venv/bin/python benchmarks/bench_monitoring.py`.
Baseline: the value rules on Great Expectations (`engine: great_expectations`, the engine before issue 14), measured
in the same run. Each engine runs in a fresh process, so "cold" pays that engine's imports; each process also times
the pipeline's own compute (features, holdout evaluation, final fit, top-K), which the shares are taken against.
The import of the monitoring path is a fresh interpreter that imports it and evaluates one value rule.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from summary import record, timed  # benchmarks/ is on sys.path when a script runs

ENGINES = ("great_expectations", "numpy")
IMPORT_PATH = """
import pandas as pd
from ok_ml_assets.monitoring.evaluate import evaluate
from ok_ml_assets.monitoring.rules import parse_monitoring
rules = parse_monitoring({"a": [{"rule": "not_null", "column": "x", "engine": "%s"}]})["a"]
evaluate("a", rules, pd.DataFrame({"x": [1.0]}))
"""


def with_engine(rules: list, engine: str) -> list:
    """The rules with every value rule on `engine`."""
    from ok_ml_assets.monitoring.rules import ValueRule

    return [rule.model_copy(update={"engine": engine}) if isinstance(rule, ValueRule) else rule for rule in rules]


def measure(engine: str) -> dict[str, float | int]:
    """In this process: the pipeline's compute, then its monitoring with value rules on `engine`, cold and warm."""
    import pandas as pd
    from registered import prod_discovery_inputs  # benchmarks/ is on sys.path when a script runs

    from ok_ml_assets.monitoring import ReferenceStore, monitor
    from ok_ml_assets.monitoring.daily import window_frame
    from ok_ml_assets.monitoring.rules import window_columns
    from ok_ml_assets.pipeline_types.recommendation_als.recipe import run_recipe

    config, inputs = prod_discovery_inputs()
    rules = {asset: with_engine(items, engine) for asset, items in config.monitoring.items()}

    def pipeline():
        values = run_recipe(config, inputs, targets=("holdout_report", "recommendations"))
        return values["user_source_features"], values["subscribed_pairs"], values["recommendations"]

    compute, (features, subscribed, recommendations) = timed(pipeline)
    columns = window_columns(rules["user_source_features"], "interactions")
    context = {"user_source_features": features, "subscribed_pairs": subscribed}
    with tempfile.TemporaryDirectory() as tmp:
        store = ReferenceStore(Path(tmp))

        def monitoring():
            # As the check does: the daily rules read the raw window the features were built from.
            window = window_frame((f.day.isoformat(), pd.read_parquet(f.path, columns=columns)) for f in inputs["interactions"])
            monitor(store, "bench", "user_source_features", rules["user_source_features"], features, {"interactions": window})
            monitor(store, "bench", "recommendations", rules["recommendations"], recommendations, context)
            store.record_published("bench", "recommendations", recommendations)

        cold, _ = timed(monitoring)
        warm, _ = timed(monitoring)  # with a reference and published lists: every drift and novelty rule evaluates
    return {"compute": compute, "cold": cold, "warm": warm, "features": len(features), "users": len(recommendations),
            "rules": sum(len(items) for items in rules.values())}


def in_fresh_process(engine: str) -> dict[str, float | int]:
    """`measure(engine)` in a new interpreter."""
    done = subprocess.run([sys.executable, __file__, "--engine", engine], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def import_seconds(engine: str, repeats: int = 2) -> float:
    """Best wall time of a fresh interpreter importing the monitoring path and evaluating one value rule on `engine`."""
    return min(timed(lambda: subprocess.run([sys.executable, "-c", IMPORT_PATH % engine], check=True, capture_output=True))[0]
               for _ in range(repeats))


def share(part: float, compute: float) -> str:
    return f"{part / (compute + part):6.1%}"


def main() -> None:
    """Print monitoring's share of the refresh with the value rules on GX (baseline) and in numpy, and the import cost."""
    results = {engine: in_fresh_process(engine) for engine in ENGINES}
    imports = {engine: import_seconds(engine) for engine in ENGINES}
    first = results["numpy"]
    print(f"features {first['features']:,} rows, recommendations {first['users']:,} users, {first['rules']} rules")
    print(f"{'value rules on':22} {'compute s':>9} {'cold s':>7} {'share':>6} {'warm s':>7} {'share':>6} {'import s':>9}")
    for engine in ENGINES:
        r = results[engine]
        label = "GX (baseline)" if engine == "great_expectations" else "numpy (product)"
        print(f"{label:22} {r['compute']:9.2f} {r['cold']:7.2f} {share(r['cold'], r['compute'])} {r['warm']:7.2f} "
              f"{share(r['warm'], r['compute'])} {imports[engine]:9.2f}")
    gx, numpy = results["great_expectations"], results["numpy"]
    print(f"monitoring numpy/GX: cold {numpy['cold'] / gx['cold']:.2f}x, warm {numpy['warm'] / gx['warm']:.2f}x; "
          f"import of the monitoring path {imports['numpy'] / imports['great_expectations']:.2f}x")
    print("share = monitoring / (pipeline compute + monitoring), each in its own process")
    for when in ("cold", "warm"):
        record(f"monitoring share of a refresh ({when})", 100 * numpy[when] / (numpy["compute"] + numpy[when]),
               100 * gx[when] / (gx["compute"] + gx[when]), "%", "value rules on GX", "at most 10 %")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--engine"]:
        print(json.dumps(measure(sys.argv[2])))
    else:
        main()
