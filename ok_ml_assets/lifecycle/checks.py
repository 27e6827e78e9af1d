"""Asset checks of an experiment: one per monitoring rule of its YAML, whatever its pipeline type.

On `engine: spark` the checked asset and the assets its rules read come in as Spark DataFrames (EngineTable inputs),
so Spark evaluates the rules and the table never reaches the driver whole.
"""

import inspect
from collections.abc import Callable, Mapping

import dagster as dg

from ok_ml_assets.configs import DatasetWindow, ExperimentConfig
from ok_ml_assets.lifecycle.assets import read_daily_window
from ok_ml_assets.monitoring import Rule, monitor, needed_assets
from ok_ml_assets.monitoring.rules import daily_datasets, window_columns
from ok_ml_assets.resources.io import EngineTable
from ok_ml_assets.resources.monitoring import MonitoringResource, check_result
from ok_ml_assets.resources.registry import RegistryResource

KeyOf = Callable[[str], dg.AssetKey]


def rule_spec(asset_key: dg.AssetKey, rule: Rule, reads: list[dg.AssetKey]) -> dg.AssetCheckSpec:
    """The check of one rule: blocking when its severity is ERROR."""
    return dg.AssetCheckSpec(
        rule.check_name, asset=asset_key, blocking=rule.severity == "ERROR", description=rule.assertion,
        additional_deps=reads,
    )


def engine_tables(body: Callable, names: list[str]) -> Callable:
    """`body` declaring these inputs as EngineTable, so the IO manager hands them over as Spark DataFrames.

    The type sits on the parameters: Dagster refuses a typed AssetIn for an asset that is also a check's dependency.
    """
    signature = inspect.signature(body)
    fixed = [p for p in signature.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    typed = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=EngineTable) for name in names]
    rest = [p for p in signature.parameters.values() if p.kind == inspect.Parameter.VAR_KEYWORD]
    body.__signature__ = signature.replace(parameters=[*fixed, *typed, *rest])
    body.__annotations__ = {**body.__annotations__, **{name: EngineTable for name in names}}
    return body


def build_rule_checks(
    experiment: str, asset: str, rules: list[Rule], key: KeyOf, windows: Mapping[str, DatasetWindow] | None = None,
    engine: str = "local",
) -> dg.AssetChecksDefinition:
    """One multi-check evaluating every rule of an asset in one pass over its value (and the daily versions daily rules read).

    On `engine: spark` the asset and its context assets arrive as Spark DataFrames and Spark evaluates the rules.
    """
    windows = windows or {}
    roles = sorted(daily_datasets(rules))
    context_assets = sorted(needed_assets(rules) - {asset} - set(roles))

    def rule_checks(
        context: dg.AssetCheckExecutionContext, monitoring: MonitoringResource, registry: RegistryResource, **values: object,
    ):
        frame = values.pop(asset)
        for role in roles:
            values[role] = read_daily_window(context.instance, registry.client(), key(asset), windows[role], window_columns(rules, role),
                                             engine)
        report = monitor(monitoring.store(), experiment, asset, rules, frame, values, run_id=context.run.run_id)
        context.log.info(f"{asset}: {len(report.outcomes)} rules, reference {'accepted' if report.accepted else 'kept'}")
        for outcome in report.outcomes:
            yield check_result(key(asset), outcome)

    if engine == "spark":
        engine_tables(rule_checks, [asset, *context_assets])
    return dg.multi_asset_check(
        # Each check depends on what its own rule reads, so lineage shows which checks look at the raw dataset.
        specs=[rule_spec(key(asset), rule, [key(name) for name in sorted(rule.needed_assets() - {asset})]) for rule in rules],
        name=f"{experiment}_{asset}_monitoring",
        ins={asset: dg.AssetIn(key(asset)), **{name: dg.AssetIn(key(name)) for name in context_assets}},
        description=f"Monitoring rules of {asset}, evaluated against the last accepted reference.",
    )(rule_checks)


def build_experiment_checks(config: ExperimentConfig, key: KeyOf) -> list[dg.AssetChecksDefinition]:
    """The monitoring checks of an experiment: one multi-check per monitored asset, one check per rule."""
    windows = config.dataset_windows()
    engine = getattr(config, "engine", "local")
    return [build_rule_checks(config.experiment_name, asset, rules, key, windows, engine)
            for asset, rules in config.monitoring.items() if rules]


def blocking_check_keys(checks: list[dg.AssetChecksDefinition]) -> list[dg.AssetCheckKey]:
    """The keys of every blocking check: publication verifies each of them itself."""
    return [spec.key for check in checks for spec in check.check_specs if spec.blocking]
