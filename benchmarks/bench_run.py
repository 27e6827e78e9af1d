"""A whole `ok-ml run` of prod_discovery against a bare script doing the same work, both as fresh processes.

Run from the project root: `.venv/bin/python benchmarks/bench_run.py [--preset default]` (needs the local Kafka:
`make kafka-up`). A synthetic world is registered once in a temporary folder; then, on that registry,
- the product: `ok-ml run --experiment prod_discovery` in an empty home (a fresh Dagster instance and MLflow store):
  dataset partitions with their contracts, features, holdout evaluation with its baselines, final fit, top-K,
  monitoring checks, MLflow tracking and the Model Registry gate, publication of the rollout arm to Kafka;
- the baseline, `benchmarks/bare_refresh.py`: the recipe's stages and a transactional producer, nothing else.
Both publish to topics of their own. Import time is read from each process's `-X importtime` report (the sum of
its top-level imports), so the imports of a run process are measured too, not guessed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from summary import record  # benchmarks/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STEP = re.compile(r"✓ (\S+) ([\d.]+) s")
# `import time:       self [us] |   cumulative | imported package`: a top-level import has no leading spaces in its name.
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")


def bootstrap() -> str:
    """The local broker's address, as the product computes it."""
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or f"127.0.0.1:{os.environ.get('OK_ML_KAFKA_PORT', '9092')}"


def write_config(folder: Path, topic: str) -> Path:
    """prod_discovery's committed YAML with a topic of this run, alone in a configs folder."""
    config = yaml.safe_load((ROOT / "asset_configs" / "prod_discovery.yml").read_text())
    config["publication"]["topic"] = topic
    folder.mkdir(parents=True)
    path = folder / "prod_discovery.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def register_world(seed_home: Path, configs: Path, preset: str) -> dict[str, str]:
    """Register prod_discovery's synthetic world under `seed_home`; return the environment that points a run at it."""
    env = {"OK_ML_REGISTRY_REPO": str(seed_home / "registry"), "OK_ML_DVC_REMOTE": str(seed_home / "dvc-remote"),
           "OK_ML_CONFIGS_DIR": str(configs)}
    code = ("from ok_ml_assets.configs import load_experiment_configs; from ok_ml_assets.settings import load_settings; "
            "from ok_ml_assets.registry import registry_client; from ok_ml_assets.orchestration import register_synthetic; "
            "s = load_settings(); register_synthetic(registry_client(s), load_experiment_configs(s.configs_dir), "
            f"{preset!r}, 7)")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "OK_ML_HOME": str(seed_home), **env}, check=True,
                   capture_output=True)
    return env


def recipe_inputs(env: dict[str, str], seed_home: Path, target: Path) -> None:
    """Write the registered windows of prod_discovery as the bare script reads them."""
    code = ("import json, sys; sys.path.insert(0, 'benchmarks'); from registered import prod_discovery_inputs; "
            "_, inputs = prod_discovery_inputs(); "
            "print(json.dumps({r: [[f.day.isoformat(), str(f.path)] for f in files] for r, files in inputs.items()}))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "OK_ML_HOME": str(seed_home), **env},
                         check=True, capture_output=True, text=True, cwd=ROOT)
    target.write_text(out.stdout)


def create_topic(topic: str, partitions: int = 6) -> None:
    """A topic for the bare script (the product creates its own)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap()})
    admin.create_topics([NewTopic(topic, num_partitions=partitions)])[topic].result(30)


def import_seconds(*texts: str) -> float:
    """The sum of a process's top-level imports, from its `-X importtime` report."""
    micros = 0
    for text in texts:
        for line in text.splitlines():
            match = IMPORT_LINE.match(line)
            if match and not match.group(2).startswith(" "):
                micros += int(match.group(1))
    return micros / 1e6


def run_product(preset: str, home: Path, env: dict[str, str]) -> dict:
    """`ok-ml run` of prod_discovery in an empty home on the registered world: wall, imports and step times."""
    log = home / "logs" / "ok-ml.log"
    # The log is appended to: only what this run wrote counts.
    offset = log.stat().st_size if log.exists() else 0
    started = time.perf_counter()
    proc = subprocess.run([str(BIN / "ok-ml"), "run", "--preset", preset, "--experiment", "prod_discovery"],
                          env={**os.environ, **env, "OK_ML_HOME": str(home), "PYTHONPROFILEIMPORTTIME": "1", "DAGSTER_HOME": ""},
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    log_text = log.read_bytes()[offset:].decode(errors="replace") if log.exists() else ""
    if proc.returncode != 0:
        sys.exit(f"ok-ml run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    steps = {name: float(seconds) for name, seconds in STEP.findall(proc.stdout)}
    published = re.search(r"^  published \d+ messages", proc.stdout, re.MULTILINE) is not None
    return {"wall": wall, "imports": import_seconds(proc.stderr, log_text), "steps": steps, "published": published,
            "stdout": proc.stdout}


def run_bare(inputs: Path, config: Path) -> dict:
    """The bare script in a fresh process: wall, imports and its own timings."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bare_refresh.py"), str(inputs), str(config)],
                          env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1", "OK_ML_BENCH_BOOTSTRAP": bootstrap()},
                          capture_output=True, text=True, cwd=ROOT, check=True)
    wall = time.perf_counter() - started
    return {"wall": wall, "imports": import_seconds(proc.stderr), **json.loads(proc.stdout.strip().splitlines()[-1])}


def main() -> None:
    """Print the product's run beside the bare script's, then the product's steps."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="default")
    preset = parser.parse_args().preset
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        product_config = write_config(tmp_path / "configs", f"bench-run-{tag}.recommendations")
        bare_config = write_config(tmp_path / "bare-configs", f"bench-bare-{tag}.recommendations")
        started = time.perf_counter()
        env = register_world(tmp_path / "seed", product_config.parent, preset)
        print(f"{preset} world registered in {time.perf_counter() - started:.1f} s (not timed below)")
        recipe_inputs(env, tmp_path / "seed", tmp_path / "inputs.json")
        create_topic(f"bench-bare-{tag}.recommendations")
        bare = run_bare(tmp_path / "inputs.json", bare_config)
        first = run_product(preset, tmp_path / "home", env)
        # The same home again: the daily refresh of a running product (instance and MLflow store exist, partitions done).
        again = run_product(preset, tmp_path / "home", env)
        shutil.rmtree(tmp_path / "home", ignore_errors=True)
    report(preset, first, again, bare)


def report(preset: str, first: dict, again: dict, bare: dict) -> None:
    """Print the runs side by side and record the headline rows."""
    print(f"\nprod_discovery at the {preset} preset, each a fresh process ({os.cpu_count()} cores)")
    print(f"  {'':34} {'product':>10} {'bare script':>12} {'ratio':>7}")
    for label, product in (("first run, empty home, wall", first), ("daily refresh (same home), wall", again)):
        print(f"  {label:34} {product['wall']:8.1f} s {bare['wall']:10.1f} s {product['wall'] / bare['wall']:6.2f}x")
    print(f"  {'imports (-X importtime)':34} {again['imports']:8.1f} s {bare['imports']:10.1f} s "
          f"{again['imports'] / bare['imports']:6.1f}x")
    print(f"  bare script: compute {bare['compute']:.1f} s, publish {bare['publish']:.1f} s")
    for label, product in (("first run", first), ("daily refresh", again)):
        if not product["published"]:
            print(f"  ! the product's {label} did not publish (a refused gate or a dirty source tree): not comparable")
        print(f"  {label} steps (s): " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in product["steps"].items()))
    record(f"whole run, {preset} preset, empty home (wall)", first["wall"], bare["wall"], "s", "bare script", "at most 1.25x")
    record(f"daily refresh, {preset} preset (wall)", again["wall"], bare["wall"], "s", "bare script", "at most 1.25x")
    record("imports of a run process", again["imports"], bare["imports"], "s", "bare script's imports")


if __name__ == "__main__":
    main()
