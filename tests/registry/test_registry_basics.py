"""Registry round trip against real DVC: exactly the registered bytes come back."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ok_ml_assets.registry import DataRegistry, RegistryError, load_catalog
from ok_ml_assets.registry.store import Registration, file_md5
from ok_ml_assets.synthetic import generate_world
from tests.conftest import CATALOG
from tests.registry.conftest import git, interactions_frame, write_parquet


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


def test_a_stored_file_changed_after_a_read_is_restored_on_the_next_read(registry, day_file):
    registry.add("interactions", "2026-11-01", day_file)
    stored = registry.path("interactions", "2026-11-01")
    stored.chmod(0o644)  # DVC may leave its workspace copy read-only
    stored.write_bytes(stored.read_bytes()[:-1] + b"x")
    assert registry.path("interactions", "2026-11-01").read_bytes() == day_file.read_bytes()


def test_missing_version_is_a_clear_error(registry, day_file):
    registry.add("interactions", "2026-11-01", day_file)
    with pytest.raises(RegistryError, match="'interactions' has no registered version '2026-12-01'.*2026-11-01"):
        registry.path("interactions", "2026-12-01")


def test_a_fresh_clone_of_the_registry_reads_the_same_bytes_from_the_remote(registry, day_file, tmp_path):
    registry.add("interactions", "2026-11-01", day_file)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(registry.root), str(clone)], check=True)
    elsewhere = DataRegistry(clone, registry.remote, registry.catalog)
    assert elsewhere.versions() == registry.versions()
    assert elsewhere.get("interactions", "2026-11-01", tmp_path / "out.parquet").read_bytes() == day_file.read_bytes()
    assert git(elsewhere, "status", "--porcelain") == ""


def test_a_batch_is_one_commit_with_consecutive_seqs_and_content_addressed_remote_objects(registry, tmp_path):
    paths = [write_parquet(interactions_frame(first_user=1 + 10 * i, day=f"2026-11-0{i + 1}"), tmp_path / f"{i}.parquet") for i in range(3)]
    versions = registry.add_many([Registration("interactions", f"2026-11-0{i + 1}", p) for i, p in enumerate(paths)])
    assert [v.seq for v in versions] == [1, 2, 3]
    assert git(registry, "log", "--format=%s") == (
        "register interactions@2026-11-01, interactions@2026-11-02, interactions@2026-11-03\ninitialize the data registry\n"
    )
    assert git(registry, "status", "--porcelain") == ""
    assert set(git(registry, "ls-files", "datasets").split()) >= {f"datasets/interactions/2026-11-0{i}.parquet.dvc" for i in (1, 2, 3)}
    stored = {"".join(p.relative_to(registry.remote).parts[-2:]) for p in Path(registry.remote).rglob("*") if p.is_file()}
    assert stored == {file_md5(p) for p in paths}


def test_versions_after_lists_only_committed_later_versions_in_order(registry, tmp_path):
    assert registry.versions_after(0) == []
    for i in range(3):
        day = write_parquet(interactions_frame(first_user=1 + 10 * i, day=f"2026-11-0{i + 1}"), tmp_path / f"{i}.parquet")
        registry.add("interactions", f"2026-11-0{i + 1}", day)
    assert [v.tag for v in registry.versions_after(1)] == ["2026-11-02", "2026-11-03"]
    assert registry.versions_after(3) == []


def test_pointing_a_copy_at_another_remote_keeps_the_repository_clean(registry, day_file, tmp_path):
    registry.add("interactions", "2026-11-01", day_file)
    shutil.copytree(registry.root, tmp_path / "copy")
    copy = DataRegistry(tmp_path / "copy", str(tmp_path / "other-remote"), registry.catalog)
    copy.ensure_initialized()
    assert git(copy, "status", "--porcelain") == ""


def test_reading_an_unknown_dataset_is_a_clear_error(registry):
    catalog = re.escape(str(sorted(load_catalog(CATALOG).datasets)))
    with pytest.raises(RegistryError, match=rf"unknown dataset 'clicks'; the catalog has {catalog}"):
        registry.version("clicks", "2026-11-01")


def test_a_window_counts_calendar_days_not_versions(registry, tmp_path):
    for day in ("2026-11-01", "2026-11-02", "2026-11-05", "2026-11-06"):
        registry.add("interactions", day, write_parquet(interactions_frame(day=day, first_user=int(day[-2:])), tmp_path / f"{day}.parquet"))
    assert [v.tag for v in registry.window("interactions", 3)] == ["2026-11-05", "2026-11-06"]
    assert [v.tag for v in registry.window("interactions", 3, last_tag="2026-11-02")] == ["2026-11-01", "2026-11-02"]
    assert [v.tag for v in registry.window("interactions", 6)] == ["2026-11-01", "2026-11-02", "2026-11-05", "2026-11-06"]
    assert len(registry.window("interactions", None)) == 4
