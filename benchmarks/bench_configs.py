"""How the code location scales with experiments: definitions of 1, 10 and 100 YAMLs against merely parsing them.

Run: `.venv/bin/python benchmarks/bench_configs.py`. Each experiment is a copy of prod_discovery with its own name,
topic and salt. "parse" (the baseline) reads and validates the YAMLs; "definitions" builds every experiment, merges
them and resolves the asset graph (what `dagster asset list`, the asset UI and the sensors need); "+ jobs" also
resolves every job, as a code location server does for its snapshot. The aim is 100 configs < 3 s.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import yaml

from ok_ml_assets.configs import load_experiment_configs
from ok_ml_assets.definitions import build_definitions
from ok_ml_assets.settings import PROJECT_ROOT, load_settings

COUNTS = (1, 10, 100)
REPEATS = 3


def write_configs(folder: Path, count: int) -> None:
    """`count` experiment YAMLs derived from the committed prod_discovery."""
    base = yaml.safe_load((PROJECT_ROOT / "asset_configs" / "prod_discovery.yml").read_text())
    for i in range(count):
        name = f"experiment_{i:03d}"
        config = {**base, "experiment_name": name,
                  "publication": {**base["publication"], "topic": f"{name}.recommendations", "salt": f"{name}-ab"}}
        (folder / f"{name}.yml").write_text(yaml.safe_dump(config, sort_keys=False))


def best_of(action) -> float:
    """The fastest of a few runs, in seconds."""
    timings = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def load_definitions():
    """Build the definitions and resolve their asset graph."""
    defs = build_definitions(load_settings())
    defs.resolve_asset_graph()
    return defs


def load_definitions_and_jobs() -> None:
    """The definitions with every job resolved too."""
    load_definitions().resolve_all_job_defs()


def main() -> None:
    """Print, per number of configs, the definitions' load time beside the parse-only baseline."""
    build_definitions(load_settings())  # imports and caches warm, as in a running code location
    print(f"{'configs':>8} {'parse (baseline)':>18} {'definitions':>12} {'ratio':>7} {'+ jobs':>9}")
    for count in COUNTS:
        with tempfile.TemporaryDirectory() as tmp:
            write_configs(Path(tmp), count)
            os.environ["OK_ML_CONFIGS_DIR"] = tmp
            parse = best_of(lambda: load_experiment_configs(Path(tmp)))
            defs = best_of(load_definitions)
            jobs = best_of(load_definitions_and_jobs)
        print(f"{count:8d} {parse:16.3f} s {defs:10.3f} s {defs / parse:6.0f}x {jobs:7.3f} s")


if __name__ == "__main__":
    main()
