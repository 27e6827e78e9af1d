"""Registered input datasets as daily-partitioned assets, one partition per registered tag."""


import dagster as dg

from ok_ml_assets.configs import DatasetWindow
from ok_ml_assets.resources.registry import RegistryResource


def dataset_partitions(dataset_name: str) -> dg.DynamicPartitionsDefinition:
    """The partitions of a dataset: its registered tags, shared by every experiment that reads it."""
    return dg.DynamicPartitionsDefinition(name=dataset_name)


def build_dataset_asset(experiment: str, role: str, window: DatasetWindow) -> dg.AssetsDefinition:
    """An asset whose partitions are the registered versions of `window.dataset_name`."""

    @dg.asset(
        key=[experiment, role],
        group_name=experiment,
        partitions_def=dataset_partitions(window.dataset_name),
        kinds={"dvc", "parquet"},
        description=f"Registered daily versions of the `{window.dataset_name}` dataset, read from the data registry.",
        metadata={"dataset": window.dataset_name, "window_days": window.window_days},
    )
    def registered_dataset(context: dg.AssetExecutionContext, registry: RegistryResource) -> dg.MaterializeResult:
        client = registry.client()
        version = client.version(window.dataset_name, context.partition_key)
        path = client.path(window.dataset_name, context.partition_key)
        return dg.MaterializeResult(
            metadata={
                "dataset": version.ref,
                "md5": version.md5,
                "rows": dg.MetadataValue.int(version.rows),
                "size_bytes": dg.MetadataValue.int(version.size_bytes),
                "registered_at": version.created_at,
                "path": dg.MetadataValue.path(str(path)),
            },
            data_version=dg.DataVersion(version.md5),
        )

    return registered_dataset
