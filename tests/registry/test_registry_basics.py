"""Registry round trip against real DVC: exactly the registered bytes come back."""

from __future__ import annotations

import shutil

import pytest

from ok_ml_assets.registry import DataRegistry, RegistryError, load_catalog
from ok_ml_assets.registry.store import file_md5
from ok_ml_assets.synthetic import generate_world
from tests.conftest import CATALOG


@pytest.fixture
def registry(tmp_path) -> DataRegistry:
    return DataRegistry(tmp_path / "registry", str(tmp_path / "remote"), load_catalog(CATALOG))


@pytest.fixture
def day_file(tmp_path):
    day = next(generate_world("tiny", days=1).days())
    path = tmp_path / "interactions.parquet"
    day.interactions.to_parquet(path)
    return path


def test_round_trip_returns_the_registered_bytes_even_after_the_cache_is_lost(registry, day_file, tmp_path):
    version = registry.add("interactions", "2026-11-01", day_file, source="test")
    assert version.md5 == file_md5(day_file) and version.rows > 0 and version.seq == 1
    (registry.root / "datasets" / "interactions" / "2026-11-01.parquet").unlink()
    shutil.rmtree(registry.root / ".dvc" / "cache")
    copy = registry.get("interactions", "2026-11-01", tmp_path / "copy.parquet")
    assert copy.read_bytes() == day_file.read_bytes()


def test_missing_version_is_a_clear_error(registry, day_file):
    registry.add("interactions", "2026-11-01", day_file)
    with pytest.raises(RegistryError, match="'interactions' has no registered version '2026-12-01'.*2026-11-01"):
        registry.path("interactions", "2026-12-01")
