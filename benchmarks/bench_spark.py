"""The Spark engine: its refresh against a bare PySpark script, and local against Spark at each preset.

Run from the project root: `.venv/bin/python benchmarks/bench_spark.py [--presets tiny,default] [--bare-preset default]`
(needs the local Kafka: `make kafka-up`; `--presets tiny,default,large --once large` adds the large world, each engine
run once there, about an hour and a half here).
For each preset a synthetic world is registered once in a temporary folder; on it, each a fresh process in its own home:
- `ok-ml run --experiment prod_discovery` with engine local, then engine spark (OK_ML_ENGINE), each run twice (the first
  in an empty home, the second the daily refresh of a running product, which is what is compared);
- at `--bare-preset`, `benchmarks/bare_spark_refresh.py`: the recipe's stages on the Spark engine in a plain session, a
  parquet write and a transactional producer, without Dagster, MLflow, monitoring or the registry.
Peak memory is the largest process of each run (the Python driver or Spark's JVM), from the children's rusage.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench_run import ROOT, bootstrap, create_topic, recipe_inputs, register_world, run_product, write_config
from summary import record  # benchmarks/ is on sys.path when a script runs


def peak_gb_since(before: int) -> float:
    """The largest child process's peak RSS so far, in GB (rusage keeps a maximum, so only a new maximum shows)."""
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(peak, before) / 1024 / 1024


def product_refresh(preset: str, home: Path, env: dict[str, str], engine: str, once: bool = False) -> dict:
    """Two `ok-ml run`s on one engine in one home, the second (the daily refresh) compared; `once`: the first alone."""
    env = {**env, "OK_ML_ENGINE": engine, "OK_ML_SPARK_DIR": str(home / "spark")}
    first = run_product(preset, home, env)
    if once:
        return {**first, "first_wall": first["wall"], "peak_gb": peak_gb_since(0), "runs": "first run"}
    again = run_product(preset, home, env)
    again["runs"] = "daily refresh"
    again["first_wall"] = first["wall"]
    again["peak_gb"] = peak_gb_since(0)
    return again


def run_bare_spark(inputs: Path, config: Path, spark_dir: Path) -> dict:
    """The bare PySpark script in a fresh process: wall and its own timings."""
    started = time.perf_counter()
    env = {**os.environ, "OK_ML_BENCH_BOOTSTRAP": bootstrap(), "OK_ML_SPARK_DIR": str(spark_dir)}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bare_spark_refresh.py"), str(inputs), str(config)],
                          env=env, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"bare_spark_refresh.py failed:\n{proc.stderr[-3000:]}")
    return {"wall": time.perf_counter() - started, **json.loads(proc.stdout.strip().splitlines()[-1])}


def bench_preset(preset: str, tmp: Path, with_bare: bool, once: bool) -> dict:
    """Register the preset's world, then time both engines (and the bare script) on it."""
    tag = uuid.uuid4().hex[:8]
    product_config = write_config(tmp / f"configs-{preset}", f"bench-spark-{tag}.recommendations")
    started = time.perf_counter()
    env = register_world(tmp / f"seed-{preset}", product_config.parent, preset)
    print(f"{preset} world registered in {time.perf_counter() - started:.1f} s (not timed below)", flush=True)
    found = {}
    for engine in ("local", "spark"):
        found[engine] = product_refresh(preset, tmp / f"home-{preset}-{engine}", env, engine, once)
        print(f"  {preset} {engine}: {found[engine]['runs']} {found[engine]['wall']:.1f} s (first run {found[engine]['first_wall']:.1f} s)",
              flush=True)
        shutil.rmtree(tmp / f"home-{preset}-{engine}", ignore_errors=True)
    if with_bare:
        bare_config = write_config(tmp / f"bare-configs-{preset}", f"bench-bare-spark-{tag}.recommendations")
        recipe_inputs(env, tmp / f"seed-{preset}", tmp / f"inputs-{preset}.json")
        create_topic(f"bench-bare-spark-{tag}.recommendations")
        found["bare"] = run_bare_spark(tmp / f"inputs-{preset}.json", bare_config, tmp / "bare-spark")
    shutil.rmtree(tmp / f"seed-{preset}", ignore_errors=True)
    return found


def report(results: dict[str, dict], bare_preset: str) -> None:
    """Print local against Spark per preset, the crossover, and the Spark refresh against the bare script; record the rows."""
    print("\nprod_discovery (`ok-ml run`: the daily refresh, the second run in its home, unless --once), local against spark, "
          "each a fresh process")
    print(f"  {'preset':8} {'run':14} {'local':>9} {'spark':>9} {'spark/local':>12}   steps on spark (s)")
    crossover = None
    for preset, found in results.items():
        local, spark = found["local"], found["spark"]
        ratio = spark["wall"] / local["wall"]
        if ratio <= 1 and crossover is None:
            crossover = preset
        steps = ", ".join(f"{name} {seconds:.1f}" for name, seconds in spark["steps"].items())
        print(f"  {preset:8} {spark['runs']:14} {local['wall']:7.1f} s {spark['wall']:7.1f} s {ratio:11.2f}x   {steps}")
        for engine in ("local", "spark"):
            if not found[engine]["published"]:
                print(f"  ! {preset} {engine} did not publish (a refused gate or a dirty source tree): not comparable")
        record(f"{spark['runs']}, {preset} preset, spark engine", spark["wall"], local["wall"], "s", "local engine", "")
    verdict = f"Spark is faster from the {crossover} preset on" if crossover else "none: local is faster at every preset measured"
    print(f"  crossover: {verdict}")
    print(f"  peak RSS of the largest process so far: {max(f['spark']['peak_gb'] for f in results.values()):.1f} GB")
    bare = results.get(bare_preset, {}).get("bare")
    if bare:
        spark = results[bare_preset]["spark"]
        print(f"\nspark engine's refresh against a bare PySpark script, {bare_preset} preset")
        print(f"  ok-ml run (spark) {spark['wall']:.1f} s, bare script {bare['wall']:.1f} s: {spark['wall'] / bare['wall']:.2f}x "
              f"(bare: imports {bare['imports']:.1f} s, session {bare['session']:.1f} s, compute {bare['compute']:.1f} s, "
              f"publish {bare['publish']:.1f} s)")
        record(f"spark refresh, {bare_preset} preset (wall)", spark["wall"], bare["wall"], "s", "bare PySpark script", "at most 1.2x")


def main() -> None:
    """Benchmark each preset, then print the tables."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", default="tiny,default")
    parser.add_argument("--bare-preset", default="default")
    parser.add_argument("--once", default="", help="presets whose engines run once (the first run compared), e.g. large")
    args = parser.parse_args()
    presets, once = args.presets.split(","), set(filter(None, args.once.split(",")))
    with tempfile.TemporaryDirectory() as tmp:
        results = {preset: bench_preset(preset, Path(tmp), preset == args.bare_preset, preset in once) for preset in presets}
    report(results, args.bare_preset)


if __name__ == "__main__":
    main()
