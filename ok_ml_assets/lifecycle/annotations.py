"""What the Dagster UI shows of every experiment's assets: owners, registered datasets' column schemas and freshness
expectations (from the data registry's catalog), and references to the code that defines them."""

import datetime as dt
import re
import warnings

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
        annotated = experiment.map_asset_specs(func=annotate_spec)
        assets = dg.with_source_code_references(list(annotated.assets or []))
    return dg.Definitions.merge(
        dg.Definitions(assets=assets),
        dg.Definitions(asset_checks=annotated.asset_checks, jobs=annotated.jobs, schedules=annotated.schedules,
                       sensors=annotated.sensors, resources=annotated.resources),
    )
