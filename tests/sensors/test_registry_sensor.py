"""The registry sensor on a real Dagster instance and the real registry: each new version starts its runs once."""

from __future__ import annotations

import json

import dagster as dg
import pytest
import yaml

from ok_ml_assets.definitions import build_definitions, build_resources
from ok_ml_assets.registry import registry_client
from ok_ml_assets.sensors.registry_sensor import SENSOR_NAME
from tests.conftest import write_config
from tests.registry.conftest import interactions_frame, write_parquet

SEEDED_DAYS = 14  # the tiny world the `home` fixture registers: 2026-11-01 .. 2026-11-14, both datasets
NEW_TAG, PINNED_TAG = "2026-11-15", "2026-11-16"


def add_experiment(home, name: str, **pins: str) -> None:
    """Another experiment reading the same datasets as prod_discovery, some of them pinned to a tag."""
    config = yaml.safe_load((home / "configs" / "prod_discovery.yml").read_text())
    config["experiment_name"] = name
    for role, tag in pins.items():
        config["datasets"][role] = {**config["datasets"][role], "tag": tag}
    write_config(home, config)


def register(settings, tmp_path, tag: str):
    """Register a valid interactions day under `tag` through the real registry."""
    path = write_parquet(interactions_frame(day=tag), tmp_path / f"{tag}.parquet")
    return registry_client(settings).add("interactions", tag, path)


def tick(settings, instance, cursor: str | None):
    """One evaluation of the sensor from freshly built definitions, applying its partitions as the daemon does."""
    defs = build_definitions(settings)
    # The instance ref, as the daemon passes it, lets Dagster check requested partitions against the instance.
    context = dg.build_sensor_context(
        instance=instance, instance_ref=instance.get_ref(), cursor=cursor, definitions=defs,
        resources={"registry": build_resources(settings)["registry"]},
    )
    data = defs.resolve_sensor_def(SENSOR_NAME).evaluate_tick(context)
    for request in data.dynamic_partitions_requests or []:
        new = [k for k in request.partition_keys if not instance.has_dynamic_partition(request.partitions_def_name, k)]
        instance.add_dynamic_partitions(request.partitions_def_name, new)
    return data


def refreshes(data) -> dict[str, dg.RunRequest]:
    """The refresh run requested per experiment."""
    found = [r for r in data.run_requests if r.job_name.endswith("_refresh")]
    assert len(found) == len({r.job_name for r in found}), "one refresh per experiment per tick"
    return {r.job_name.removesuffix("_refresh"): r for r in found}


def partition_runs(data) -> set[tuple[str, str]]:
    """(asset, partition or FIRST..LAST range) of every partition run requested."""
    found = [(k.to_user_string(), r.partition_key or "{}..{}".format(*partition_range(r)))
             for r in data.run_requests if r.asset_selection for k in r.asset_selection]
    assert len(found) == len(set(found)), "each partition requested once"
    return set(found)


def partition_range(request) -> tuple[str, str]:
    """The first and last partition a single-run range request materializes."""
    return request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]


def added_partitions(data) -> dict[str, list[str]]:
    """The partitions the tick adds, per dataset."""
    return {r.partitions_def_name: list(r.partition_keys) for r in data.dynamic_partitions_requests or []}


@pytest.fixture
def two_experiments(home):
    """prod_discovery and another experiment reading the same datasets."""
    add_experiment(home, "second_discovery")
    return ["prod_discovery", "second_discovery"]


def test_the_first_tick_adds_every_registered_tag_and_requests_one_refresh_per_experiment(settings, instance, two_experiments):
    data = tick(settings, instance, None)
    days = [f"2026-11-{d:02d}" for d in range(1, SEEDED_DAYS + 1)]
    assert added_partitions(data) == {"interactions": days, "subscriptions": days}
    assert set(refreshes(data)) == set(two_experiments)
    roles = ("interactions", "subscriptions")
    # All registered days of a dataset in one run per experiment, not one run per day.
    assert partition_runs(data) == {(f"{e}/{role}", f"{days[0]}..{days[-1]}") for e in two_experiments for role in roles}
    assert json.loads(data.cursor) == {"seq": 2 * SEEDED_DAYS}
    assert instance.get_dynamic_partitions("interactions") == days


def test_a_new_version_requests_one_run_per_dependent_experiment_and_a_second_tick_none(settings, instance, two_experiments, tmp_path):
    cursor = tick(settings, instance, None).cursor
    version = register(settings, tmp_path, NEW_TAG)

    data = tick(settings, instance, cursor)
    assert added_partitions(data) == {"interactions": [NEW_TAG]}
    assert partition_runs(data) == {(f"{e}/interactions", NEW_TAG) for e in two_experiments}
    runs = refreshes(data)
    assert set(runs) == set(two_experiments)
    for experiment, run in runs.items():
        assert run.run_key == f"{experiment}_refresh:seq-{version.seq}"
        assert run.tags["ok_ml/dataset_versions"] == f"interactions@{NEW_TAG}"
    # One partition run selects both experiments' assets (the dataset's job is shared), then one refresh each.
    assert len({r.run_key for r in data.run_requests}) == len(data.run_requests) == 1 + len(two_experiments)
    assert json.loads(data.cursor) == {"seq": version.seq}

    again = tick(settings, instance, data.cursor)
    assert again.run_requests == [] and not again.dynamic_partitions_requests
    assert again.skip_message == f"no dataset version registered after seq {version.seq}"
    assert again.cursor == data.cursor


def test_a_restarted_daemon_resumes_from_the_stored_cursor(settings, instance, two_experiments, tmp_path):
    register(settings, tmp_path, NEW_TAG)
    stored = tick(settings, instance, None).cursor
    # Every tick builds new definitions, a new registry client and a new context: only the cursor survives.
    assert tick(settings, instance, stored).run_requests == []
    later = register(settings, tmp_path, PINNED_TAG)
    data = tick(settings, instance, stored)
    assert partition_runs(data) == {(f"{e}/interactions", later.tag) for e in two_experiments}
    assert {r.run_key for r in refreshes(data).values()} == {f"{e}_refresh:seq-{later.seq}" for e in two_experiments}


def test_a_config_pinned_to_a_tag_reacts_only_to_that_tag(settings, instance, home, tmp_path):
    add_experiment(home, "pinned_discovery", interactions=PINNED_TAG)
    cursor = tick(settings, instance, None).cursor

    register(settings, tmp_path, NEW_TAG)
    other = tick(settings, instance, cursor)
    assert set(refreshes(other)) == {"prod_discovery"}
    assert partition_runs(other) == {("prod_discovery/interactions", NEW_TAG)}
    assert added_partitions(other) == {"interactions": [NEW_TAG]}

    register(settings, tmp_path, PINNED_TAG)
    pinned = tick(settings, instance, other.cursor)
    assert set(refreshes(pinned)) == {"prod_discovery", "pinned_discovery"}
    assert partition_runs(pinned) == {(f"{e}/interactions", PINNED_TAG) for e in ("prod_discovery", "pinned_discovery")}


def test_a_requested_partition_run_materializes_exactly_the_new_version(settings, instance, tmp_path):
    cursor = tick(settings, instance, None).cursor
    version = register(settings, tmp_path, NEW_TAG)
    [request] = [r for r in tick(settings, instance, cursor).run_requests if r.partition_key]
    defs = build_definitions(settings)
    result = defs.resolve_job_def(request.job_name).execute_in_process(
        instance=instance, partition_key=request.partition_key, tags=request.tags, asset_selection=request.asset_selection,
    )
    assert result.success
    [event] = result.get_asset_materialization_events()
    materialization = event.materialization
    assert materialization.asset_key == dg.AssetKey(["prod_discovery", "interactions"])
    assert materialization.partition == NEW_TAG and materialization.metadata["md5"].value == version.md5


def test_versions_already_materialized_by_a_run_start_nothing_on_the_first_tick(settings, instance):
    from ok_ml_assets.configs import load_experiment_config
    from ok_ml_assets.orchestration import materialize_datasets, sync_partitions

    defs = build_definitions(settings)
    config = load_experiment_config(settings.configs_dir / "prod_discovery.yml")
    assert materialize_datasets(defs, instance, config, sync_partitions(instance, registry_client(settings)))

    data = tick(settings, instance, None)

    assert data.run_requests == [] and json.loads(data.cursor)["seq"] == 2 * SEEDED_DAYS
