"""Bringing your own data: many files or one raw event log registered in one call, one commit, all or nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.registry.conftest import client, git, interactions_frame, write_parquet
from tests.registry.test_cli import ok_ml

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]


def follows(day: str, rows: int = 3, first_user: int = 1) -> pd.DataFrame:
    """A valid day of new subscriptions."""
    return pd.DataFrame({
        "user_id": pd.array(range(first_user, first_user + rows), dtype="int64"),
        "source_id": pd.array([7] * rows, dtype="int64"),
        "ts": pd.to_datetime([f"{day} 08:00"] * rows, utc=True),
    })


@pytest.fixture
def export_folder(tmp_path):
    """A folder with one interactions export per day, named by day."""
    folder = tmp_path / "export"
    folder.mkdir()
    for i, day in enumerate(DAYS):
        write_parquet(interactions_frame(day=day, first_user=1 + 10 * i), folder / f"interactions-{day}.parquet")
    return folder


def registered(tmp_path) -> list[str]:
    return [v.ref for v in client(tmp_path).versions()]


def test_a_folder_registers_every_day_in_one_commit(env, tmp_path, export_folder):
    result = ok_ml("registry", "add", "interactions", str(export_folder))
    assert result.exit_code == 0, result.output
    assert registered(tmp_path) == [f"interactions@{day}" for day in DAYS]
    assert "3 new versions of interactions (2026-11-01 .. 2026-11-03) in one commit" in result.stdout
    assert git(client(tmp_path), "log", "--format=%s").splitlines()[0] == "register " + ", ".join(f"interactions@{d}" for d in DAYS)


def test_a_glob_registers_what_it_matches_and_a_repeat_changes_nothing(env, tmp_path, export_folder):
    assert ok_ml("registry", "add", "interactions", str(export_folder / "*-0[12].parquet")).exit_code == 0
    assert registered(tmp_path) == ["interactions@2026-11-01", "interactions@2026-11-02"]
    again = ok_ml("registry", "add", "interactions", str(export_folder))
    assert again.exit_code == 0, again.output
    assert "interactions@2026-11-01: 6 rows" in again.stdout and "(already registered, unchanged)" in again.stdout
    assert "1 new versions" in again.stdout


def test_tags_come_from_a_column_when_file_names_carry_no_day(env, tmp_path):
    paths = [write_parquet(interactions_frame(day=day, first_user=1 + 10 * i), tmp_path / f"part-{i}.parquet")
             for i, day in enumerate(DAYS)]
    no_day = ok_ml("registry", "add", "interactions", *map(str, paths))
    assert no_day.exit_code == 1 and "no day (YYYY-MM-DD) in the file name" in no_day.stderr
    by_column = ok_ml("registry", "add", "interactions", *map(str, paths), "--tag-column", "ts")
    assert by_column.exit_code == 0, by_column.output
    assert registered(tmp_path) == [f"interactions@{day}" for day in DAYS]


def test_one_bad_file_among_many_registers_nothing(env, tmp_path, export_folder):
    write_parquet(interactions_frame(day="2026-11-04").assign(user_id=0), export_folder / "interactions-2026-11-04.parquet")
    result = ok_ml("registry", "add", "interactions", str(export_folder))
    assert result.exit_code == 1 and "interactions@2026-11-04" in result.stderr and "breaks rule >= 1.0" in result.stderr
    assert registered(tmp_path) == []


def test_two_files_of_one_day_are_refused_naming_both(env, tmp_path, export_folder):
    other = write_parquet(interactions_frame(day="2026-11-01", first_user=50), tmp_path / "late-2026-11-01.parquet")
    result = ok_ml("registry", "add", "interactions", str(export_folder), str(other))
    assert result.exit_code == 1
    assert "interactions@2026-11-01: both" in result.stderr and str(other) in result.stderr
    assert registered(tmp_path) == []


def test_an_event_log_is_split_into_daily_versions_counted_in_utc(env, tmp_path):
    log = pd.concat([follows("2026-11-01"), follows("2026-11-03", first_user=10), follows("2026-11-05", rows=1, first_user=20)])
    text = log.assign(ts=["2026-11-01T08:00:00Z", "2026-11-01T23:30:00-05:00", "2026-11-01T11:00:00+00:00",
                          "2026-11-03T09:00:00Z", "2026-11-03T02:00:00+03:00", "2026-11-03T12:00:00", "2026-11-05T10:00:00Z"])
    path = tmp_path / "follows.csv"
    text.to_csv(path, index=False)
    result = ok_ml("registry", "import-events", "subscriptions", str(path), "--timestamp-column", "ts")
    assert result.exit_code == 0, result.output
    assert "split 7 events of" in result.stdout and "into 5 days (1 empty)" in result.stdout
    assert "5 new versions of subscriptions (2026-11-01 .. 2026-11-05) in one commit" in result.stdout
    # 23:30 at UTC-5 is 04:30 on the 2nd in UTC; 02:00 at UTC+3 is 23:00 on the 2nd; no offset is read as UTC.
    rows = {v.tag: v.rows for v in client(tmp_path).versions("subscriptions")}
    assert rows == {"2026-11-01": 2, "2026-11-02": 2, "2026-11-03": 2, "2026-11-04": 0, "2026-11-05": 1}


def test_an_empty_day_is_a_version_only_where_the_catalog_allows_it(env, tmp_path):
    empty_follows = write_parquet(follows("2026-11-01").head(0), tmp_path / "follows-2026-11-01.parquet")
    assert ok_ml("registry", "add", "subscriptions", str(empty_follows)).exit_code == 0
    assert client(tmp_path).version("subscriptions", "2026-11-01").rows == 0
    empty_events = write_parquet(interactions_frame().head(0), tmp_path / "interactions-2026-11-01.parquet")
    refused = ok_ml("registry", "add", "interactions", str(empty_events))
    assert refused.exit_code == 1 and "file has at least one row (the catalog does not declare allow_empty)" in refused.stderr


def test_an_event_log_without_the_named_column_is_refused(env, tmp_path):
    path = write_parquet(follows("2026-11-01"), tmp_path / "follows.parquet")
    result = ok_ml("registry", "import-events", "subscriptions", str(path), "--timestamp-column", "time")
    assert result.exit_code == 1 and "the event log has no column 'time'" in result.stderr
    assert registered(tmp_path) == []
