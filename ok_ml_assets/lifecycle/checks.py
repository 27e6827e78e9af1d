"""Asset checks of an experiment: one per monitoring rule of its YAML, whatever its pipeline type."""

from collections.abc import Callable, Mapping

import dagster as dg
import pandas as pd

from ok_ml_assets.configs import DatasetWindow, ExperimentConfig
from ok_ml_assets.lifecycle.assets import read_daily_window
from ok_ml_assets.monitoring import Rule, monitor, needed_assets
from ok_ml_assets.monitoring.rules import daily_datasets, window_columns
from ok_ml_assets.resources.monitoring import MonitoringResource, check_result
from ok_ml_assets.resources.registry import RegistryResource

KeyOf = Callable[[str], dg.AssetKey]


def rule_spec(asset_key: dg.AssetKey, rule: Rule, reads: list[dg.AssetKey]) -> dg.AssetCheckSpec:
    """The check of one rule: blocking when its severity is ERROR."""
    return dg.AssetCheckSpec(
        rule.check_name, asset=asset_key, blocking=rule.severity == "ERROR", description=rule.assertion,
        additional_deps=reads,
    )


def build_rule_checks(
    experiment: str, asset: str, rules: list[Rule], key: KeyOf, windows: Mapping[str, DatasetWindow] | None = None,
) -> dg.AssetChecksDefinition:
    """One multi-check evaluating every rule of an asset in one pass over its value (and the daily versions daily rules read)."""
    windows = windows or {}
    roles = sorted(daily_datasets(rules))
    context_assets = sorted(needed_assets(rules) - {asset} - set(roles))

    @dg.multi_asset_check(
        # Each check depends on what its own rule reads, so lineage shows which checks look at the raw dataset.
        specs=[rule_spec(key(asset), rule, [key(name) for name in sorted(rule.needed_assets() - {asset})]) for rule in rules],
        name=f"{experiment}_{asset}_monitoring",
        ins={asset: dg.AssetIn(key(asset)), **{name: dg.AssetIn(key(name)) for name in context_assets}},
        description=f"Monitoring rules of {asset}, evaluated against the last accepted reference.",
    )
    def rule_checks(
        context: dg.AssetCheckExecutionContext, monitoring: MonitoringResource, registry: RegistryResource, **values: pd.DataFrame,
    ):
        frame = values.pop(asset)
        for role in roles:
            values[role] = read_daily_window(context.instance, registry.client(), key(asset), windows[role], window_columns(rules, role))
        report = monitor(monitoring.store(), experiment, asset, rules, frame, values, run_id=context.run.run_id)
        context.log.info(f"{asset}: {len(report.outcomes)} rules, reference {'accepted' if report.accepted else 'kept'}")
        for outcome in report.outcomes:
            yield check_result(key(asset), outcome)

    return rule_checks


def build_experiment_checks(config: ExperimentConfig, key: KeyOf) -> list[dg.AssetChecksDefinition]:
    """The monitoring checks of an experiment: one multi-check per monitored asset, one check per rule."""
    windows = config.dataset_windows()
    return [build_rule_checks(config.experiment_name, asset, rules, key, windows) for asset, rules in config.monitoring.items() if rules]


def blocking_check_keys(checks: list[dg.AssetChecksDefinition]) -> list[dg.AssetCheckKey]:
    """The keys of every blocking check: publication verifies each of them itself."""
    return [spec.key for check in checks for spec in check.check_specs if spec.blocking]
