"""Which partitions and runs the registry sensor asks for, given the new versions (pure logic, no systems)."""

from __future__ import annotations

import dagster as dg

from ok_ml_assets.registry import DatasetVersion
from ok_ml_assets.sensors.registry_sensor import (
    Consumer,
    describe,
    read_cursor,
    registry_sensor_result,
    write_cursor,
)

READERS = [
    Consumer("recs", "interactions", "interactions"),
    Consumer("recs", "subscriptions", "subscriptions"),
    Consumer("frozen", "interactions", "interactions", tag="2026-11-02"),
]


def version(name: str, tag: str, seq: int) -> DatasetVersion:
    """A registered version as the ledger describes it."""
    return DatasetVersion(name=name, tag=tag, md5=f"{seq:032x}", rows=1, size_bytes=1, created_at="", source="", seq=seq)


def refresh_keys(result: dg.SensorResult) -> dict[str, str]:
    """Refresh job name -> run key."""
    return {r.job_name: r.run_key for r in result.run_requests if r.job_name.endswith("_refresh")}


def test_nothing_new_is_a_skip_that_keeps_the_cursor():
    result = registry_sensor_result(READERS, [], after=7)
    assert result.skip_reason.skip_message == "no dataset version registered after seq 7"
    assert not result.run_requests and not result.dynamic_partitions_requests and result.cursor is None


def test_several_new_versions_give_their_partitions_and_one_refresh_per_experiment():
    new = [version("interactions", "2026-11-01", 8), version("subscriptions", "2026-11-01", 9), version("interactions", "2026-11-02", 10)]
    result = registry_sensor_result(READERS, new, after=7)
    assert [(r.partitions_def_name, list(r.partition_keys)) for r in result.dynamic_partitions_requests] == [
        ("interactions", ["2026-11-01", "2026-11-02"]), ("subscriptions", ["2026-11-01"]),
    ]
    assert refresh_keys(result) == {"recs_refresh": "recs_refresh:seq-10", "frozen_refresh": "frozen_refresh:seq-10"}
    partition_runs = {(r.job_name, r.partition_key or r.tags["dagster/asset_partition_range_start"] + ".." +
                       r.tags["dagster/asset_partition_range_end"], tuple(r.asset_selection))
                      for r in result.run_requests if not r.job_name.endswith("_refresh")}
    assert partition_runs == {
        ("registered_interactions", "2026-11-01..2026-11-02", (dg.AssetKey(["recs", "interactions"]),)),
        ("registered_subscriptions", "2026-11-01", (dg.AssetKey(["recs", "subscriptions"]),)),
        ("registered_interactions", "2026-11-02", (dg.AssetKey(["frozen", "interactions"]),)),
    }
    assert read_cursor(result.cursor) == 10


def test_a_pinned_reader_ignores_other_tags_of_its_dataset():
    result = registry_sensor_result(READERS, [version("interactions", "2026-11-03", 11)], after=10)
    assert refresh_keys(result) == {"recs_refresh": "recs_refresh:seq-11"}


def test_a_dataset_no_experiment_reads_only_becomes_a_partition():
    result = registry_sensor_result(READERS, [version("follows", "2026-11-01", 3)], after=2)
    assert result.run_requests == [] and read_cursor(result.cursor) == 3
    assert [r.partitions_def_name for r in result.dynamic_partitions_requests] == ["follows"]


def test_run_keys_are_unique_per_experiment_dataset_and_tag():
    new = [version("interactions", f"2026-11-{d:02d}", d) for d in range(1, 6)]
    keys = [r.run_key for r in registry_sensor_result(READERS, new, after=0).run_requests]
    assert len(keys) == len(set(keys))


def test_the_cursor_round_trips_and_starts_at_zero():
    assert read_cursor(None) == 0 and read_cursor(write_cursor(42)) == 42


def test_many_versions_are_named_briefly_in_the_refresh_tags():
    shown = describe([version("interactions", f"t{i}", i) for i in range(25)])
    assert shown.startswith("interactions@t0,interactions@t1,") and shown.endswith(",... (+15 more)")


def test_a_replacement_of_a_deprecated_version_is_materialized_again():
    replacement = version("interactions", "2026-11-02", 12)
    materialized = frozenset({(dg.AssetKey(["recs", "interactions"]), "2026-11-02")})
    kept = registry_sensor_result(READERS, [replacement], after=11, materialized=materialized)
    assert {r.job_name for r in kept.run_requests} == {"registered_interactions", "frozen_refresh"}
    assert {tuple(r.asset_selection) for r in kept.run_requests if r.partition_key} == {(dg.AssetKey(["frozen", "interactions"]),)}
    replaced = registry_sensor_result(READERS, [replacement], after=11, materialized=materialized,
                                      replacements=frozenset({"interactions@2026-11-02"}))
    assert {tuple(r.asset_selection) for r in replaced.run_requests if r.partition_key} == {
        (dg.AssetKey(["recs", "interactions"]), dg.AssetKey(["frozen", "interactions"]))}
    assert "recs_refresh" in refresh_keys(replaced)


def test_consecutive_new_partitions_go_to_one_run_and_a_gap_splits_it():
    new = [version("interactions", tag, seq) for seq, tag in enumerate(["2026-11-03", "2026-11-04", "2026-11-06"], start=20)]
    existing = {"interactions": ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]}
    materialized = frozenset({(dg.AssetKey(["recs", "interactions"]), "2026-11-05")})
    result = registry_sensor_result(READERS[:1], new, after=19, materialized=materialized, existing=existing)
    runs = [(r.partition_key, r.tags.get("dagster/asset_partition_range_start"), r.tags.get("dagster/asset_partition_range_end"))
            for r in result.run_requests if r.job_name == "registered_interactions"]
    assert sorted(runs, key=str) == sorted([(None, "2026-11-03", "2026-11-04"), ("2026-11-06", None, None)], key=str)
