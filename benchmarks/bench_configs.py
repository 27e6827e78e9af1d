"""How the code location scales with experiments: the user's `dagster asset list` and the in-process definitions.

Run: `.venv/bin/python benchmarks/bench_configs.py`. Each experiment is a copy of prod_discovery with its own name,
topic and salt, written to a temporary OK_ML_CONFIGS_DIR.

The aim, "100 configs < 3 s", is on the user's figure: the wall time of a fresh `dagster asset list -m
ok_ml_assets.definitions` with 100 configs (process start, imports, building and merging every experiment, resolving
the asset graph, listing). It is printed beside the same command with 1 config, beside `dagster asset list` of a
one-asset module (Dagster's own floor for the command) and beside a bare `python -c "import dagster"`. Every process
reads compiled bytecode from a cache of its own (warmed by one unrecorded run), as an installed product does, even
when PYTHONDONTWRITEBYTECODE is set in the calling shell (it would recompile much of Dagster's CLI on every start).

In process, "parse" (the baseline) reads and validates the YAMLs; "definitions" builds every experiment, merges them
and resolves the asset graph (what `dagster asset list`, the asset UI and the sensors need); "+ jobs" also resolves
every job, as a code location server does for its snapshot.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from summary import record  # benchmarks/ is on sys.path when a script runs

from ok_ml_assets.configs import load_experiment_configs
from ok_ml_assets.definitions import build_definitions
from ok_ml_assets.settings import PROJECT_ROOT, load_settings

COUNTS = (1, 10, 100)
REPEATS = 3
CLI_COUNTS = (1, 100)
DAGSTER = Path(sys.executable).parent / "dagster"
ONE_ASSET = '''import dagster as dg


@dg.asset
def one() -> None:
    """A single asset."""


defs = dg.Definitions(assets=[one])
'''


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


def in_process() -> dict[int, float]:
    """Print, per number of configs, the definitions' load time beside the parse-only baseline; return the former."""
    build_definitions(load_settings())  # imports and caches warm, as in a running code location
    print(f"{'configs':>8} {'parse (baseline)':>18} {'definitions':>12} {'ratio':>7} {'+ jobs':>9}")
    definitions = {}
    for count in COUNTS:
        with tempfile.TemporaryDirectory() as tmp:
            write_configs(Path(tmp), count)
            os.environ["OK_ML_CONFIGS_DIR"] = tmp
            parse = best_of(lambda: load_experiment_configs(Path(tmp)))
            definitions[count] = best_of(load_definitions)
            jobs = best_of(load_definitions_and_jobs)
        print(f"{count:8d} {parse:16.3f} s {definitions[count]:10.3f} s {definitions[count] / parse:6.0f}x {jobs:7.3f} s")
    os.environ.pop("OK_ML_CONFIGS_DIR")
    return definitions


def process_env(pycache: Path, configs_dir: Path | None = None) -> dict[str, str]:
    """The calling environment, reading and writing bytecode in `pycache`, with the configs folder if given."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    if configs_dir is not None:
        env["OK_ML_CONFIGS_DIR"] = str(configs_dir)
    return env


def wall_time(command: list[str], env: dict[str, str]) -> float:
    """The fastest wall time of a command over a few fresh processes, after one unrecorded run that warms the caches."""
    subprocess.run(command, env=env, check=True, capture_output=True, cwd=PROJECT_ROOT)
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, cwd=PROJECT_ROOT)
        timings.append(time.perf_counter() - started)
    return min(timings)


def command_line(tmp: Path) -> dict[str, float]:
    """The user's figure: `dagster asset list` of the code location per number of configs, beside Dagster's floors."""
    pycache = Path(tempfile.gettempdir()) / "ok-ml-bench-pycache"
    (tmp / "one_asset.py").write_text(ONE_ASSET)
    walls = {"import dagster": wall_time([sys.executable, "-c", "import dagster"], process_env(pycache)),
             "one-asset module": wall_time([str(DAGSTER), "asset", "list", "-m", "one_asset", "-d", str(tmp)], process_env(pycache))}
    for count in CLI_COUNTS:
        folder = tmp / f"configs_{count}"
        folder.mkdir()
        write_configs(folder, count)
        command = [str(DAGSTER), "asset", "list", "-m", "ok_ml_assets.definitions"]
        walls[f"{count} configs"] = wall_time(command, process_env(pycache, folder))
    print(f"\n`dagster asset list`, wall time of a fresh process, best of {REPEATS}:")
    print(f"  python -c 'import dagster'        {walls['import dagster']:6.2f} s")
    print(f"  one-asset module (Dagster's floor) {walls['one-asset module']:5.2f} s")
    for count in CLI_COUNTS:
        print(f"  ok_ml_assets, {count:3d} config(s)       {walls[f'{count} configs']:6.2f} s")
    return walls


def main() -> None:
    """Print the in-process scaling table, then the user's command-line figures, and record the headline rows."""
    definitions = in_process()
    with tempfile.TemporaryDirectory() as tmp:
        walls = command_line(Path(tmp))
    per_experiment = (definitions[100] - definitions[1]) / 99
    print(f"\nin process, each experiment beyond the first adds {per_experiment * 1000:.0f} ms to the definitions")
    last = max(CLI_COUNTS)
    print(f"aim: {last} configs under 3 s: {walls[f'{last} configs']:.2f} s "
          f"({'met' if walls[f'{last} configs'] < 3 else 'NOT met'}); the machine may be busy, compare the ratios")
    record(f"dagster asset list, {last} configs (wall)", walls[f"{last} configs"], walls["1 configs"], "s", "1 config",
           "at most 3 s")
    record("dagster asset list, 1 config (wall)", walls["1 configs"], walls["one-asset module"], "s", "one-asset module")
    record(f"definitions of {last} configs (in process)", definitions[last], definitions[1], "s", "1 config")


if __name__ == "__main__":
    main()
