"""Publication's own verification that every blocking check upstream passed for the data it publishes."""

from collections.abc import Sequence

import dagster as dg


class GateClosed(RuntimeError):
    """A blocking check upstream did not pass for the latest data; nothing may be published."""


def _latest_materialization_id(instance: dg.DagsterInstance, key: dg.AssetKey) -> int | None:
    records = instance.fetch_materializations(key, limit=1).records
    return records[0].storage_id if records else None


def gate_failures(instance: dg.DagsterInstance, check_keys: Sequence[dg.AssetCheckKey]) -> list[str]:
    """Why each blocking check does not vouch for its asset's latest materialization (empty when all do).

    Only blocking (ERROR) checks are passed in, so any status but SUCCEEDED closes the gate.
    """
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(check_keys))
    problems = []
    for key in check_keys:
        name = f"{key.asset_key.to_user_string()}:{key.name}"
        record = latest.get(key)
        if record is None or record.event is None:
            problems.append(f"{name} was never evaluated")
            continue
        evaluation = record.event.dagster_event.event_specific_data if record.event.dagster_event else None
        if record.status.value != "SUCCEEDED" or not isinstance(evaluation, dg.AssetCheckEvaluation):
            problems.append(f"{name} is {record.status.value}")
            continue
        target = evaluation.target_materialization_data
        if target is None or target.storage_id != _latest_materialization_id(instance, key.asset_key):
            problems.append(f"{name} did not evaluate the latest materialization")
    return problems


def require_open_gates(context: dg.AssetExecutionContext, check_keys: Sequence[dg.AssetCheckKey]) -> None:
    """Fail the step, naming the checks, unless every blocking check upstream passed for the latest data."""
    problems = gate_failures(context.instance, check_keys)
    if problems:
        raise GateClosed("publication blocked: " + "; ".join(problems))
    context.log.info(f"all {len(check_keys)} blocking checks upstream passed for the latest data")
