"""The monitoring reference store as a Dagster resource, and monitoring outcomes as asset check results."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ok_ml_assets.monitoring import ReferenceStore, RuleOutcome


class MonitoringResource(dg.ConfigurableResource):
    """Where the last accepted statistics and the last published lists are kept, durably."""

    reference_dir: str

    def store(self) -> ReferenceStore:
        """The reference store."""
        return ReferenceStore(Path(self.reference_dir))


def metadata_value(value: object) -> dg.MetadataValue:
    """A plain value as typed metadata, numbers as numbers so the UI can plot them."""
    if value is None:
        return dg.MetadataValue.null()
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    if isinstance(value, str):
        return dg.MetadataValue.text(value)
    return dg.MetadataValue.json(value)


def check_result(asset_key: dg.AssetKey, outcome: RuleOutcome) -> dg.AssetCheckResult:
    """One rule's outcome as the result of its asset check, with observed value, threshold and examples."""
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=outcome.check_name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if outcome.severity == "ERROR" else dg.AssetCheckSeverity.WARN,
        description=outcome.description,
        metadata={name: metadata_value(value) for name, value in outcome.metadata().items()},
    )
