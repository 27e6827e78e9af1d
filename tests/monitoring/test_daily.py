"""Daily rules: each day of a dataset's window against the other days, measured and evaluated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ok_ml_assets.monitoring import daily
from ok_ml_assets.monitoring.evaluate import evaluate
from ok_ml_assets.monitoring.rules import RulesError, parse_monitoring, window_columns

DAYS = [f"2026-11-0{i}" for i in range(1, 7)]


def day_table(tag: str, users: int = 100, events_per_user: int = 4, hours: int = 24, swap: bool = False) -> pd.DataFrame:
    """`users` users with `events_per_user` events each, spread over the first `hours` hours, a 3:1 view:like mix."""
    user_id = np.repeat(np.arange(1, users + 1), events_per_user)
    event = np.where(np.arange(user_id.size) % 4 == 0, "like", "view")
    if swap:
        event = np.where(event == "like", "view", "like")
    ts = pd.Timestamp(tag, tz="UTC") + pd.to_timedelta(np.arange(user_id.size) % hours, unit="h")
    return pd.DataFrame({"user_id": user_id, "event": event, "ts": ts})


def window(last: pd.DataFrame | None = None) -> pd.DataFrame:
    tables = [(tag, day_table(tag)) for tag in DAYS]
    if last is not None:
        tables[-1] = (DAYS[-1], last)
    return daily.window_frame(tables)


def test_window_frame_tags_each_row_with_its_day():
    frame = window()
    assert daily.days_of(frame) == DAYS
    assert daily.rows_per_day(frame).tolist() == [400.0] * 6


def test_a_day_without_rows_is_no_day_of_the_window():
    frame = daily.window_frame([(DAYS[1], day_table(DAYS[1])), (DAYS[0], day_table(DAYS[0]).iloc[:0]), (DAYS[2], day_table(DAYS[2]))])
    assert daily.days_of(frame) == [DAYS[1], DAYS[2]] and daily.rows_per_day(frame).index.tolist() == [DAYS[1], DAYS[2]]
    assert frame[daily.DAY].tolist() == [DAYS[1]] * 400 + [DAYS[2]] * 400


def test_each_day_is_compared_with_the_median_of_the_others():
    values = pd.Series([100.0, 100.0, 102.0, 98.0, 50.0], index=list("abcde"))
    scores = daily.change_from_others(values)
    assert scores.loc["e", "baseline"] == 100.0 and scores.loc["e", "score"] == pytest.approx(0.5)
    assert scores.loc["a", "baseline"] == 99.0


def test_measures_see_users_missing_events_swapped_and_hours_lost():
    clean = window()
    assert daily.change_from_others(daily.distinct_per_day(clean, "user_id"))["score"].max() == 0
    missing = window(day_table(DAYS[-1], users=80))
    assert daily.change_from_others(daily.distinct_per_day(missing, "user_id"))["score"].iloc[-1] == pytest.approx(0.2)
    assert daily.key_overlap(missing, "user_id")["score"].iloc[-1] == pytest.approx(0.8)
    assert daily.change_from_others(daily.rows_per_entity(window(day_table(DAYS[-1], events_per_user=8)), "user_id"))[
        "score"].iloc[-1] == pytest.approx(1.0)
    assert daily.category_psi(clean, "event")["score"].max() == pytest.approx(0.0)
    assert daily.category_psi(window(day_table(DAYS[-1], swap=True)), "event")["score"].iloc[-1] > 0.5
    assert daily.hours_covered(clean, "ts")["score"].tolist() == [1.0] * 6
    assert daily.hours_covered(window(day_table(DAYS[-1], hours=18)), "ts")["score"].iloc[-1] == 0.75


def test_rows_stamped_on_another_day_do_not_cover_its_hours():
    late = day_table(DAYS[-1]).assign(ts=lambda f: f["ts"] - pd.Timedelta(days=1))
    assert daily.hours_covered(window(late), "ts")["score"].iloc[-1] == 0.0


SPECS = [
    {"rule": "daily_rows_change", "dataset": "interactions", "max_relative_change": 0.1},
    {"rule": "daily_distinct_change", "dataset": "interactions", "column": "user_id", "max_relative_change": 0.1},
    {"rule": "rows_per_entity_change", "dataset": "interactions", "column": "user_id", "max_relative_change": 0.1},
    {"rule": "category_mix_psi", "dataset": "interactions", "column": "event", "max_psi": 0.05},
    {"rule": "key_overlap", "dataset": "interactions", "column": "user_id", "min": 0.9},
    {"rule": "hours_covered", "dataset": "interactions", "min": 0.95},
]


def daily_rules():
    return parse_monitoring({"features": SPECS})["features"]


def test_daily_rules_are_named_after_the_dataset_and_what_they_assert():
    rules = daily_rules()
    assert [rule.check_name for rule in rules] == [
        "interactions_daily_rows_within", "interactions_daily_distinct_user_id_within", "interactions_rows_per_user_id_within",
        "interactions_event_mix_psi_within", "interactions_user_id_overlap_at_least", "interactions_hours_covered_at_least",
    ]
    assert all(rule.needed_assets() == {"interactions"} for rule in rules)
    assert window_columns(rules, "interactions") == ["user_id", "event", "ts"]
    with pytest.raises(RulesError, match="dataset"):
        parse_monitoring({"features": [{"rule": "daily_rows_change", "max_relative_change": 0.1}]})


def outcomes(last: pd.DataFrame | None = None) -> dict:
    features = pd.DataFrame({"user_id": [1]})
    return {o.check_name: o for o in evaluate("features", daily_rules(), features, context_data={"interactions": window(last)})}


def test_clean_days_pass_every_daily_rule():
    assert all(o.passed and o.evaluated for o in outcomes().values())


@pytest.mark.parametrize("last,failing", [
    (day_table(DAYS[-1], users=80), {"interactions_daily_rows_within", "interactions_daily_distinct_user_id_within",
                                     "interactions_user_id_overlap_at_least"}),
    (day_table(DAYS[-1], swap=True), {"interactions_event_mix_psi_within"}),
    (day_table(DAYS[-1], hours=18), {"interactions_hours_covered_at_least"}),
    (day_table(DAYS[-1], events_per_user=8), {"interactions_daily_rows_within", "interactions_rows_per_user_id_within"}),
], ids=["users_missing", "events_swapped", "hours_missing", "events_doubled"])
def test_each_fault_fails_its_rules_and_names_the_day(last, failing):
    found = outcomes(last)
    assert {name for name, o in found.items() if not o.passed} == failing
    for name in failing:
        assert found[name].details["worst_day"] == DAYS[-1] and found[name].examples[0]["day"] == DAYS[-1]
        assert found[name].details["failing_days"] == [DAYS[-1]]
        assert any(key.startswith("threshold_") for key in found[name].metadata())


def test_a_short_window_leaves_daily_rules_unevaluated_and_a_missing_column_fails():
    short = daily.window_frame([(tag, day_table(tag)) for tag in DAYS[:3]])
    found = evaluate("features", daily_rules(), pd.DataFrame(), context_data={"interactions": short})
    assert all(o.passed and not o.evaluated for o in found)
    broken = evaluate("features", daily_rules()[3:4], pd.DataFrame(), context_data={"interactions": window().drop(columns="event")})
    assert not broken[0].passed and "event" in broken[0].description
