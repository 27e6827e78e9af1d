"""Faults that keep every column's marginal distribution, on the real graph: the daily rules block them before Kafka.

A share of users missing from a day, clicks and likes swapped, hours missing: each on its own day of the registered
window (DVC registry), through the refresh job, its checks and the publication gate, to the topic on the real broker.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import partial

import pytest

from ok_ml_assets.definitions import build_definitions
from ok_ml_assets.orchestration import materialize_refresh
from ok_ml_assets.synthetic import generate_world
from ok_ml_assets.synthetic.faults import drop_entities, drop_hours, relabel
from ok_ml_assets.synthetic.world import SyntheticWorld
from tests.conftest import relaxed_config, write_config
from tests.integration.test_monitoring_gates import replace_registry
from tests.kafka_utils import read_topic

pytestmark = pytest.mark.integration
NAME = "prod_discovery"
WORLD = generate_world("tiny", seed=7)
# Days back from the last one, the fault that breaks it, and the daily checks that must name that day.
BROKEN_DAYS = {
    0: (partial(drop_entities, column="user_id", share=0.15),
        {"interactions_daily_rows_within", "interactions_daily_distinct_user_id_within", "interactions_user_id_overlap_at_least"}),
    2: (partial(relabel, column="event"), {"interactions_event_mix_psi_within"}),
    4: (drop_hours, {"interactions_hours_covered_at_least"}),
}


@dataclasses.dataclass(frozen=True)
class WorldWithSubtleFaults(SyntheticWorld):
    """The tiny world with one marginal-keeping fault on each of three days of the window."""

    def days(self):
        days = list(super().days())
        for back, (breaks, _) in BROKEN_DAYS.items():
            day = days[-1 - back]
            days[-1 - back] = dataclasses.replace(day, interactions=breaks(day.interactions))
        yield from days


def daily_evaluations(result) -> dict[str, object]:
    """The daily checks' evaluations of a run, by check name."""
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.check_name.startswith("interactions_")}


def test_clean_days_pass_every_daily_check_and_publish(home, settings, instance):
    config = write_config(home, relaxed_config())
    result = materialize_refresh(build_definitions(settings), instance, NAME)
    evaluations = daily_evaluations(result)
    assert len(evaluations) == 7 and all(e.passed for e in evaluations.values())
    assert result.success and read_topic(settings.kafka_bootstrap_servers, config["publication"]["topic"])


def test_faults_that_keep_every_marginal_are_blocked_before_kafka(home, settings, instance):
    replace_registry(home, settings, WorldWithSubtleFaults(WORLD.preset, WORLD.seed, WORLD.start))
    config = write_config(home, relaxed_config())
    result = materialize_refresh(build_definitions(settings), instance, NAME)

    evaluations = daily_evaluations(result)
    failed = {name for name, e in evaluations.items() if not e.passed}
    expected = set().union(*(checks for _, checks in BROKEN_DAYS.values()))
    assert expected <= failed, sorted(failed)
    for back, (_, checks) in BROKEN_DAYS.items():
        tag = (WORLD.start + dt.timedelta(days=WORLD.preset.days - 1 - back)).isoformat()
        for name in checks:
            assert tag in evaluations[name].metadata["failing_days"].value, (name, tag)
    other = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed} - failed
    assert other == set(), f"only the daily rules see these faults, yet {sorted(other)} failed"
    assert not result.success
    assert read_topic(settings.kafka_bootstrap_servers, config["publication"]["topic"]) == {}
