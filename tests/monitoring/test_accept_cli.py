"""`ok-ml monitoring accept`: user mistakes get one clear line, not a traceback."""

from __future__ import annotations

from click.testing import CliRunner

from ok_ml_assets.cli import main


def accept(*args: str):
    return CliRunner().invoke(main, ["monitoring", "accept", *args])


def test_an_asset_without_rules_is_named(home):
    result = accept("prod_discovery", "trained_model", "--reason", "x")
    assert result.exit_code == 1
    assert "no monitoring rules for 'trained_model'" in result.output and "Traceback" not in result.output


def test_an_asset_not_yet_materialized_is_named(home):
    result = accept("prod_discovery", "user_source_features", "--reason", "x")
    assert result.exit_code == 1 and "has not been materialized yet" in result.output


def test_an_unknown_experiment_is_named(home):
    result = accept("nope", "user_source_features", "--reason", "x")
    assert result.exit_code == 1 and "experiment 'nope'" in result.output
