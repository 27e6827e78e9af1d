"""antispam_bots on the real graph: tiny labelled data to scores in Kafka, faults caught, a worse model refused."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml

from ok_ml_assets.definitions import build_definitions, build_resources
from ok_ml_assets.orchestration import (
    check_outcomes,
    materialize_datasets,
    materialize_refresh,
    register_versions,
    sync_partitions,
)
from ok_ml_assets.pipeline_types.tabular_classification.synthetic import change_unit, flip_labels, synthetic_days
from ok_ml_assets.registry import registry_client
from ok_ml_assets.settings import PROJECT_ROOT
from tests.conftest import write_config
from tests.kafka_utils import read_topic

pytestmark = pytest.mark.integration
NAME = "antispam_bots"
KEY = lambda name: dg.AssetKey([NAME, name])  # noqa: E731


def antispam_config(**changes) -> dict:
    """The committed antispam_bots config, relaxed for trees under development and for tiny data."""
    config = yaml.safe_load((PROJECT_ROOT / "asset_configs" / f"{NAME}.yml").read_text())
    config["promotion"] = {**config["promotion"], "require_clean_tree": False, "min_lift_over_baseline": 1.0}
    for section, values in changes.items():
        config[section] = {**config[section], **values} if isinstance(values, dict) else values
    return config


def register_bots(settings, seed: int = 3, fault=None) -> None:
    """Register the tiny bot world (optionally faulted) as bot_accounts."""
    days = ((name_tag[0], name_tag[1], fault(frame) if fault else frame) for name_tag, frame in
            ((("bot_accounts", tag), frame) for tag, frame in synthetic_days("bot_accounts", "tiny", seed)))
    register_versions(registry_client(settings), days, f"test:{seed}")


def refresh(settings, instance) -> dg.ExecuteInProcessResult:
    """Materialize the dataset partitions, then the refresh job."""
    defs = build_definitions(settings)
    config = next(c for c in [cfg for cfg in _configs(settings)] if c.experiment_name == NAME)
    materialize_datasets(defs, instance, config, sync_partitions(instance, registry_client(settings)))
    return materialize_refresh(defs, instance, NAME)


def _configs(settings):
    from ok_ml_assets.configs import load_experiment_configs

    return load_experiment_configs(settings.configs_dir)


@pytest.fixture
def bots_home(home, settings):
    """The test home with the tiny bot world registered and a relaxed antispam_bots config."""
    register_bots(settings)
    return write_config(home, antispam_config())


def test_scores_reach_the_topic_keyed_by_account(bots_home, settings, instance):
    result = refresh(settings, instance)
    assert result.success, [e.step_failure_data.error for e in result.get_step_failure_events()]
    published = read_topic(settings.kafka_bootstrap_servers, bots_home["publication"]["topic"])
    predictions = instance.fetch_materializations(KEY("predictions"), limit=1).records[0].asset_materialization.metadata
    assert len(published) == predictions["entities"].value > 1000  # rollout_fraction 1.0: every entity
    key, values = next(iter(published.items()))
    assert values[-1]["entity_id"] == int(key) and values[-1]["schema"] == "ok_ml.classification"
    assert set(values[-1]["probabilities"]) == {"human", "bot"} and values[-1]["model"]["version"] == "1"
    mlflow = build_resources(settings)["mlflow"]
    facts = mlflow.facts(NAME, "1")
    assert set(facts.aliases) == {"champion", "challenger"} and facts.metrics["pr_auc"] > facts.metrics["baseline_pr_auc"]
    assert "feature_importance.csv" in {a.path for a in mlflow.client().list_artifacts(facts.run_id)}


def test_a_label_flip_is_caught_before_kafka(home, settings, instance):
    register_bots(settings, fault=lambda frame: flip_labels(frame, share=0.5))
    config = write_config(home, antispam_config())
    result = refresh(settings, instance)
    assert not result.success
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert "label_index_mean_between" in failed
    outcomes = {check: outcome for check, outcome, _ in check_outcomes(result)}
    assert outcomes["labelled_examples:label_index_mean_between"] == "FAILED (severity ERROR: blocks publication)"
    assert outcomes["labelled_examples:account_id_not_null"] == "passed"
    assert read_topic(settings.kafka_bootstrap_servers, config["publication"]["topic"]) == {}
    assert build_resources(settings)["mlflow"].alias_version(NAME, "champion") is None


def test_a_unit_change_drifts_from_the_accepted_reference(home, bots_home, settings, instance):
    assert refresh(settings, instance).success
    settings.registry_repo.rename(home / "registry-before")
    register_bots(settings, fault=lambda frame: change_unit(frame, "session_minutes_mean"))
    result = refresh(settings, instance)
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert not result.success and "session_minutes_mean_psi_within" in failed
    assert build_resources(settings)["mlflow"].alias_version(NAME, "champion") == "1"


def test_promotion_refuses_a_worse_model(home, bots_home, settings, instance):
    assert refresh(settings, instance).success
    topic = bots_home["publication"]["topic"]
    before = read_topic(settings.kafka_bootstrap_servers, topic)
    weak = antispam_config(model={"num_leaves": 2, "n_estimators": 2, "learning_rate": 0.01})
    (home / "configs" / f"{NAME}.yml").write_text(yaml.safe_dump({**weak, "publication": bots_home["publication"]}))
    result = refresh(settings, instance)
    assert not result.success
    facts = build_resources(settings)["mlflow"].facts(NAME, "2")
    assert facts.tags["promotion_decision"] == "rejected" and "regresses more than 5%" in facts.tags["promotion_reason"]
    assert read_topic(settings.kafka_bootstrap_servers, topic) == before


def test_reproduce_and_rollback_work_for_a_classifier(home, bots_home, settings, instance):
    from ok_ml_assets.lifecycle import reproduce, rollback

    assert refresh(settings, instance).success
    assert refresh(settings, instance).success
    resources = build_resources(settings)
    result = reproduce(resources["mlflow"], registry_client(settings), NAME, "2")
    assert result.reproduced, result.verdict()
    assert {"pr_auc", "roc_auc", "threshold"} <= set(result.metrics)
    target, report = rollback(resources["mlflow"], resources["kafka"], NAME, "1")
    assert target == "1" and report.messages > 1000
    assert resources["mlflow"].alias_version(NAME, "champion") == "1"
    published = read_topic(settings.kafka_bootstrap_servers, bots_home["publication"]["topic"])
    assert {values[-1]["model"]["version"] for values in published.values()} == {"1"}
