"""What the Dagster UI shows of every experiment's assets: owners, registered datasets' column schemas and freshness
expectations (from the data registry's catalog), and references to the code that defines them."""

import datetime as dt
import inspect
import os
import re
import types
import warnings
from collections.abc import Callable

import dagster as dg

from ok_ml_assets.configs import ExperimentConfig
from ok_ml_assets.registry.catalog import Catalog, DatasetContract

# A daily dataset is expected a day after the last; the extra hours absorb the export's usual lateness.
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=48), warn_window=dt.timedelta(hours=26))


def owner(name: str) -> str:
    """A catalog or config owner as Dagster spells owners: an e-mail address as it is, anything else as a team."""
    return name if "@" in name else "team:" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def table_schema(contract: DatasetContract) -> dg.TableSchema:
    """A dataset's columns, types and constraints as the contract declares them."""
    return dg.TableSchema(columns=[
        dg.TableColumn(name, column.type, constraints=dg.TableColumnConstraints(
            nullable=column.nullable, unique=False, other=column_rules(column.model_dump(exclude_none=True))))
        for name, column in contract.columns.items()
    ])


def column_rules(rules: dict) -> list[str]:
    """The contract's rules on a column beyond type and nullability, as readable constraints."""
    return [f"{key}: {value}" for key, value in rules.items() if key not in ("type", "nullable")]


def body_of(assets_def: dg.AssetsDefinition) -> Callable | None:
    """The Python function that computes an asset, as Dagster's code references point at it (None if there is none)."""
    node = assets_def.node_def if assets_def.computation is not None else None
    if isinstance(node, dg.OpDefinition):
        return getattr(node.compute_fn, "decorated_fn", node.compute_fn)
    if isinstance(node, dg.GraphDefinition):
        return node.composition_fn
    return None


# Every experiment of a type shares its asset bodies' code objects: finding a body's source (which tokenizes it) once per
# code object instead of once per experiment's asset saves most of the annotation time at a hundred experiments.
_REFERENCES: dict[tuple[types.CodeType, str], dg.LocalFileCodeReference] = {}


def code_reference(fn: Callable) -> dg.LocalFileCodeReference:
    """Where a function's source is, as `dg.with_source_code_references` records it: absolute file and first line."""
    cwd = os.getcwd()
    key = (fn.__code__, cwd)
    if key not in _REFERENCES:
        path = os.path.abspath(os.path.join(cwd, inspect.getsourcefile(fn)))
        _REFERENCES[key] = dg.LocalFileCodeReference(file_path=path, line_number=inspect.getsourcelines(fn)[1])
    return _REFERENCES[key]


def with_code_reference(spec: dg.AssetSpec, reference: dg.LocalFileCodeReference) -> dg.AssetSpec:
    """The spec with `reference` appended to its code references."""
    existing = spec.metadata.get("dagster/code_references")
    references = [*(existing.code_references if existing else []), reference]
    return spec.replace_attributes(
        metadata={**spec.metadata, "dagster/code_references": dg.CodeReferencesMetadataValue(code_references=references)})


def annotated_asset(asset: dg.AssetsDefinition | dg.AssetSpec, annotate_spec: Callable[[dg.AssetSpec], dg.AssetSpec]):
    """One asset (definition or spec) with every spec annotated and, for a computed asset, pointing at its body."""
    if isinstance(asset, dg.AssetSpec):
        return annotate_spec(asset)
    body = body_of(asset)
    if body is None:
        return asset.map_asset_specs(annotate_spec)
    reference = code_reference(body)
    return asset.map_asset_specs(lambda spec: with_code_reference(annotate_spec(spec), reference))


def annotate(experiment: dg.Definitions, config: ExperimentConfig, catalog: Catalog) -> dg.Definitions:
    """The experiment's definitions with owners, the catalog's schemas and freshness on its datasets, and code references."""
    datasets = {role: window.dataset_name for role, window in config.dataset_windows().items()}

    def annotate_spec(spec: dg.AssetSpec) -> dg.AssetSpec:
        contract = catalog.datasets.get(datasets.get(spec.key.path[-1], ""))
        if contract is None:
            return spec.replace_attributes(owners=spec.owners or ([owner(config.owner)] if config.owner else []))
        return spec.replace_attributes(
            owners=[owner(contract.owner)],
            metadata={**spec.metadata, "dagster/column_schema": table_schema(contract)},
            freshness_policy=DAILY_FRESHNESS if contract.partitioning == "daily" else spec.freshness_policy,
        )

    with warnings.catch_warnings():
        # Spec mapping and code references are marked preview/beta in Dagster 1.13; the warnings would flood every load.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        warnings.simplefilter("ignore", dg.BetaWarning)
        assets = [annotated_asset(asset, annotate_spec) for asset in experiment.assets or []]
    return dg.Definitions(assets=assets, asset_checks=experiment.asset_checks, jobs=experiment.jobs, schedules=experiment.schedules,
                          sensors=experiment.sensors, resources=experiment.resources)
