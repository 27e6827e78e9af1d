"""Definitions load with no service running, and string asset selections work (antlr4 override)."""

from __future__ import annotations

import json
import subprocess
import sys

import dagster as dg

from ok_ml_assets.configs import load_experiment_config, load_experiment_configs
from ok_ml_assets.definitions import build_definitions
from ok_ml_assets.settings import PROJECT_ROOT, load_settings

EXPECTED = {
    "recommendation_als": {
        "interactions", "subscriptions", "user_source_features", "subscribed_pairs", "holdout_split", "user_embeddings",
        "source_embeddings", "trained_model", "model_promotion", "recommendations", "published_recommendations",
        "online_metrics",
    },
    "tabular_classification": {
        "examples", "labelled_examples", "dataset_split", "trained_model", "model_promotion", "predictions",
        "published_predictions",
    },
    "time_series_classification": {
        "series", "metric_series", "series_windows", "dataset_split", "trained_model", "model_promotion", "predictions",
        "published_alerts",
    },
}


def committed_configs():
    """The experiments in asset_configs/."""
    return load_experiment_configs(PROJECT_ROOT / "asset_configs")


def test_every_asset_is_keyed_and_grouped_by_experiment():
    graph = build_definitions(load_settings()).resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    types = {c.experiment_name: c.pipeline_type for c in committed_configs()}
    experiments = set(types)
    assert {"prod_discovery", "music_discovery", "antispam_bots", "clickbait_posts", "ok_monitoring_anomaly_detection"} <= experiments
    for experiment, kind in types.items():
        assert {k.path[-1] for k in keys if k.path[0] == experiment} == EXPECTED[kind]
    for key in keys:
        node = graph.get(key)
        assert key.path[0] in experiments and node.group_name == key.path[0]
        assert node.description, f"{key.to_user_string()} needs a docstring"


def test_publication_sits_downstream_of_every_blocking_check():
    defs = build_definitions(load_settings())
    graph = defs.resolve_asset_graph()
    upstream = graph.get(dg.AssetKey(["prod_discovery", "published_recommendations"])).parent_keys
    assert dg.AssetKey(["prod_discovery", "recommendations"]) in upstream
    config = load_experiment_config(PROJECT_ROOT / "asset_configs" / "prod_discovery.yml")
    severity = {rule.check_name: rule.severity for rules in config.monitoring.values() for rule in rules}
    specs = {spec.name: spec for check in defs.asset_checks for spec in check.check_specs
             if spec.asset_key.path[0] == "prod_discovery"}
    assert set(specs) == set(severity) | {"all_scores_finite"}
    assert all(spec.blocking == (severity.get(name, "ERROR") == "ERROR") for name, spec in specs.items())


def test_string_asset_selection_resolves():
    graph = build_definitions(load_settings()).resolve_asset_graph()
    selection = dg.AssetSelection.from_string('group:"prod_discovery" and kind:kafka')
    assert selection.resolve(graph) == {dg.AssetKey(["prod_discovery", "published_recommendations"])}
    upstream = dg.AssetSelection.from_string('+key:"prod_discovery/recommendations"').resolve(graph)
    assert dg.AssetKey(["prod_discovery", "user_embeddings"]) in upstream


def test_dagster_cli_lists_a_string_selection():
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "list", "-m", "ok_ml_assets.definitions", "--select", "group:prod_discovery"],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert "prod_discovery/published_recommendations" in result.stdout


def test_loading_definitions_touches_no_state(tmp_path):
    home = tmp_path / "home"
    code = (
        "from ok_ml_assets.definitions import build_definitions; "
        "print(len(build_definitions().resolve_asset_graph().get_all_asset_keys()))"
    )
    env = {"PATH": "/usr/bin:/bin", "OK_ML_HOME": str(home), "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(sum(len(EXPECTED[c.pipeline_type]) for c in committed_configs()))
    assert not home.exists()


def test_the_instance_template_allows_one_run_per_experiment_at_a_time(tmp_path, monkeypatch):
    from ok_ml_assets.lifecycle.assets import EXPERIMENT_TAG
    from ok_ml_assets.orchestration import dagster_instance

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    instance = dagster_instance(tmp_path)
    limits = instance.run_coordinator.get_run_queue_config().tag_concurrency_limits
    assert [(limit["key"], limit["limit"]) for limit in limits] == [(EXPERIMENT_TAG, 1)]
    job = build_definitions(load_settings()).resolve_job_def("prod_discovery_refresh")
    assert job.tags[EXPERIMENT_TAG] == "prod_discovery"


def test_publication_automation_runs_by_default():
    defs = build_definitions(load_settings())
    sensor = defs.resolve_sensor_def("prod_discovery_automation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey(["prod_discovery", "published_recommendations"])).automation_condition is not None


def test_every_job_runs_in_process():
    defs = build_definitions(load_settings())
    for job in defs.resolve_all_job_defs():
        assert job.executor_def.name == dg.in_process_executor.name, job.name


def test_the_code_location_builds_once_until_its_configs_change(tmp_path, monkeypatch):
    from ok_ml_assets.definitions import defs

    text = (PROJECT_ROOT / "asset_configs" / "prod_discovery.yml").read_text()
    (tmp_path / "prod_discovery.yml").write_text(text)
    monkeypatch.setenv("OK_ML_CONFIGS_DIR", str(tmp_path))
    first = defs()
    assert defs() is first  # Dagster's loaders call the function twice in one process
    copy = text.replace("experiment_name: prod_discovery", "experiment_name: prod_copy").replace(
        "prod_discovery.recommendations", "prod_copy.recommendations")
    (tmp_path / "prod_copy.yml").write_text(copy)
    groups = {key.path[0] for key in defs().resolve_asset_graph().get_all_asset_keys()}
    assert groups == {"prod_discovery", "prod_copy"}


def test_the_code_location_leaves_what_only_asset_bodies_need_unimported():
    probe = ("import json, sys; from ok_ml_assets.definitions import build_definitions; build_definitions().resolve_asset_graph(); "
             "print(json.dumps(sorted(m for m in sys.modules if '.' not in m)))")
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout))
    unneeded = {"sklearn", "mlflow", "great_expectations", "pyspark", "optuna", "implicit"}
    assert not loaded & unneeded, sorted(loaded & unneeded)
