"""A full disk, a read-only disk or a corrupted MLflow store: one line naming the path, nothing half-written left behind.

The full disks are real: small tmpfs mounts (the suite runs as root here and in CI).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ok_ml_assets.preflight import StorageUnusable, write_atomically
from ok_ml_assets.registry import DataRegistry, RegistryError
from tests.registry.conftest import interactions_frame, state, write_parquet

NEXT_DAY = "2026-11-02"


@pytest.fixture
def small_disk(tmp_path):
    """Mount a tmpfs of a given size under tmp_path; unmounted at the end."""
    mounted = []

    def mount(name: str, size: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def fill(disk: Path) -> None:
    """Use every free byte of a mounted disk."""
    with (disk / "filler").open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * (1 << 16))
                handle.flush()
        except OSError:
            pass


def big_day(tmp_path: Path) -> Path:
    """A valid day of interactions of about half a megabyte."""
    return write_parquet(interactions_frame(rows=40_000, day=NEXT_DAY), tmp_path / "big-day.parquet")


def run_cli(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`ok-ml ARGS` in its own process with the given environment."""
    env = dict(os.environ)
    for name in ("DAGSTER_HOME", "MLFLOW_TRACKING_URI", "OK_ML_CONFIGS_DIR"):
        env.pop(name, None)
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-m", "ok_ml_assets.cli", *args], env=env, capture_output=True, text=True, timeout=120)


def test_a_full_dvc_remote_refuses_the_registration_and_changes_nothing(seeded, tmp_path, small_disk):
    registry = DataRegistry(seeded.root, str(small_disk("full-remote", "64k")), seeded.catalog)
    registry.ensure_initialized()
    path = big_day(tmp_path)
    before = state(registry)
    with pytest.raises(RegistryError, match=r"interactions@2026-11-02: could not store the data in DVC .*: 1 files failed to upload; "
                       r"no space left on device: 0\.\d MB free at the remote, the data needs 0\.\d MB"):
        registry.add("interactions", NEXT_DAY, path)
    assert state(registry) == before
    assert [v.tag for v in registry.versions()] == ["2026-11-01"]


def test_a_full_disk_under_the_registry_refuses_the_registration_and_cleans_up(tmp_path, small_disk, seeded):
    disk = small_disk("home", "3m")
    registry = DataRegistry(disk / "registry", str(tmp_path / "remote"), seeded.catalog)
    registry.add("interactions", "2026-11-01", write_parquet(interactions_frame(), tmp_path / "first.parquet"))
    fill(disk)
    filler = disk / "filler"
    os.truncate(filler, filler.stat().st_size - 200_000)
    before = state(registry)
    full = r"nothing was registered: no space left on device writing .*/home/registry \(0\.\d MB free there\)"
    with pytest.raises(RegistryError, match=full):
        registry.add("interactions", NEXT_DAY, big_day(tmp_path))
    assert state(registry) == before


def test_a_run_on_a_full_home_stops_before_anything_starts(tmp_path, small_disk):
    home = small_disk("home", "1m")
    fill(home)
    run = run_cli({"OK_ML_HOME": str(home)}, "run", "--preset", "tiny", "--experiment", "antispam_bots")
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stderr.startswith(f"error: the product's home (OK_ML_HOME) at {home} has 0.0 MB free, a run needs at least 200 MB")
    assert "Traceback" not in run.stderr and "nothing was started" in run.stderr
    assert sorted(p.name for p in home.iterdir()) == ["filler"], "no Dagster instance, run, log or temporary file"


def test_a_corrupted_mlflow_store_is_named_before_anything_starts(tmp_path):
    home = tmp_path / "home"
    (home / "mlflow").mkdir(parents=True)
    store = home / "mlflow" / "mlflow.db"
    store.write_bytes(b"this is not an sqlite database" * 100)
    run = run_cli({"OK_ML_HOME": str(home), "OK_ML_MIN_FREE_MB": "1"}, "run", "--preset", "tiny", "--experiment", "antispam_bots")
    assert run.returncode == 1
    assert run.stderr.startswith(f"error: the MLflow store sqlite:///{store} cannot be used: file is not a database "
                                 "(the file is corrupted: restore it from a backup")
    assert "Traceback" not in run.stderr and "sqlalchemy" not in run.stderr.lower()
    assert sorted(p.name for p in home.iterdir()) == ["mlflow"]


def test_a_read_only_mlflow_store_is_named_before_anything_starts(tmp_path, small_disk):
    folder = small_disk("mlflow", "1m")
    store = folder / "mlflow.db"
    connection = sqlite3.connect(store)
    connection.execute("CREATE TABLE experiments (id INTEGER)")
    connection.commit()
    connection.close()
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    run = run_cli({"OK_ML_HOME": str(tmp_path / "home"), "MLFLOW_TRACKING_URI": f"sqlite:///{store}", "OK_ML_MIN_FREE_MB": "0"},
                  "run", "--preset", "tiny", "--experiment", "antispam_bots")
    assert run.returncode == 1
    assert run.stderr.startswith(f"error: the MLflow store at {store} is not writable ({store} is read-only)")
    assert "Traceback" not in run.stderr and not (tmp_path / "home" / "dagster").exists()


def test_a_value_that_does_not_fit_keeps_the_old_value_and_leaves_no_temporary_file(small_disk):
    disk = small_disk("assets", "256k")
    target = disk / "exp" / "features.parquet"
    write_atomically(target, lambda p: pd.DataFrame({"x": [1, 2, 3]}).to_parquet(p))
    big = pd.DataFrame({"x": range(1_000_000)}).astype("float64")
    with pytest.raises(StorageUnusable, match=r"cannot store features.parquet: no space left on device writing .* MB free there"):
        write_atomically(target, lambda p: big.to_parquet(p))
    assert pd.read_parquet(target)["x"].tolist() == [1, 2, 3]
    assert sorted(p.name for p in target.parent.iterdir()) == ["features.parquet"]
