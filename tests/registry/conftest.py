"""Registry fixtures: small valid daily files, a registry holding one version, and a snapshot of its whole state."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from ok_ml_assets.registry import DataRegistry, load_catalog
from tests.conftest import CATALOG

FIRST_TAG = "2026-11-01"


def interactions_frame(rows: int = 6, day: str = FIRST_TAG, first_user: int = 1) -> pd.DataFrame:
    """A valid day of interactions: distinct keys, known events, ids from 1."""
    events = ["view", "click", "like", "comment"]
    return pd.DataFrame({
        "user_id": pd.array([first_user + i // 2 for i in range(rows)], dtype="int64"),
        "source_id": pd.array([100 + i for i in range(rows)], dtype="int64"),
        "event": [events[i % len(events)] for i in range(rows)],
        "ts": pd.to_datetime([f"{day} 10:00:00"] * rows, utc=True) + pd.to_timedelta(range(rows), unit="s"),
    })


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write a frame as parquet without the pandas index."""
    frame.to_parquet(path, index=False)
    return path


def client(root: Path) -> DataRegistry:
    """A client of the registry and remote kept under `root`."""
    return DataRegistry(root / "registry", str(root / "remote"), load_catalog(CATALOG))


def files(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file under root with the md5 of its bytes."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if not relative.startswith(skip):
            found[relative] = hashlib.md5(path.read_bytes()).hexdigest()
    return found


def git(registry: DataRegistry, *args: str) -> str:
    """Output of a git command in the registry repository."""
    return subprocess.run(["git", *args], cwd=registry.root, check=True, capture_output=True, text=True).stdout


def state(registry: DataRegistry) -> dict[str, object]:
    """Everything a refused registration must leave as it was: ledger, git HEAD and status, files, remote."""
    return {
        "ledger": (registry.root / "versions.json").read_text(),
        "head": git(registry, "rev-parse", "HEAD"),
        "status": git(registry, "status", "--porcelain"),
        # .dvc/tmp holds DVC's own locks and indexes, which any read may touch.
        "files": files(registry.root, skip=(".git/", ".dvc/tmp/")),
        "remote": files(Path(registry.remote)),
    }


@pytest.fixture(scope="session")
def one_version_template(tmp_path_factory) -> Path:
    """A registry and remote holding interactions@FIRST_TAG, built once."""
    root = tmp_path_factory.mktemp("one-version")
    client(root).add("interactions", FIRST_TAG, write_parquet(interactions_frame(), root / "day.parquet"))
    return root


@pytest.fixture
def seeded(one_version_template, tmp_path) -> DataRegistry:
    """A private copy of the one-version registry, pointed at its own copy of the remote."""
    shutil.copytree(one_version_template, tmp_path, dirs_exist_ok=True)
    # The template's untracked local config names the template's remote; this copy must use its own.
    (tmp_path / "registry" / ".dvc" / "config.local").unlink()
    registry = client(tmp_path)
    registry.ensure_initialized()
    return registry


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    """Registry and remote of this test only, in the environment the CLI reads."""
    values = {"OK_ML_HOME": str(tmp_path / "home"), "OK_ML_REGISTRY_REPO": str(tmp_path / "registry"),
              "OK_ML_DVC_REMOTE": str(tmp_path / "remote")}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values
