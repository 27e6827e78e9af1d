"""Value rules as Great Expectations expectations, for the rules that opt in with `engine: great_expectations`.

GX takes seconds to import (it pulls in pyspark, among others): this module imports it only when such a rule is
evaluated, and `evaluate` imports this module only then. All GX rules of an asset run as one ExpectationSuite per
table on an ephemeral context, in one pass.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any

from ok_ml_assets.monitoring.values import MAX_EXAMPLES, QUANTILES, ValuePlan, ValueResult

_GX_LOCK = threading.Lock()


@functools.cache
def _gx_context():
    """The process's ephemeral GX context, made on first use and kept.

    A new context per evaluation costs a config round trip per data source and asset (~0.2 s); the price of
    keeping one is that GX holds on to the last batch of each table until the next evaluation replaces it.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _whole_dataframe(context, source_name: str, table: str):
    """The batch definition of a whole dataframe for one table, created the first time it is asked for."""
    sources = context.data_sources.all()
    source = sources[source_name] if source_name in sources else context.data_sources.add_pandas(source_name)
    try:
        asset = source.get_asset(table)
    except LookupError:
        asset = source.add_dataframe_asset(table)
    try:
        return asset.get_batch_definition("whole")
    except (KeyError, LookupError):
        return asset.add_batch_definition_whole_dataframe("whole")


def _expectation_groups(plans: Sequence[ValuePlan]) -> list[list[ValuePlan]]:
    """Plans that become one expectation each, except quantile rules on one column, which share one.

    GX 1.x resolves a single quantile metric per column within a suite, so two quantile expectations on the
    same column would both see the first one's quantiles.
    """
    groups: dict[object, list[ValuePlan]] = {}
    for plan in plans:
        key = ("quantiles", plan.kwargs["column"]) if plan.expectation == QUANTILES else plan.rule.check_name
        groups.setdefault(key, []).append(plan)
    return list(groups.values())


def _kwargs(group: list[ValuePlan]) -> dict[str, Any]:
    if group[0].expectation != QUANTILES:
        return group[0].kwargs
    ranges = [plan.kwargs["quantile_ranges"] for plan in group]
    return {"column": group[0].kwargs["column"], "quantile_ranges": {
        "quantiles": [q for rng in ranges for q in rng["quantiles"]],
        "value_ranges": [v for rng in ranges for v in rng["value_ranges"]],
    }}


def validate_with_gx(asset_name: str, plans: Sequence[ValuePlan]) -> dict[str, ValueResult]:
    """Run the plans as one ExpectationSuite per table on a whole-dataframe batch; results by check name."""
    if not plans:
        return {}
    import great_expectations as gx
    import great_expectations.expectations as gxe

    by_table: dict[str, list[ValuePlan]] = {}
    for plan in plans:
        by_table.setdefault(plan.table, []).append(plan)
    results: dict[str, ValueResult] = {}
    with _GX_LOCK:
        context = _gx_context()
        for table, table_plans in by_table.items():
            definition = _whole_dataframe(context, f"{asset_name} monitoring", table)
            batch = definition.get_batch(batch_parameters={"dataframe": table_plans[0].frame})
            suite = gx.ExpectationSuite(name=f"{asset_name}: {table}")
            groups = _expectation_groups(table_plans)
            for index, group in enumerate(groups):
                suite.add_expectation(getattr(gxe, group[0].expectation)(**_kwargs(group), meta={"group": index}))
            result = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES})
            for item in result.results:
                for position, plan in enumerate(groups[item.expectation_config.meta["group"]]):
                    results[plan.rule.check_name] = _from_gx(plan, item, position)
    return results


def _gx_error(item) -> str | None:
    info = item.exception_info or {}
    if info.get("raised_exception"):
        return info.get("exception_message") or "expectation raised"
    for nested in info.values():
        if isinstance(nested, dict) and nested.get("raised_exception"):
            return nested.get("exception_message") or "expectation raised"
    return None


def _from_gx(plan: ValuePlan, item, position: int = 0) -> ValueResult:
    """A GX expectation result as the plan's result: observed value or unexpected count, with offending rows.

    `position` picks this rule's quantile when several quantile rules shared the expectation.
    """
    error = _gx_error(item)
    if error is not None:
        return ValueResult(success=False, error=error)
    result = item.result or {}
    if plan.expectation == QUANTILES:
        values = (result.get("observed_value") or {}).get("values") or []
        passed = (result.get("details") or {}).get("success_details") or []
        observed = values[position] if position < len(values) else None
        return ValueResult(success=bool(passed[position]) if position < len(passed) else False, observed=observed, aggregate=True)
    if "observed_value" in result:
        return ValueResult(success=bool(item.success), observed=result["observed_value"], aggregate=True)
    return ValueResult(
        success=bool(item.success), unexpected_count=int(result.get("unexpected_count") or 0),
        element_count=int(result.get("element_count") or 0), unexpected_percent=result.get("unexpected_percent"),
        positions=tuple(list(result.get("partial_unexpected_index_list") or [])[:MAX_EXAMPLES]),
    )
