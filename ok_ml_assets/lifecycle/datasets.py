"""Registered input datasets as daily-partitioned assets, one partition per registered tag, many per run."""


import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from ok_ml_assets.configs import DatasetWindow
from ok_ml_assets.registry import DatasetVersion
from ok_ml_assets.resources.registry import RegistryResource


def dataset_partitions(dataset_name: str) -> dg.DynamicPartitionsDefinition:
    """The partitions of a dataset: its registered tags, shared by every experiment that reads it."""
    return dg.DynamicPartitionsDefinition(name=dataset_name)


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run materialize every partition from `first` to `last` (a single-run backfill)."""
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def contiguous_ranges(ordered: Sequence[str], wanted: Iterable[str]) -> list[tuple[str, str]]:
    """The fewest (first, last) ranges of `ordered` partition keys covering exactly the `wanted` ones."""
    wanted, ranges, start, previous = set(wanted), [], None, None
    for key in ordered:
        if key in wanted and start is None:
            start = key
        elif key not in wanted and start is not None:
            ranges.append((start, previous))
            start = None
        previous = key
    if start is not None:
        ranges.append((start, previous))
    return ranges


def build_dataset_asset(experiment: str, role: str, window: DatasetWindow) -> dg.AssetsDefinition:
    """An asset whose partitions are the registered versions of `window.dataset_name`; one run may take many at once."""
    # Single-run backfills are a beta parameter of @asset; its warning would repeat for every experiment's dataset.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        decorate = dg.asset(
            key=[experiment, role],
            group_name=experiment,
            partitions_def=dataset_partitions(window.dataset_name),
            backfill_policy=dg.BackfillPolicy.single_run(),
            kinds={"dvc", "parquet"},
            description=f"Registered daily versions of the `{window.dataset_name}` dataset, read from the data registry.",
            metadata={"dataset": window.dataset_name, "window_days": window.window_days},
        )

    @decorate
    def registered_dataset(context: dg.AssetExecutionContext, registry: RegistryResource) -> dg.MaterializeResult:
        client = registry.client()
        versions = [client.version(window.dataset_name, tag) for tag in context.partition_keys]
        paths = [client.path(v.name, v.tag) for v in versions]
        if len(versions) == 1:
            return dg.MaterializeResult(metadata=version_metadata(versions[0], paths[0]), data_version=dg.DataVersion(versions[0].md5))
        return dg.MaterializeResult(metadata={
            "versions": dg.MetadataValue.json([{"dataset": v.ref, "md5": v.md5, "rows": v.rows} for v in versions]),
            "first": versions[0].ref, "last": versions[-1].ref,
            "rows": dg.MetadataValue.int(sum(v.rows for v in versions)),
            "size_bytes": dg.MetadataValue.int(sum(v.size_bytes for v in versions)),
        })

    return registered_dataset


def version_metadata(version: DatasetVersion, path: Path) -> dict[str, object]:
    """What the UI shows of one registered version."""
    return {
        "dataset": version.ref,
        "md5": version.md5,
        "rows": dg.MetadataValue.int(version.rows),
        "size_bytes": dg.MetadataValue.int(version.size_bytes),
        "registered_at": version.created_at,
        "path": dg.MetadataValue.path(str(path)),
    }
