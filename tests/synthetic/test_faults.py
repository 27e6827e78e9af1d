"""Injected faults break data the way production breaks, and prod_discovery's rules catch each one with an ERROR."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ok_ml_assets.monitoring.reference import ReferenceStore
from ok_ml_assets.synthetic import generate_world
from ok_ml_assets.synthetic.faults import (
    FAULTS,
    NEW_SOURCE_ID_BASE,
    collapse_to_popular,
    drop_day,
    duplicate_rows,
    inject_nulls,
    on_last_days,
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
                           "duplicated_events", "model_collapse_to_popular"}
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
}


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


def test_a_caught_fault_does_not_become_the_reference(days, replay, store):
    before = store.load("prod_discovery", "user_source_features").summary
    replay.run(store, prod_rules(), days, fault=FAULTS["feature_scale_shift"], accept=True)
    assert store.load("prod_discovery", "user_source_features").summary == before
    again = replay.run(store, prod_rules(), days, fault=FAULTS["feature_scale_shift"], accept=True)
    assert CAUGHT_BY["feature_scale_shift"] <= failed_errors(again)
    assert np.isfinite(before.columns["weight"].mean)
