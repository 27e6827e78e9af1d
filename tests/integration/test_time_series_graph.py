"""ok_monitoring_anomaly_detection on the real graph: tiny metrics to alerts in Kafka, faults caught, retraining on a commit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import dagster as dg
import pytest
import yaml

from ok_ml_assets.configs import load_experiment_configs
from ok_ml_assets.definitions import build_definitions, build_resources
from ok_ml_assets.orchestration import materialize_datasets, materialize_refresh, register_versions, sync_partitions
from ok_ml_assets.pipeline_types.time_series_classification.synthetic import change_unit, stop_reporting, synthetic_days
from ok_ml_assets.registry import registry_client
from ok_ml_assets.settings import PROJECT_ROOT
from tests.conftest import write_config
from tests.kafka_utils import read_topic
from tests.pipeline_types.test_time_series_classification import SERIES, tiny_config

pytestmark = pytest.mark.integration
NAME = "ok_monitoring_anomaly_detection"
KEY = lambda name: dg.AssetKey([NAME, name])  # noqa: E731


def relaxed() -> dict:
    """The tiny config for trees under development and a handful of events."""
    config = tiny_config()
    config["promotion"] = {**config["promotion"], "require_clean_tree": False, "min_metrics": {},
                           "min_lift_over_baseline": 0.0}
    return config


def register_series(settings, fault=None) -> None:
    """Register the tiny metrics world, the newest day optionally faulted."""
    days = list(synthetic_days("tiny", 21, SERIES))[:14]
    versions = [("ok_monitoring_time_series", tag, fault(frame) if fault and i == len(days) - 1 else frame)
                for i, (tag, frame) in enumerate(days)]
    register_versions(registry_client(settings), versions, "test")


def refresh(settings, instance) -> dg.ExecuteInProcessResult:
    """Materialize the dataset's partitions, then the refresh job."""
    defs = build_definitions(settings)
    config = next(c for c in load_experiment_configs(settings.configs_dir) if c.experiment_name == NAME)
    materialize_datasets(defs, instance, config, sync_partitions(instance, registry_client(settings)))
    return materialize_refresh(defs, instance, NAME)


@pytest.fixture
def series_home(home, settings):
    """The test home with the tiny metrics registered and a relaxed anomaly detection config."""
    register_series(settings)
    return write_config(home, relaxed())


def test_alerts_reach_the_topic_keyed_by_series(series_home, settings, instance):
    result = refresh(settings, instance)
    assert result.success, [e.step_failure_data.error.message for e in result.get_step_failure_events()]
    published = read_topic(settings.kafka_bootstrap_servers, series_home["publication"]["topic"])
    assert sorted(int(k) for k in published) == list(range(1, SERIES + 1))
    latest = published["1"][-1]
    assert latest["schema"] == "ok_ml.anomaly" and latest["window_end"] == "2026-11-14T23:00:00"
    facts = build_resources(settings)["mlflow"].facts(NAME, "1")
    assert {"event_recall", "baseline_event_recall", "detection_delay_points", "threshold"} <= set(facts.metrics)


def test_a_unit_change_and_a_silent_metric_are_caught_before_kafka(home, series_home, settings, instance):
    assert refresh(settings, instance).success
    topic = series_home["publication"]["topic"]
    before = read_topic(settings.kafka_bootstrap_servers, topic)
    settings.registry_repo.rename(home / "registry-clean")
    register_series(settings, fault=lambda frame: stop_reporting(change_unit(frame)))
    result = refresh(settings, instance)
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    # The silent metric is now caught on the raw day, before windows are cut: nothing downstream is computed.
    silent = {"series_daily_rows_within", "series_daily_distinct_series_id_within", "series_series_id_overlap_at_least"}
    assert not result.success and silent <= failed
    assert read_topic(settings.kafka_bootstrap_servers, topic) == before
    assert build_resources(settings)["mlflow"].alias_version(NAME, "champion") == "1"


def git(clone, *args) -> str:
    """Run git in the clone."""
    return subprocess.run(["git", *args], cwd=clone, check=True, capture_output=True, text=True).stdout.strip()


def test_a_commit_that_moves_the_tags_retrains_on_them(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(PROJECT_ROOT), str(clone)], check=True)
    git(clone, "config", "user.email", "robot@example.com")
    git(clone, "config", "user.name", "robot")
    path = clone / "asset_configs" / f"{NAME}.yml"
    for other in (clone / "asset_configs").glob("*.yml"):
        if other != path:
            other.unlink()
    config = relaxed()
    config["datasets"]["series"] = {**config["datasets"]["series"], "window_days": 10, "tag": "2026-11-11"}
    config["publication"] = {**config["publication"], "topic": f"test.{tmp_path.name}"}
    path.write_text(yaml.safe_dump(config))
    git(clone, "commit", "-qam", "anomaly detection on the tiny world, up to 2026-11-11")
    env = {**os.environ, "PYTHONPATH": str(clone), "OK_ML_HOME": str(tmp_path / "home")}
    env.pop("DAGSTER_HOME", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("OK_ML_CONFIGS_DIR", None)
    run = [sys.executable, "-m", "ok_ml_assets.cli", "run", "--preset", "tiny", "--experiment", NAME]
    first_run = subprocess.run(run, cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert first_run.returncode == 0, first_run.stdout[-2000:] + first_run.stderr[-2000:]
    assert "▸ refresh job" in first_run.stdout and "✓ trained_model" in first_run.stdout
    assert "Initialized DVC" not in first_run.stdout + first_run.stderr
    assert "Initialized DVC" in (tmp_path / "home" / "logs" / "ok-ml.log").read_text()

    config["datasets"]["series"]["tag"] = "2026-11-14"
    path.write_text(yaml.safe_dump(config))
    git(clone, "commit", "-qam", "next data: up to 2026-11-14")
    commit = git(clone, "rev-parse", "HEAD")
    subprocess.run(run, cwd=clone, env=env, capture_output=True, text=True, timeout=600)

    mlflow = build_resources_at(tmp_path / "home")
    first, second = mlflow.facts(NAME, "1"), mlflow.facts(NAME, "2")
    tags = lambda facts: sorted(d["tag"] for d in facts.datasets)  # noqa: E731
    assert tags(first)[-1] == "2026-11-11" and tags(second)[-1] == "2026-11-14" and len(tags(second)) == 10
    assert second.tags["git_commit"] == commit and second.tags["git_dirty"] == "false"
    assert second.tags["config_hash"] != first.tags["config_hash"]
    shutil.rmtree(clone)


def build_resources_at(home):
    """The MLflow resource of another product home."""
    from ok_ml_assets.resources.mlflow import MlflowResource

    return MlflowResource(tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")


def test_reproduce_and_rollback_work_for_a_detector(series_home, settings, instance):
    from ok_ml_assets.lifecycle import reproduce, rollback

    assert refresh(settings, instance).success
    assert refresh(settings, instance).success
    resources = build_resources(settings)
    result = reproduce(resources["mlflow"], registry_client(settings), NAME, "2")
    assert result.reproduced, result.verdict()
    target, report = rollback(resources["mlflow"], resources["kafka"], NAME, "1")
    assert target == "1" and report.messages == SERIES
    published = read_topic(settings.kafka_bootstrap_servers, series_home["publication"]["topic"])
    assert {values[-1]["model"]["version"] for values in published.values()} == {"1"}
