"""`make bench`: every benchmark in turn, each in its own process, then one table of the product against its baselines.

    .venv/bin/python benchmarks/run_all.py [--only NAME,...] [--skip NAME,...]

The benchmarks that read a registered world (monitoring, tracking) get one registered here, in a temporary home at the
default preset; nothing is written under the project's own home. Each benchmark prints its details as it runs; the
rows it records (`summary.record`) are gathered and printed together at the end, so a regression shows in one place.
Needs the local Kafka (`make kafka-up`); the serving benchmarks also use Redis when REDIS_URL is set.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from summary import SUMMARY_FILE, read_rows, table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# (name, arguments, needs the registered default world), cheapest first.
BENCHMARKS = (
    ("cli", [], False),
    ("configs", [], False),
    ("topk", [], False),
    ("publication", [], False),
    ("registry", [], False),
    ("generation", [], False),
    ("monitoring", [], True),
    ("tracking", [], True),
    ("run", [], False),
    ("quality", [], False),
    ("serving_ingest", [], False),
    ("serving_api", [], False),
)


def register_default_world(home: Path) -> None:
    """prod_discovery's default-preset world registered under `home`, for the benchmarks that read one."""
    code = ("from ok_ml_assets.configs import load_experiment_config; from ok_ml_assets.settings import load_settings; "
            "from ok_ml_assets.registry import registry_client; from ok_ml_assets.orchestration import register_synthetic; "
            "s = load_settings(); register_synthetic(registry_client(s), "
            "[load_experiment_config(s.configs_dir / 'prod_discovery.yml')], 'default', 7)")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "OK_ML_HOME": str(home)}, check=True, cwd=ROOT)


def chosen(only: str | None, skip: str | None) -> list[tuple[str, list[str], bool]]:
    """The benchmarks to run, in order."""
    names = {name for name, _, _ in BENCHMARKS}
    wanted = set(only.split(",")) if only else names
    unwanted = set(skip.split(",")) if skip else set()
    unknown = (wanted | unwanted) - names
    if unknown:
        sys.exit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(name for name, _, _ in BENCHMARKS)}")
    return [b for b in BENCHMARKS if b[0] in wanted - unwanted]


def main() -> None:
    """Run the chosen benchmarks and print the summary table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--skip", help="comma-separated benchmark names")
    arguments = parser.parse_args()
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        summary, world_home = Path(tmp) / "summary.jsonl", Path(tmp) / "home"
        benchmarks = chosen(arguments.only, arguments.skip)
        if any(needs_world for _, _, needs_world in benchmarks):
            print("== registering the default world for the benchmarks that read one", flush=True)
            register_default_world(world_home)
        for name, extra, needs_world in benchmarks:
            print(f"\n== bench_{name}", flush=True)
            env = {**os.environ, SUMMARY_FILE: str(summary)}
            if needs_world:
                env["OK_ML_HOME"] = str(world_home)
            started = time.perf_counter()
            code = subprocess.run([sys.executable, str(HERE / f"bench_{name}.py"), *extra], env=env, cwd=ROOT).returncode
            print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
            if code != 0:
                failed.append(name)
        print("\n== summary: the product beside its baseline, measured in this run\n")
        print(table(read_rows(summary)))
    if failed:
        sys.exit(f"\nbenchmarks that failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
