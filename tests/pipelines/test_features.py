"""Windowed user-source features."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ok_ml_assets.pipeline_types.recommendation_als.features import build_user_source_features, read_pairs

WEIGHTS = {"view": 1.0, "click": 3.0, "like": 5.0, "comment": 8.0}


def events(tmp_path, name, rows):
    frame = pd.DataFrame(rows, columns=["user_id", "source_id", "event", "ts"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    path = tmp_path / f"{name}.parquet"
    frame.to_parquet(path)
    return path


def test_weights_decay_with_age_and_count_events(tmp_path):
    day1 = events(tmp_path, "d1", [(1, 10, "like", "2026-11-01 10:00"), (1, 10, "view", "2026-11-01 11:00")])
    day3 = events(tmp_path, "d3", [(1, 10, "click", "2026-11-03 09:00"), (2, 11, "view", "2026-11-03 09:00")])
    features = build_user_source_features([day1, day3], dt.date(2026, 11, 3), WEIGHTS, half_life_days=2)
    row = features.set_index(["user_id", "source_id"]).loc[(1, 10)]
    assert row["weight"] == pytest.approx((5 + 1) * 0.5 + 3)
    assert row["events"] == 3 and row["days_since_last"] == 0
    assert list(features.columns) == ["user_id", "source_id", "weight", "events", "days_since_last"]


def test_inactive_users_are_dropped(tmp_path):
    path = events(tmp_path, "d", [(1, 10, "view", "2026-11-01"), (1, 11, "view", "2026-11-01"), (2, 10, "view", "2026-11-01")])
    features = build_user_source_features([path], dt.date(2026, 11, 1), WEIGHTS, 5, min_user_interactions=2)
    assert set(features["user_id"]) == {1}


def test_zero_weight_events_leave_no_pair(tmp_path):
    path = events(tmp_path, "d", [(1, 10, "view", "2026-11-01"), (1, 11, "like", "2026-11-01")])
    features = build_user_source_features([path], dt.date(2026, 11, 1), {"view": 0.0, "like": 1.0}, 5)
    assert features["source_id"].tolist() == [11]


def test_empty_window_is_an_error():
    with pytest.raises(ValueError, match="no interaction files"):
        build_user_source_features([], dt.date(2026, 11, 1), WEIGHTS, 5)


def test_read_pairs_deduplicates_across_files(tmp_path):
    a = events(tmp_path, "a", [(1, 10, "view", "2026-11-01"), (1, 10, "view", "2026-11-01 01:00")])
    b = events(tmp_path, "b", [(1, 10, "view", "2026-11-02"), (2, 10, "view", "2026-11-02")])
    assert read_pairs([a, b]).values.tolist() == [[1, 10], [2, 10]]


def test_the_holdout_is_the_last_calendar_days_even_with_a_missing_day():
    from ok_ml_assets.pipeline_types.recommendation_als.recipe import holdout_tags

    assert holdout_tags(["2026-11-01", "2026-11-02", "2026-11-04"], 2) == ["2026-11-04"]
    assert holdout_tags(["2026-11-01", "2026-11-03", "2026-11-04"], 2) == ["2026-11-03", "2026-11-04"]
    assert holdout_tags([], 2) == []
