"""A wrongly registered version can be taken back: kept in the ledger and git history, skipped by windows and sensors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ok_ml_assets.cli import main
from ok_ml_assets.registry import RegistryError
from tests.registry.conftest import FIRST_TAG, git, interactions_frame, state, write_parquet

SECOND = "2026-11-02"
REASON = "export ran twice; half the users are missing"


@pytest.fixture
def two_days(seeded, tmp_path):
    """The seeded registry with a second day, then that day deprecated."""
    seeded.add("interactions", SECOND, write_parquet(interactions_frame(day=SECOND, first_user=20), tmp_path / "d2.parquet"))
    seq = max(v.seq for v in seeded.versions())
    seeded.deprecate("interactions", SECOND, REASON)
    return seeded, seq


def test_a_deprecated_version_leaves_windows_and_the_sensor_cursor_and_says_why(two_days):
    registry, seq = two_days
    assert [v.tag for v in registry.window("interactions", 10)] == [FIRST_TAG]
    assert registry.versions_after(seq - 1) == []
    with pytest.raises(RegistryError, match=rf"interactions@{SECOND} was deprecated on .*: {REASON}; no replacement"):
        registry.path("interactions", SECOND)


def test_nothing_is_deleted_the_ledger_and_git_history_keep_it(two_days):
    registry, _ = two_days
    (taken_back,) = registry.deprecations("interactions")
    assert (taken_back.version.tag, taken_back.reason) == (SECOND, REASON)
    assert json.loads((registry.root / "deprecated.json").read_text())["interactions"][0]["version"]["md5"] == taken_back.version.md5
    assert git(registry, "log", "-1", "--format=%s") == f"deprecate interactions@{SECOND}: {REASON}\n"
    assert git(registry, "status", "--porcelain") == ""
    dvc_file = f"datasets/interactions/{SECOND}.parquet.dvc"
    assert taken_back.version.md5 in git(registry, "show", f"{taken_back.registered_in}:{dvc_file}")
    assert dvc_file not in git(registry, "ls-files")


def test_a_replacement_takes_the_tag_and_the_sensor_sees_it(two_days, tmp_path):
    registry, seq = two_days
    fixed = registry.add("interactions", SECOND, write_parquet(interactions_frame(day=SECOND, first_user=40), tmp_path / "fixed.parquet"))
    assert fixed.seq > seq and [v.tag for v in registry.versions_after(seq)] == [SECOND]
    assert registry.path("interactions", SECOND).exists()
    assert [v.tag for v in registry.window("interactions", 10)] == [FIRST_TAG, SECOND]


def test_the_deprecated_bytes_are_not_registered_again_unless_forced(two_days):
    registry, _ = two_days
    taken_back = registry.deprecations("interactions")[0]
    old = registry.root.parent / "old.parquet"
    write_parquet(interactions_frame(day=SECOND, first_user=20), old)
    before = state(registry)
    with pytest.raises(RegistryError, match=rf"the same bytes were deprecated as interactions@{SECOND} \({REASON}\)"):
        registry.add("interactions", SECOND, old)
    assert state(registry) == before
    assert registry.add("interactions", SECOND, old, force=True).md5 == taken_back.version.md5


@pytest.mark.parametrize(("tag", "reason", "message"), [
    ("2026-10-01", REASON, r"dataset 'interactions' has no registered version '2026-10-01'"),
    (FIRST_TAG, "  ", r"say why it is deprecated \(--reason\)"),
])
def test_deprecating_what_cannot_be_deprecated_changes_nothing(seeded, tag, reason, message):
    before = state(seeded)
    with pytest.raises(RegistryError, match=message):
        seeded.deprecate("interactions", tag, reason)
    assert state(seeded) == before


def test_the_cli_deprecates_and_list_and_show_say_so(seeded, monkeypatch):
    monkeypatch.setenv("OK_ML_REGISTRY_REPO", str(seeded.root))
    monkeypatch.setenv("OK_ML_DVC_REMOTE", seeded.remote)
    monkeypatch.setenv("OK_ML_HOME", str(seeded.root.parent / "home"))
    runner = CliRunner()
    done = runner.invoke(main, ["registry", "deprecate", "interactions", FIRST_TAG, "--reason", REASON])
    assert done.exit_code == 0, done.output
    assert f"deprecated interactions@{FIRST_TAG} (6 rows" in done.stdout
    assert f"ok-ml registry add interactions PATH --tag {FIRST_TAG}" in done.stdout
    listed = runner.invoke(main, ["registry", "list"]).stdout
    assert any(line.startswith("interactions") and "0 versions" in line and "(1 deprecated)" in line for line in listed.splitlines())
    shown = runner.invoke(main, ["registry", "show", "interactions"]).stdout
    assert f"{FIRST_TAG}" in shown and "DEPRECATED" in shown and REASON in shown
    again = runner.invoke(main, ["registry", "deprecate", "interactions", FIRST_TAG, "--reason", REASON])
    assert again.exit_code == 1 and f"interactions@{FIRST_TAG} was deprecated on" in again.stderr
    missing_reason = runner.invoke(main, ["registry", "deprecate", "interactions", FIRST_TAG])
    assert missing_reason.exit_code == 2 and "--reason" in missing_reason.output
