"""Injected faults break data the way production breaks, and prod_discovery's rules catch each one with an ERROR."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ok_ml_assets.monitoring.reference import ReferenceStore
from ok_ml_assets.monitoring.rules import DailyRule
from ok_ml_assets.synthetic import generate_world
from ok_ml_assets.synthetic.faults import (
    FAULTS,
    NEW_SOURCE_ID_BASE,
    collapse_to_popular,
    drop_day,
    drop_entities,
    drop_hours,
    duplicate_rows,
    inject_nulls,
    on_last_days,
    relabel,
    remap_ids,
    scale_column,
)
from tests.monitoring.replay import Replay, failed_errors, prod_rules


@pytest.fixture(scope="module")
def days():
    return list(generate_world("tiny", seed=7).days())


@pytest.fixture(scope="module")
def interactions(days) -> pd.DataFrame:
    return days[-1].interactions


LISTS = pd.DataFrame({
    "user_id": [1, 2, 3, 4],
    "source_ids": [[10, 11, 12], [10, 13], [11, 10, 14], [15, 10, 11]],
    "scores": [[0.9, 0.8, 0.7], [0.6, 0.5], [0.9, 0.3, 0.2], [0.8, 0.7, 0.1]],
})


# ---- what each fault does ------------------------------------------------------------------------------------

def test_faults_never_modify_their_input(days, interactions):
    before_days, before_frame, before_lists = [d.interactions.copy() for d in days], interactions.copy(), LISTS.copy()
    features = pd.DataFrame({"user_id": [1, 2], "source_id": [10, 11], "weight": [1.0, 2.0], "events": [1, 2]})
    for fault in FAULTS.values():
        if fault.target == "days":
            fault.apply(days)
        elif fault.target == "features":
            fault.apply(features)
        else:
            fault.apply(LISTS, pd.DataFrame({"user_id": [1], "source_id": [11]}))
    for frame in (remap_ids(interactions), inject_nulls(interactions, "source_id"), duplicate_rows(interactions)):
        assert frame is not interactions
    pd.testing.assert_frame_equal(interactions, before_frame)
    pd.testing.assert_frame_equal(LISTS, before_lists)
    for day, before in zip(days, before_days):
        pd.testing.assert_frame_equal(day.interactions, before)
    assert features["weight"].tolist() == [1.0, 2.0]


def test_every_fault_of_the_issue_is_named():
    assert set(FAULTS) == {"feature_scale_shift", "source_id_space_change", "nulls_in_column", "missing_day",
                           "duplicated_events", "model_collapse_to_popular", *MARGINAL_KEEPING}
    assert all(fault.description for fault in FAULTS.values())


def test_scale_column():
    frame = pd.DataFrame({"weight": [1.0, 2.5]})
    assert scale_column(frame, "weight", 2.0)["weight"].tolist() == [2.0, 5.0]


def test_remapped_ids_are_consistent_and_in_a_new_range(interactions):
    broken = remap_ids(interactions)
    assert broken["source_id"].min() >= NEW_SOURCE_ID_BASE
    pairs = pd.DataFrame({"old": interactions["source_id"], "new": broken["source_id"]}).drop_duplicates()
    assert pairs["old"].is_unique and pairs["new"].is_unique
    assert broken["user_id"].equals(interactions["user_id"])


def test_nulls_appear_in_about_the_requested_share(interactions):
    broken = inject_nulls(interactions, "source_id", share=0.1, seed=1)
    assert broken["source_id"].isna().mean() == pytest.approx(0.1, abs=0.02)
    assert broken.drop(columns="source_id").equals(interactions.drop(columns="source_id"))


def test_duplicated_events_keep_the_contract_primary_key_unique(interactions):
    broken = duplicate_rows(interactions, share=1.0, ts_shift=pd.Timedelta(milliseconds=1))
    assert len(broken) == 2 * len(interactions)
    assert not broken.duplicated(["user_id", "source_id", "event", "ts"]).any()
    assert broken["ts"].is_monotonic_increasing


def test_day_level_faults_touch_only_the_days_they_name(days):
    broken = on_last_days(days, 2, lambda frame: frame.head(0))
    assert [len(d.interactions) for d in broken[-2:]] == [0, 0]
    assert all(b.interactions is d.interactions for b, d in zip(broken[:-2], days[:-2]))
    dropped = drop_day(days, back=2)
    assert len(dropped) == len(days) - 1 and days[-3].date not in {d.date for d in dropped}
    assert drop_day(days, date=days[0].date)[0].date == days[1].date


def test_dropped_entities_lose_every_row_and_the_others_keep_theirs(interactions):
    broken = drop_entities(interactions, "user_id", share=0.2, seed=1)
    kept, users = set(broken["user_id"]), set(interactions["user_id"])
    assert len(kept) / len(users) == pytest.approx(0.8, abs=0.04)
    pd.testing.assert_frame_equal(broken, interactions[interactions["user_id"].isin(kept)].reset_index(drop=True))


def test_relabel_swaps_categories_and_keeps_everything_else(interactions):
    broken = relabel(interactions, "event")
    counts, before = broken["event"].value_counts(), interactions["event"].value_counts()
    assert (counts["click"], counts["like"], counts["view"]) == (before["like"], before["click"], before["view"])
    assert broken.drop(columns="event").equals(interactions.drop(columns="event"))


def test_dropped_hours_leave_the_rest_of_the_day(interactions):
    broken = drop_hours(interactions, hours=(22, 23))
    assert set(broken["ts"].dt.hour) == set(range(22))
    assert len(broken) == int((interactions["ts"].dt.hour < 22).sum())


def test_collapse_gives_everyone_the_most_popular_sources_except_their_subscriptions():
    subscribed = pd.DataFrame({"user_id": [2], "source_id": [10]})
    broken = collapse_to_popular(LISTS, subscribed)
    assert broken["source_ids"].tolist() == [[10, 11, 12], [11, 12], [10, 11, 12], [10, 11, 12]]
    assert broken["scores"].equals(LISTS["scores"])
    by_weight = collapse_to_popular(LISTS, popular=[15, 14, 13, 12])
    assert by_weight["source_ids"].tolist()[0] == [15, 14, 13]


# ---- incident replay: prod_discovery's rules catch every fault ----------------------------------------------

CAUGHT_BY = {
    "feature_scale_shift": {"user_source_features:weight_psi_within", "user_source_features:weight_ks_within"},
    "source_id_space_change": {"user_source_features:source_id_psi_within", "user_source_features:source_id_ks_within"},
    "nulls_in_column": {"user_source_features:weight_not_null"},
    "missing_day": {"user_source_features:days_since_last_psi_within"},
    "duplicated_events": {"user_source_features:weight_psi_within", "user_source_features:events_psi_within"},
    "model_collapse_to_popular": {"recommendations:top_10_sources_share_at_most"},
    "users_missing_from_a_day": {"user_source_features:interactions_daily_rows_within",
                                 "user_source_features:interactions_daily_distinct_user_id_within",
                                 "user_source_features:interactions_user_id_overlap_at_least"},
    "events_under_wrong_type": {"user_source_features:interactions_event_mix_psi_within"},
    "hours_missing_from_a_day": {"user_source_features:interactions_hours_covered_at_least",
                                 "user_source_features:interactions_daily_rows_within"},
}
# Faults that keep every column's marginal distribution: only the daily rules over the raw versions see them.
MARGINAL_KEEPING = ("users_missing_from_a_day", "events_under_wrong_type", "hours_missing_from_a_day")


def without_daily_rules(rules: dict) -> dict:
    """The rules as they were before daily rules existed."""
    return {asset: [rule for rule in items if not isinstance(rule, DailyRule)] for asset, items in rules.items()}


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> Replay:
    return Replay(tmp_path_factory.mktemp("replay"))


@pytest.fixture(scope="module")
def accepted(days, replay, tmp_path_factory) -> Path:
    """A reference store holding the clean run of the day before the last, as accepted and published."""
    root = tmp_path_factory.mktemp("accepted")
    outcomes = replay.run(ReferenceStore(root), prod_rules(), days[:-1], accept=True)
    assert failed_errors(outcomes) == set()
    return root


@pytest.fixture
def store(accepted, tmp_path) -> ReferenceStore:
    shutil.copytree(accepted, tmp_path / "store")
    return ReferenceStore(tmp_path / "store")


def test_the_clean_last_day_passes_every_error_rule(days, replay, store):
    outcomes = replay.run(store, prod_rules(), days)
    assert set(outcomes) == {"user_source_features", "recommendations"}
    assert failed_errors(outcomes) == set()
    assert all(o.evaluated for o in outcomes["user_source_features"])
    novelty = next(o for o in outcomes["recommendations"] if o.rule == "novelty")
    assert novelty.evaluated and novelty.passed


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_each_fault_is_caught_by_an_error_before_publication(name, days, replay, store):
    outcomes = replay.run(store, prod_rules(), days, fault=FAULTS[name])
    failed = failed_errors(outcomes)
    assert CAUGHT_BY[name] <= failed, f"{name} raised {sorted(failed)}"
    if FAULTS[name].target != "recommendations":
        assert "recommendations" not in outcomes, "a blocked feature table must not be trained on"


@pytest.mark.parametrize("name", MARGINAL_KEEPING)
def test_faults_that_keep_the_marginals_slip_through_every_other_rule(name, days, replay, store):
    outcomes = replay.run(store, without_daily_rules(prod_rules()), days, fault=FAULTS[name])
    assert failed_errors(outcomes) == set()


def test_a_caught_fault_does_not_become_the_reference(days, replay, store):
    before = store.load("prod_discovery", "user_source_features").summary
    replay.run(store, prod_rules(), days, fault=FAULTS["feature_scale_shift"], accept=True)
    assert store.load("prod_discovery", "user_source_features").summary == before
    again = replay.run(store, prod_rules(), days, fault=FAULTS["feature_scale_shift"], accept=True)
    assert CAUGHT_BY["feature_scale_shift"] <= failed_errors(again)
    assert np.isfinite(before.columns["weight"].mean)
