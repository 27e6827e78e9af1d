"""The registry sensor: every newly registered dataset version becomes a partition and the runs that read it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import dagster as dg

from ok_ml_assets.configs import ExperimentConfig
from ok_ml_assets.lifecycle.assets import refresh_job_name
from ok_ml_assets.lifecycle.datasets import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    contiguous_ranges,
    partition_range_tags,
)
from ok_ml_assets.registry import DatasetVersion
from ok_ml_assets.resources.registry import RegistryResource


class Job(Protocol):
    """A job definition, resolved or not (`define_asset_job` returns an unresolved one): all the sensor reads is its name."""

    name: str


SENSOR_NAME = "registry_sensor"
MINIMUM_INTERVAL_SECONDS = 60
# Enough to read a run's trigger at a glance; the full list is the registry's ledger between two seqs.
VERSIONS_SHOWN_IN_TAGS = 10


@dataclass(frozen=True)
class Consumer:
    """One experiment's dataset asset reading a registered dataset, optionally pinned to one tag."""

    experiment: str
    role: str
    dataset: str
    tag: str | None = None

    @property
    def asset_key(self) -> dg.AssetKey:
        """The experiment's asset whose partitions are the dataset's tags."""
        return dg.AssetKey([self.experiment, self.role])

    @property
    def job_name(self) -> str:
        """The job materializing registered versions of the dataset, for every experiment that reads it."""
        return registered_version_job_name(self.dataset)

    def reads(self, version: DatasetVersion) -> bool:
        """Whether a new version concerns this consumer: its dataset, and its pinned tag if any."""
        return version.name == self.dataset and self.tag in (None, version.tag)


def consumers(configs: Sequence[ExperimentConfig]) -> list[Consumer]:
    """Every (experiment, role) that reads a registered dataset."""
    return [
        Consumer(config.experiment_name, role, window.dataset_name, window.tag)
        for config in configs
        for role, window in config.dataset_windows().items()
    ]


def read_cursor(cursor: str | None) -> int:
    """The highest registry seq already handled (0 before the first tick)."""
    return int(json.loads(cursor)["seq"]) if cursor else 0


def write_cursor(seq: int) -> str:
    """The cursor recording that every version up to `seq` is handled."""
    return json.dumps({"seq": seq})


def describe(versions: Sequence[DatasetVersion]) -> str:
    """NAME@TAG of the versions, shortened when there are many."""
    refs = [v.ref for v in versions]
    hidden = len(refs) - VERSIONS_SHOWN_IN_TAGS
    return ",".join(refs[:VERSIONS_SHOWN_IN_TAGS]) + (f",... (+{hidden} more)" if hidden > 0 else "")


def partition_requests(versions: Sequence[DatasetVersion]) -> list[dg.AddDynamicPartitionsRequest]:
    """One request per dataset adding its new tags as partitions."""
    tags: dict[str, list[str]] = {}
    for version in versions:
        tags.setdefault(version.name, []).append(version.tag)
    return [dg.AddDynamicPartitionsRequest(partitions_def_name=name, partition_keys=keys) for name, keys in tags.items()]


def partition_runs(consumer: Consumer, versions: Sequence[DatasetVersion], ordered: Sequence[str]) -> list[dg.RunRequest]:
    """The runs materializing a consumer's new partitions: one per stretch of consecutive partitions, not one per day."""
    by_tag = {v.tag: v for v in versions}
    runs = []
    for first, last in contiguous_ranges(ordered, by_tag):
        inside = [by_tag[t] for t in ordered[ordered.index(first):ordered.index(last) + 1]]
        seq = str(max(v.seq for v in inside))
        if first == last:
            runs.append(dg.RunRequest(
                run_key=f"{consumer.experiment}:{consumer.role}:{inside[0].ref}", job_name=consumer.job_name,
                asset_selection=[consumer.asset_key], partition_key=first,
                tags={"ok_ml/dataset_version": inside[0].ref, "ok_ml/registry_seq": seq},
            ))
        else:
            runs.append(dg.RunRequest(
                run_key=f"{consumer.experiment}:{consumer.role}:{consumer.dataset}@{first}..{last}:seq-{seq}",
                job_name=consumer.job_name, asset_selection=[consumer.asset_key],
                tags={**partition_range_tags(first, last), "ok_ml/dataset_versions": describe(inside), "ok_ml/registry_seq": seq},
            ))
    return runs


def merged_by_partitions(runs: list[dg.RunRequest]) -> list[dg.RunRequest]:
    """One run per job and partition (or range), selecting every experiment's asset of it: the dataset's job is shared."""
    merged: dict[tuple, dg.RunRequest] = {}
    for run in runs:
        tags = run.tags
        partitions = (run.job_name, run.partition_key, tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG))
        first = merged.get(partitions)
        if first is None:
            merged[partitions] = run
            continue
        merged[partitions] = first.with_replaced_attrs(
            run_key=f"{first.run_key}+{run.run_key.partition(':')[0]}",
            asset_selection=[*first.asset_selection, *run.asset_selection],
        )
    return list(merged.values())


def partition_order(versions: Sequence[DatasetVersion], existing: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Each dataset's partition keys in the order Dagster will hold them: the existing ones, then the new in order."""
    order = {name: list(keys) for name, keys in existing.items()}
    for version in versions:
        keys = order.setdefault(version.name, [])
        if version.tag not in keys:
            keys.append(version.tag)
    return order


def refresh_run(experiment: str, versions: Sequence[DatasetVersion]) -> dg.RunRequest:
    """One refresh run of an experiment for all the new versions it reads."""
    last = max(v.seq for v in versions)
    return dg.RunRequest(
        run_key=f"{refresh_job_name(experiment)}:seq-{last}",
        job_name=refresh_job_name(experiment),
        tags={"ok_ml/dataset_versions": describe(versions), "ok_ml/registry_seq": str(last)},
    )


def registry_sensor_result(
    readers: Sequence[Consumer],
    versions: Sequence[DatasetVersion],
    after: int,
    materialized: frozenset[tuple[dg.AssetKey, str]] = frozenset(),
    replacements: frozenset[str] = frozenset(),
    existing: Mapping[str, Sequence[str]] | None = None,
) -> dg.SensorResult:
    """Partitions and runs for the versions registered after seq `after`, and the cursor past them.

    Partitions already in `materialized` (for example by `make run` before the daemon first ticked) need no run,
    unless the version replaces a deprecated one of the same tag (its ref in `replacements`). `existing` holds each
    dataset's partition keys in Dagster's order, so consecutive new ones go to one run.
    """
    if not versions:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"no dataset version registered after seq {after}"))
    order = partition_order(versions, existing or {})
    runs: list[dg.RunRequest] = []
    read_by: dict[str, dict[int, DatasetVersion]] = {}
    for reader in readers:
        fresh = [v for v in versions if reader.reads(v)
                 and ((reader.asset_key, v.tag) not in materialized or v.ref in replacements)]
        runs += partition_runs(reader, fresh, order.get(reader.dataset, []))
        for version in fresh:
            read_by.setdefault(reader.experiment, {})[version.seq] = version
    runs = merged_by_partitions(runs)
    runs += [refresh_run(experiment, list(read.values())) for experiment, read in read_by.items()]
    return dg.SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=partition_requests(versions),
        cursor=write_cursor(max(v.seq for v in versions)),
    )


def materialized_partitions(instance: dg.DagsterInstance, readers: Sequence[Consumer]) -> frozenset[tuple[dg.AssetKey, str]]:
    """(asset, tag) of every partition the consumers' dataset assets already have."""
    return frozenset(
        (reader.asset_key, tag) for reader in readers for tag in instance.get_materialized_partitions(reader.asset_key)
    )


def registered_version_job_name(dataset: str) -> str:
    """The name of the job materializing registered versions of a dataset."""
    return f"registered_{dataset}"


def partition_jobs(readers: Sequence[Consumer]) -> list[Job]:
    """One job per dataset over every experiment's asset of it (they share its partitions); a run selects one asset.

    One per dataset rather than per reader keeps a code location of a hundred experiments quick to load.
    """
    keys: dict[str, list[dg.AssetKey]] = {}
    for reader in readers:
        keys.setdefault(reader.dataset, []).append(reader.asset_key)
    return [
        dg.define_asset_job(
            name=registered_version_job_name(dataset),
            selection=dg.AssetSelection.assets(*assets),
            description=f"Materialize one registered version of `{dataset}` for the experiments that read it.",
        )
        for dataset, assets in sorted(keys.items())
    ]


def refresh_jobs(configs: Sequence[ExperimentConfig], jobs: Sequence[Job]) -> list[Job]:
    """The experiments' own refresh jobs, which the sensor must target by the same definitions."""
    by_name = {job.name: job for job in jobs}
    missing = [refresh_job_name(c.experiment_name) for c in configs if refresh_job_name(c.experiment_name) not in by_name]
    if missing:
        raise ValueError(f"the registry sensor needs the refresh jobs {missing}, which the experiments do not define")
    return [by_name[refresh_job_name(c.experiment_name)] for c in configs]


def build_registry_sensor(configs: Sequence[ExperimentConfig], jobs: Sequence[Job]) -> dg.SensorDefinition:
    """The sensor that starts the work every newly registered dataset version needs, each version once."""
    readers = consumers(configs)

    def registry_sensor(context: dg.SensorEvaluationContext, registry: RegistryResource) -> dg.SensorResult:
        """Adds each newly registered dataset version as a partition and requests the runs of the experiments that read it."""
        after = read_cursor(context.cursor)
        client = registry.client()
        versions = client.versions_after(after)
        materialized = materialized_partitions(context.instance, readers) if versions else frozenset()
        replacements = frozenset(d.ref for d in client.deprecations()) if versions else frozenset()
        existing = {name: context.instance.get_dynamic_partitions(name) for name in {v.name for v in versions}}
        return registry_sensor_result(readers, versions, after, materialized, replacements, existing)

    return dg.sensor(
        name=SENSOR_NAME,
        description=registry_sensor.__doc__,
        jobs=[*partition_jobs(readers), *refresh_jobs(configs, jobs)],
        minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )(registry_sensor)
