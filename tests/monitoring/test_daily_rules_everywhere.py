"""Every committed experiment runs daily rules, and none of them alarms on its own clean synthetic days."""

from __future__ import annotations

import pandas as pd
import pytest

from ok_ml_assets.configs import load_experiment_config
from ok_ml_assets.monitoring.daily import window_frame
from ok_ml_assets.monitoring.evaluate import evaluate
from ok_ml_assets.monitoring.rules import DailyRule
from ok_ml_assets.pipeline_types import pipeline_type
from ok_ml_assets.settings import PROJECT_ROOT

CONFIGS = sorted((PROJECT_ROOT / "asset_configs").glob("*.yml"))
KINDS = {"daily_rows_change", "rows_per_entity_change", "category_mix_psi"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_clean_days_raise_no_daily_alarm(path):
    config = load_experiment_config(path)
    rules = {asset: [r for r in items if isinstance(r, DailyRule)] for asset, items in config.monitoring.items()}
    rules = {asset: items for asset, items in rules.items() if items}
    assert rules and KINDS <= {r.rule for items in rules.values() for r in items}, "every experiment runs daily rules"
    windows = config.dataset_windows()
    seed = getattr(getattr(config, "synthetic", None), "seed", None) or 7
    tables: dict[str, list[tuple[str, pd.DataFrame]]] = {}
    for name, tag, table in pipeline_type(config.pipeline_type).synthetic_versions(config, "tiny", seed):
        tables.setdefault(name, []).append((tag, table))
    alarms = []
    for asset, items in rules.items():
        for role in {r.dataset for r in items}:
            days, size = tables[windows[role].dataset_name], windows[role].window_days or 3660
            for end in range(4, len(days) + 1):
                window = window_frame(days[max(end - size, 0):end])
                found = evaluate(asset, items, pd.DataFrame(), context_data={role: window})
                alarms += [(days[end - 1][0], o.check_name, o.observed) for o in found if not o.passed]
                assert all(o.evaluated for o in found)
    assert alarms == []


def test_a_metric_that_stops_reporting_for_a_day_fails_the_series_daily_rules():
    from ok_ml_assets.pipeline_types.time_series_classification.synthetic import stop_reporting

    config = load_experiment_config(PROJECT_ROOT / "asset_configs" / "ok_monitoring_anomaly_detection.yml")
    days = [(tag, table) for _, tag, table in pipeline_type(config.pipeline_type).synthetic_versions(config, "tiny", 21)]
    days[-1] = (days[-1][0], stop_reporting(days[-1][1]))
    rules = [r for r in config.monitoring["series_windows"] if isinstance(r, DailyRule)]
    found = evaluate("series_windows", rules, pd.DataFrame(), context_data={"series": window_frame(days)})
    failed = {o.check_name for o in found if not o.passed}
    assert failed == {"series_daily_rows_within", "series_daily_distinct_series_id_within", "series_metric_mix_psi_within",
                      "series_series_id_overlap_at_least"}
    assert all(o.details["failing_days"] == [days[-1][0]] for o in found if not o.passed)
