"""Contracts see time: timestamps inside the version's day, in the declared zone, no future tags, no day's bytes twice."""

from __future__ import annotations

import datetime as dt
import re
import time

import numpy as np
import pandas as pd
import pytest

from ok_ml_assets.registry import RegistryError
from ok_ml_assets.registry.store import Registration
from ok_ml_assets.registry.validation import _database
from tests.registry.conftest import FIRST_TAG, interactions_frame, state, write_parquet

NEXT_DAY = "2026-11-02"


def refused(registry, name, tag, path, message, **options) -> None:
    """Registering must fail with `message` and change nothing."""
    before = state(registry)
    with pytest.raises(RegistryError, match=message):
        registry.add_many([Registration(name, tag, path)], **options)
    assert state(registry) == before


def accounts_frame(first_id: int = 1) -> pd.DataFrame:
    """A valid daily snapshot of bot_accounts, a dataset without timestamps."""
    ids = np.arange(first_id, first_id + 4, dtype="int64")
    return pd.DataFrame({
        "account_id": ids, "posts_per_day": 1.0, "friend_requests_per_day": 0.5, "session_minutes_mean": 12.0,
        "sessions_per_day": np.int64(3), "link_share": 0.1, "account_age_days": np.int64(30), "country": "fr", "label": "human",
    })


def test_events_dated_decades_away_are_refused(seeded, tmp_path):
    frame = interactions_frame(day=NEXT_DAY)
    frame.loc[0, "ts"] = pd.Timestamp("1996-11-02 10:00", tz="UTC")
    path = write_parquet(frame, tmp_path / "day.parquet")
    refused(seeded, "interactions", NEXT_DAY, path,
            r"column 'ts' breaks rule falls on the version's day 2026-11-02: 1 rows, e\.g\. \['1996-11-02 10:00:00\+00:00'\]")


def test_events_five_days_off_their_tag_are_refused(seeded, tmp_path):
    path = write_parquet(interactions_frame(day="2026-11-07"), tmp_path / "day.parquet")
    refused(seeded, "interactions", NEXT_DAY, path, r"column 'ts' breaks rule falls on the version's day 2026-11-02: 6 rows")


def test_a_file_registered_under_the_wrong_day_is_refused(seeded, tmp_path):
    yesterday = seeded.path("interactions", FIRST_TAG)
    refused(seeded, "interactions", NEXT_DAY, yesterday, r"falls on the version's day 2026-11-02: 6 rows")


def test_timezone_naive_timestamps_are_refused_where_the_contract_says_utc(seeded, tmp_path):
    frame = interactions_frame(day=NEXT_DAY)
    path = write_parquet(frame.assign(ts=frame["ts"].dt.tz_localize(None)), tmp_path / "naive.parquet")
    refused(seeded, "interactions", NEXT_DAY, path, r"column 'ts' breaks rule timestamps carry the time zone UTC: .*no time zone \(naive\)")


def test_timestamps_in_another_zone_are_refused(seeded, tmp_path):
    frame = interactions_frame(day=NEXT_DAY)
    path = write_parquet(frame.assign(ts=frame["ts"].dt.tz_convert("America/New_York")), tmp_path / "ny.parquet")
    refused(seeded, "interactions", NEXT_DAY, path, r"timestamps carry the time zone UTC: 0 rows, e\.g\. \['America/New_York'\]")


def test_a_zoned_file_is_refused_where_the_contract_says_naive(seeded, tmp_path):
    day = pd.DataFrame({"series_id": [1, 2], "service": "svc", "metric": "latency_ms", "value": 1.0, "anomaly": 0,
                        "ts": pd.to_datetime(["2026-11-02 00:00", "2026-11-02 05:00"], utc=True)})
    path = write_parquet(day, tmp_path / "series.parquet")
    refused(seeded, "ok_monitoring_time_series", NEXT_DAY, path, r"timestamps carry no time zone \(naive\): 0 rows, e\.g\. \['UTC'\]")


@pytest.fixture
def machine_far_east(monkeypatch):
    """The process in UTC+14, with a DuckDB opened there (DuckDB takes the machine's zone when it opens)."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    _database.cache_clear()
    yield
    monkeypatch.undo()
    time.tzset()
    _database.cache_clear()


def test_the_day_of_an_event_is_counted_in_utc_whatever_the_machines_zone(seeded, tmp_path, machine_far_east):
    frame = interactions_frame(day=NEXT_DAY)
    frame["ts"] = pd.Timestamp(f"{NEXT_DAY} 23:30", tz="UTC") + pd.to_timedelta(range(len(frame)), unit="s")
    assert seeded.add("interactions", NEXT_DAY, write_parquet(frame, tmp_path / "late.parquet")).rows == len(frame)


def test_a_tag_after_today_is_refused(seeded, tmp_path):
    future = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=400)).isoformat()
    path = write_parquet(interactions_frame(day=future), tmp_path / "future.parquet")
    refused(seeded, "interactions", future, path, rf"interactions@{future}: the tag names a day after today")


def test_a_tag_after_a_given_calendar_day_is_refused_and_that_day_itself_accepted(seeded, tmp_path):
    path = write_parquet(interactions_frame(day=NEXT_DAY), tmp_path / "day.parquet")
    refused(seeded, "interactions", NEXT_DAY, path, r"after today \(2026-11-01\)", today=dt.date(2026, 11, 1))
    assert seeded.add_many([Registration("interactions", NEXT_DAY, path)], today=dt.date(2026, 11, 2))[0].tag == NEXT_DAY


def test_the_same_bytes_under_a_second_daily_tag_are_refused_unless_forced(seeded, tmp_path):
    path = write_parquet(accounts_frame(), tmp_path / "accounts.parquet")
    seeded.add("bot_accounts", FIRST_TAG, path)
    refused(seeded, "bot_accounts", NEXT_DAY, path,
            re.escape("the same bytes are already registered as bot_accounts@2026-11-01") + r".*--force")
    assert seeded.add("bot_accounts", NEXT_DAY, path, force=True).md5 == seeded.version("bot_accounts", FIRST_TAG).md5


def test_the_same_bytes_twice_in_one_batch_are_refused(seeded, tmp_path):
    path = write_parquet(accounts_frame(), tmp_path / "accounts.parquet")
    before = state(seeded)
    with pytest.raises(RegistryError, match=r"bot_accounts@2026-11-02 .* also in this batch as bot_accounts@2026-11-01"):
        seeded.add_many([Registration("bot_accounts", FIRST_TAG, path), Registration("bot_accounts", NEXT_DAY, path)])
    assert state(seeded) == before


def test_registering_the_same_version_again_stays_a_no_op(seeded, tmp_path):
    again = seeded.path("interactions", FIRST_TAG)
    assert seeded.add("interactions", FIRST_TAG, again) == seeded.version("interactions", FIRST_TAG)
