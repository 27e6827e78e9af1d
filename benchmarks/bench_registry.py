"""Registry benchmarks: a 1M-row daily dataset, a folder of 200 daily exports, and a sensor tick over 1,000 versions.

Run from the project root: `.venv/bin/python benchmarks/bench_registry.py`. Everything lives in a temporary
folder; each figure is printed next to a baseline measured in the same run on the same machine.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd
from summary import record  # benchmarks/ is on sys.path when a script runs

from ok_ml_assets.registry import DataRegistry, load_catalog, validate_file
from ok_ml_assets.registry.store import Registration, file_md5
from ok_ml_assets.settings import PROJECT_ROOT
from ok_ml_assets.synthetic import generate_world

ROWS = 1_000_000
VERSIONS = 1_000
FOLDER_DAYS = 200
TICKS = 5
REPEAT = 3
CATALOG = PROJECT_ROOT / "data_registry" / "catalog.yml"


def seconds(action: Callable[[], object]) -> float:
    """Wall time of one call."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_seconds(action: Callable[[], object], repeat: int = TICKS) -> float:
    """Median wall time of several calls."""
    return statistics.median(seconds(action) for _ in range(repeat))


def report(label: str, value: float, unit: str, note: str = "") -> None:
    """One aligned line of figures."""
    shown = value * 1000 if unit == "ms" else value
    print(f"  {label:58} {shown:9.2f} {unit:2}  {note}".rstrip())


def registry_at(root: Path) -> DataRegistry:
    """A registry and its local DVC remote under root."""
    return DataRegistry(root / "registry", str(root / "remote"), load_catalog(CATALOG))


def daily_interactions(folder: Path, rows: int, days: int) -> list[tuple[str, Path]]:
    """`days` realistic synthetic days of exactly `rows` interaction events each, as (tag, parquet file)."""
    world = generate_world("default", users=rows // 3 + rows // 10, sources=20_000, days=days)
    written = []
    for day in world.days():
        path = folder / f"{day.tag}.parquet"
        day.interactions.head(rows).to_parquet(path, index=False)
        written.append((day.tag, path))
    return written


def bench_registration(root: Path) -> None:
    """Register 1M-row days against copying and hashing the same files (medians over distinct days)."""
    registry = registry_at(root)
    warm = next(generate_world("tiny", days=1).days())
    warm.subscriptions.to_parquet(root / "warm.parquet", index=False)
    registry.add("subscriptions", warm.tag, root / "warm.parquet")  # initializes the repository, imports DVC and DuckDB
    days = daily_interactions(root, ROWS, days=REPEAT)
    contract = registry.catalog.contract("interactions")
    size_mb = statistics.median(path.stat().st_size for _, path in days) / 1e6

    baseline = statistics.median(seconds(lambda p=p: (shutil.copyfile(p, root / "copy"), file_md5(root / "copy"))) for _, p in days)
    validation = statistics.median(seconds(lambda p=p: validate_file(p, contract)) for _, p in days)
    registration = statistics.median(seconds(lambda t=t, p=p: registry.add("interactions", t, p)) for t, p in days)
    again = statistics.median(seconds(lambda t=t, p=p: registry.add("interactions", t, p)) for t, p in days)

    print(f"\nregister a {ROWS:,}-row daily interactions file ({size_mb:.1f} MB parquet), median of {REPEAT} days")
    report("baseline: copy + md5 of the same file", baseline, "s")
    report("contract validation alone (DuckDB)", validation, "s")
    report("registry add: validate, DVC add + push, git commit", registration, "s", f"{registration / baseline:.1f}x the baseline")
    report("the same file again (idempotent no-op)", again, "s")
    record(f"registry add of a {ROWS:,}-row day", registration, baseline, "s", "copy + md5", "at most 10x")


def small_days(root: Path, count: int) -> list[Registration]:
    """`count` small valid interaction files, one per daily tag."""
    folder = root / "small"
    folder.mkdir()
    start = pd.Timestamp("2020-01-01")
    registrations = []
    for i in range(count):
        tag = (start + pd.Timedelta(days=i)).date().isoformat()
        frame = pd.DataFrame({"user_id": [i + 1], "source_id": [1], "event": ["view"], "ts": [pd.Timestamp(tag, tz="UTC")]})
        frame.to_parquet(folder / f"{tag}.parquet", index=False)
        registrations.append(Registration("interactions", tag, folder / f"{tag}.parquet"))
    return registrations


def bench_folder(root: Path) -> None:
    """`ok-ml registry add interactions FOLDER` of FOLDER_DAYS daily exports, in its own process, against copy + md5."""
    folder = root / "exports"
    folder.mkdir()
    for day in generate_world("tiny", days=FOLDER_DAYS, start=dt.date(2025, 1, 1)).days():
        day.interactions.to_parquet(folder / f"interactions-{day.tag}.parquet", index=False)
    files = sorted(folder.iterdir())
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    baseline = seconds(lambda: [(shutil.copyfile(f, root / "copy"), file_md5(root / "copy")) for f in files])
    env = {**os.environ, "OK_ML_HOME": str(root / "home"), "OK_ML_REGISTRY_REPO": str(root / "registry"),
           "OK_ML_DVC_REMOTE": str(root / "remote")}
    command = [sys.executable, "-m", "ok_ml_assets.cli", "registry", "add", "interactions", str(folder)]
    registering = seconds(lambda: subprocess.run(command, env=env, check=True, capture_output=True))
    print(f"\nregister a folder of {len(files)} daily interactions exports ({size_mb:.1f} MB, tiny-world days) in one command")
    report("baseline: copy + md5 of every file", baseline, "s")
    report("ok-ml registry add interactions FOLDER (one commit)", registering, "s",
           f"{registering / len(files) * 1000:.0f} ms per day; aim: under 60 s")
    record(f"registry add of a folder of {len(files)} days", registering, baseline, "s", "copy + md5", "at most 60 s")


def sensor_tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    """One sensor evaluation as the daemon runs it: requests resolved against the instance."""
    context = dg.build_sensor_context(
        instance=instance, instance_ref=instance.get_ref(), cursor=cursor, definitions=defs,
        resources={"registry": defs.resources["registry"]},
    )
    return defs.resolve_sensor_def("registry_sensor").evaluate_tick(context)


def bench_sensor(root: Path) -> None:
    """Sensor ticks over an empty registry, over 1,000 handled versions, and over 1,000 new ones."""
    from ok_ml_assets.definitions import build_definitions
    from ok_ml_assets.settings import load_settings

    os.environ.update({"OK_ML_HOME": str(root / "home"), "OK_ML_REGISTRY_REPO": str(root / "registry"),
                       "OK_ML_DVC_REMOTE": str(root / "remote")})
    defs = build_definitions(load_settings())
    registry = registry_at(root)
    with dg.instance_for_test() as instance:
        empty = median_seconds(lambda: sensor_tick(defs, instance, None))
        batch = small_days(root, VERSIONS)
        registering = seconds(lambda: registry.add_many(batch))
        catch_up = sensor_tick(defs, instance, None)
        catch_up_seconds = median_seconds(lambda: sensor_tick(defs, instance, None))
        steady = median_seconds(lambda: sensor_tick(defs, instance, catch_up.cursor))

    print(f"\nregistry sensor tick, median of {TICKS} (experiments: {', '.join(_experiments(defs))})")
    report("baseline: empty registry", empty, "ms")
    report(f"{VERSIONS:,} versions registered, all handled (usual tick)", steady, "ms")
    report(f"{VERSIONS:,} versions registered, all new (catch-up tick)", catch_up_seconds, "ms",
           f"{len(catch_up.run_requests):,} run requests")
    report(f"registering the {VERSIONS:,} small versions in one add_many", registering, "s")


def _experiments(defs: dg.Definitions) -> list[str]:
    """The experiments the sensor starts refreshes of."""
    return sorted({j.name.removesuffix("_refresh") for j in defs.resolve_all_job_defs() if j.name.endswith("_refresh")})


def main() -> None:
    """Run both benchmarks in a throwaway folder."""
    with tempfile.TemporaryDirectory(prefix="ok-ml-bench-") as tmp:
        for name, bench in (("registration", bench_registration), ("folder", bench_folder), ("sensor", bench_sensor)):
            (Path(tmp) / name).mkdir()
            bench(Path(tmp) / name)


if __name__ == "__main__":
    main()
