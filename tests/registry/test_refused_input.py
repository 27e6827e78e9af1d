"""Bad input is refused with a message naming what is wrong, and leaves the registry and its remote unchanged."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ok_ml_assets.registry import DataRegistry, RegistryError, load_catalog
from ok_ml_assets.registry.store import Registration
from tests.conftest import CATALOG
from tests.registry.conftest import FIRST_TAG, interactions_frame, state, write_parquet

NEW_TAG = "2026-11-02"


def refuse(registry: DataRegistry, name: str, tag: str, path: Path, message: str) -> None:
    """Registering must fail with `message` and change nothing at all."""
    before = state(registry)
    with pytest.raises(RegistryError, match=message):
        registry.add(name, tag, path)
    assert state(registry) == before


def with_null_source(path: Path) -> Path:
    """A day whose non-nullable source_id holds a null (pandas would turn it into floats)."""
    table = pa.Table.from_pandas(interactions_frame(), preserve_index=False)
    sources = table.column("source_id").to_pylist()
    sources[2] = None
    pq.write_table(table.set_column(1, "source_id", pa.array(sources, pa.int64())), path)
    return path


def write_bytes(data: bytes, path: Path) -> Path:
    """Write raw bytes, whatever the extension says."""
    path.write_bytes(data)
    return path


BAD_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing column": (
        lambda p: write_parquet(interactions_frame().drop(columns="event"), p),
        r"interactions@2026-11-02 .* breaks the contract .*\n.*column 'event' breaks rule column is present",
    ),
    "wrong column": (
        lambda p: write_parquet(interactions_frame().rename(columns={"ts": "time"}), p),
        r"column 'ts' breaks rule column is present(.|\n)*column 'time' breaks rule column is declared in the contract",
    ),
    "wrong type": (
        lambda p: write_parquet(interactions_frame().astype({"user_id": str}), p),
        r"column 'user_id' breaks rule type is int64: 0 rows, e.g. \['string'\]",
    ),
    "null where forbidden": (
        with_null_source,
        r"column 'source_id' breaks rule not null: 1 rows",
    ),
    "value out of range": (
        lambda p: write_parquet(interactions_frame().assign(user_id=lambda f: f.user_id - 1), p),
        r"column 'user_id' breaks rule >= 1.0: 2 rows, e.g. \[0, 0\]",
    ),
    "value not in allowed set": (
        lambda p: write_parquet(interactions_frame().replace({"event": {"like": "share"}}), p),
        r"column 'event' breaks rule value in \['view', 'click', 'like', 'comment'\]: 1 rows, e.g. \['share'\]",
    ),
    "duplicate keys": (
        lambda p: write_parquet(pd.concat([interactions_frame(), interactions_frame().head(2)]), p),
        r"column 'user_id,source_id,event,ts' breaks rule primary key is unique: 4 rows",
    ),
    "parquet file without rows": (
        lambda p: write_parquet(interactions_frame().head(0), p),
        r"column '\*' breaks rule file has at least one row",
    ),
    "empty file": (
        lambda p: write_bytes(b"", p),
        r"interactions@2026-11-02: .*bad\.parquet is empty \(0 bytes\)",
    ),
    "not a parquet file": (
        lambda p: write_bytes(interactions_frame().to_csv(index=False).encode(), p),
        r"interactions@2026-11-02: .*bad\.parquet is not a readable parquet file",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_file_breaking_the_contract_is_refused(seeded, tmp_path, case):
    make, message = BAD_FILES[case]
    refuse(seeded, "interactions", NEW_TAG, make(tmp_path / "bad.parquet"), message)


def test_an_unknown_dataset_is_refused(seeded, tmp_path):
    path = write_parquet(interactions_frame(), tmp_path / "day.parquet")
    catalog = re.escape(str(sorted(load_catalog(CATALOG).datasets)))
    refuse(seeded, "clicks", NEW_TAG, path, rf"unknown dataset 'clicks'; the catalog has {catalog}")


def test_a_missing_file_is_refused(seeded, tmp_path):
    refuse(seeded, "interactions", NEW_TAG, tmp_path / "nowhere.parquet", r"interactions@2026-11-02: .*nowhere.parquet is not a file")


def test_a_tag_already_used_with_other_content_is_refused(seeded, tmp_path):
    other = write_parquet(interactions_frame(first_user=50), tmp_path / "other.parquet")
    refuse(seeded, "interactions", FIRST_TAG, other, r"interactions@2026-11-01 is already registered with other content")


def test_the_same_content_registered_again_is_a_no_op(seeded, tmp_path):
    same = write_parquet(interactions_frame(), tmp_path / "same.parquet")
    before, registered = state(seeded), seeded.version("interactions", FIRST_TAG)
    assert seeded.add("interactions", FIRST_TAG, same, source="again") == registered
    assert state(seeded) == before


def test_one_batch_naming_a_version_twice_with_different_content_is_refused(seeded, tmp_path):
    first = write_parquet(interactions_frame(day=NEW_TAG), tmp_path / "a.parquet")
    second = write_parquet(interactions_frame(first_user=50, day=NEW_TAG), tmp_path / "b.parquet")
    before = state(seeded)
    with pytest.raises(RegistryError, match="interactions@2026-11-02 appears twice in one batch with different content"):
        seeded.add_many([Registration("interactions", NEW_TAG, first), Registration("interactions", NEW_TAG, second)])
    assert state(seeded) == before


@pytest.mark.parametrize("name", ["../x", "a/b", "/etc", "Interactions", ""])
def test_a_dataset_name_with_path_characters_is_refused(seeded, tmp_path, name):
    path = write_parquet(interactions_frame(), tmp_path / "day.parquet")
    refuse(seeded, name, NEW_TAG, path, f"dataset name '{re.escape(name)}' is not allowed")


@pytest.mark.parametrize("tag", ["../x", "a/b", "..", "x..y", "a\\b", ".hidden", ""])
def test_a_tag_with_path_characters_is_refused(seeded, tmp_path, tag):
    path = write_parquet(interactions_frame(), tmp_path / "day.parquet")
    refuse(seeded, "interactions", tag, path, r"interactions: tag .* is not allowed")


def test_a_remote_that_cannot_store_the_data_leaves_the_repository_as_it_was(seeded, tmp_path):
    path = write_parquet(interactions_frame(first_user=50, day=NEW_TAG), tmp_path / "day.parquet")
    broken = DataRegistry(seeded.root, "s3://ok-ml-no-such-bucket/registry", seeded.catalog)
    before = state(seeded)
    with pytest.raises(RegistryError, match=r"interactions@2026-11-02: could not store the data in DVC .*dvc-s3"):
        broken.add("interactions", NEW_TAG, path)
    after = state(seeded)
    assert {k: after[k] for k in ("ledger", "head", "status", "remote")} == {k: before[k] for k in ("ledger", "head", "status", "remote")}
    assert broken.versions() == seeded.versions() and len(seeded.versions()) == 1


def test_a_daily_dataset_refuses_a_tag_that_is_not_a_day(seeded, tmp_path):
    from ok_ml_assets.registry import RegistryError
    from tests.registry.conftest import interactions_frame, write_parquet

    before = [v.ref for v in seeded.versions()]
    path = write_parquet(interactions_frame(day="2026-11-02"), tmp_path / "day.parquet")
    with pytest.raises(RegistryError, match=r"interactions@v2: 'interactions' is partitioned daily.*YYYY-MM-DD"):
        seeded.add("interactions", "v2", path)
    assert [v.ref for v in seeded.versions()] == before


def test_a_point_outside_the_versions_day_is_refused(seeded, tmp_path):
    day = pd.DataFrame({"series_id": [1, 1, 2], "service": "svc", "metric": "latency_ms", "value": 1.0, "anomaly": 0,
                        "ts": pd.to_datetime(["2026-11-01 00:00", "2026-11-01 23:00", "2026-11-01 05:00"])})
    path = tmp_path / "series.parquet"
    day.to_parquet(path, index=False)
    refuse(seeded, "ok_monitoring_time_series", "2026-11-02", path,
           r"column 'ts' breaks rule falls on the version's day 2026-11-02: 3 rows, e\.g\. \['2026-11-01 00:00:00'")
    assert seeded.add("ok_monitoring_time_series", "2026-11-01", path).rows == 3
