"""Monitoring gates: rules declared per asset, evaluated in numpy (GX for rules that opt in) against a durable reference.

No Dagster here: the factory turns each `RuleOutcome` into an `AssetCheckResult`.
"""

import importlib

# Names resolve on first use (PEP 562): `configs` reads the rules at every CLI start, and evaluate pulls in pandas.
_MODULES = {
    # `evaluate` itself is not among them: once its module is imported, the package attribute of that name is the module.
    "evaluate": ("MissingInput", "MonitoringReport", "RuleOutcome", "blocking", "monitor", "summarize"),
    "reference": ("AssetReference", "ReferenceStore"),
    "rules": ("AssetRules", "MonitoringRules", "Rule", "RulesError", "needed_assets", "parse_monitoring"),
    "statistics": ("BatchSummary", "ColumnSummary"),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> object:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)


__all__ = [
    "AssetReference", "AssetRules", "BatchSummary", "ColumnSummary", "MissingInput", "MonitoringReport",
    "MonitoringRules", "ReferenceStore", "Rule", "RuleOutcome", "RulesError", "blocking", "monitor",
    "needed_assets", "parse_monitoring", "summarize",
]
