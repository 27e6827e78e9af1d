"""No false alarms: prod_discovery's rules raise no ERROR over 30 clean synthetic days."""

from __future__ import annotations

import pytest

from ok_ml_assets.monitoring.reference import ReferenceStore
from ok_ml_assets.synthetic import generate_world
from tests.monitoring.replay import EXPERIMENT, Replay, failed_errors, prod_rules

DAYS = 30
FIRST_FULL_WINDOW = 9


@pytest.fixture(scope="module")
def days():
    return list(generate_world("tiny", seed=11, days=DAYS).days())


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> Replay:
    return Replay(tmp_path_factory.mktemp("replay"))


@pytest.mark.parametrize("cadence", [1, 7], ids=["daily", "weekly"])
def test_clean_days_raise_no_error_and_every_run_is_published(cadence, days, replay, tmp_path):
    store = ReferenceStore(tmp_path)
    rules = prod_rules()
    alarms, warnings = {}, {}
    for last in range(FIRST_FULL_WINDOW, DAYS, cadence):
        outcomes = replay.run(store, rules, days[: last + 1], accept=True)
        alarms[days[last].tag] = failed_errors(outcomes)
        warnings[days[last].tag] = {o.check_name for items in outcomes.values() for o in items if not o.passed}
        assert set(outcomes) == {"user_source_features", "recommendations"}
    assert not any(alarms.values()), {tag: found for tag, found in alarms.items() if found}
    assert not any(warnings.values()), {tag: found for tag, found in warnings.items() if found}
    reference = store.load(EXPERIMENT, "recommendations")
    assert reference.summary is not None and reference.published is not None
