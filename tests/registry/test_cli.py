"""`ok-ml registry add/list/show/get` against a real registry: results for people, errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from ok_ml_assets.cli import main
from ok_ml_assets.registry.store import file_md5
from tests.registry.conftest import FIRST_TAG, interactions_frame, write_parquet


def ok_ml(*args: str):
    """Run `ok-ml ARGS` in-process."""
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def registered(env, tmp_path):
    """A day registered through the CLI."""
    path = write_parquet(interactions_frame(), tmp_path / "day.parquet")
    result = ok_ml("registry", "add", "interactions", str(path), "--tag", FIRST_TAG, "--source", "export-42")
    assert result.exit_code == 0, result.output
    return path, result


def test_add_reports_the_registered_version(registered):
    path, result = registered
    assert result.stdout.strip().endswith(f"registered interactions@{FIRST_TAG}: 6 rows, md5 {file_md5(path)}")


def test_add_refuses_a_contract_breach_with_exit_code_1_and_the_rule(env, tmp_path):
    path = write_parquet(interactions_frame().assign(user_id=0), tmp_path / "bad.parquet")
    result = ok_ml("registry", "add", "interactions", str(path), "--tag", FIRST_TAG)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.startswith(f"error: interactions@{FIRST_TAG} ({path}) breaks the contract of 'interactions':")
    assert "column 'user_id' breaks rule >= 1.0: 6 rows" in result.stderr
    assert "Traceback" not in result.output


def test_add_in_its_own_process_fails_without_a_traceback(env, tmp_path):
    path = write_parquet(interactions_frame().replace({"event": {"view": "share"}}), tmp_path / "bad.parquet")
    done = subprocess.run(
        [sys.executable, "-m", "ok_ml_assets.cli", "registry", "add", "interactions", str(path), "--tag", FIRST_TAG],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=120,
    )
    assert done.returncode == 1
    assert "column 'event' breaks rule value in ['view', 'click', 'like', 'comment']: 2 rows" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_list_shows_each_dataset_with_its_versions(registered):
    lines = {line.split()[0]: line.split()[1:5] for line in ok_ml("registry", "list").stdout.splitlines()}
    assert lines["interactions"] == ["1", "versions", "latest", FIRST_TAG]
    assert lines["subscriptions"] == ["0", "versions", "latest", "-"]


def test_show_prints_the_contract_and_the_versions(registered):
    path, _ = registered
    result = ok_ml("registry", "show", "interactions")
    assert result.exit_code == 0
    assert "primary key: ['user_id', 'source_id', 'event', 'ts']" in result.stdout
    assert "  event: {'type': 'string', 'nullable': False, 'allowed': ['view', 'click', 'like', 'comment']}" in result.stdout
    [version] = [line for line in result.stdout.splitlines() if line.strip().startswith(FIRST_TAG)]
    assert version.split()[1:4] == ["6", "rows", "md5"] and file_md5(path) in version and version.endswith("export-42")


def test_show_of_an_unknown_dataset_fails_clearly(env):
    result = ok_ml("registry", "show", "clicks")
    assert result.exit_code == 1 and "error: unknown dataset 'clicks'" in result.stderr


def test_get_writes_exactly_the_registered_bytes(registered, tmp_path):
    path, _ = registered
    result = ok_ml("registry", "get", f"interactions@{FIRST_TAG}", str(tmp_path / "out.parquet"))
    assert result.exit_code == 0 and result.stdout.strip() == f"wrote {tmp_path / 'out.parquet'}"
    assert (tmp_path / "out.parquet").read_bytes() == path.read_bytes()


@pytest.mark.parametrize(("ref", "message"), [
    ("interactions@2026-12-24", "error: dataset 'interactions' has no registered version '2026-12-24' (latest tags: 2026-11-01)"),
    ("clicks@2026-11-01", "error: unknown dataset 'clicks'"),
    ("interactions", "error: 'interactions' is not NAME@TAG"),
])
def test_get_of_a_missing_version_fails_clearly(registered, tmp_path, ref, message):
    result = ok_ml("registry", "get", ref, str(tmp_path / "out.parquet"))
    assert result.exit_code == 1 and result.stderr.startswith(message)
    assert not (tmp_path / "out.parquet").exists()


def test_get_into_a_missing_folder_fails_clearly(registered, tmp_path):
    result = ok_ml("registry", "get", f"interactions@{FIRST_TAG}", str(tmp_path / "nowhere" / "out.parquet"))
    assert result.exit_code == 1 and "does not exist" in result.stderr
