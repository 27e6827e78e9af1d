"""Monitoring gates: rules declared per asset, evaluated with Great Expectations and numpy, against a durable reference.

No Dagster here: the factory turns each `RuleOutcome` into an `AssetCheckResult`.
"""

from ok_ml_assets.monitoring.evaluate import (
    MissingInput,
    MonitoringReport,
    RuleOutcome,
    blocking,
    evaluate,
    monitor,
    summarize,
)
from ok_ml_assets.monitoring.reference import AssetReference, ReferenceStore
from ok_ml_assets.monitoring.rules import (
    AssetRules,
    MonitoringRules,
    Rule,
    RulesError,
    needed_assets,
    parse_monitoring,
)
from ok_ml_assets.monitoring.statistics import BatchSummary, ColumnSummary

__all__ = [
    "AssetReference", "AssetRules", "BatchSummary", "ColumnSummary", "MissingInput", "MonitoringReport",
    "MonitoringRules", "ReferenceStore", "Rule", "RuleOutcome", "RulesError", "blocking", "evaluate", "monitor",
    "needed_assets", "parse_monitoring", "summarize",
]
