"""The model registry never says champion for a version whose predictions did not reach the topic."""

from __future__ import annotations

from ok_ml_assets.definitions import build_resources
from ok_ml_assets.settings import load_settings
from tests.conftest import write_config
from tests.integration.test_model_lifecycle import free_port
from tests.integration.test_tabular_classification_graph import NAME, antispam_config, refresh, register_bots
from tests.kafka_utils import read_topic


def test_a_publication_that_fails_leaves_the_champion_where_the_topic_is(home, settings, instance, monkeypatch):
    register_bots(settings)
    config = write_config(home, antispam_config())
    assert refresh(settings, instance).success
    before = read_topic(settings.kafka_bootstrap_servers, config["publication"]["topic"])

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    result = refresh(load_settings(), instance)

    assert not result.success
    error = str(result.get_step_failure_events()[0].step_failure_data.error)
    assert "is unreachable" in error and "nothing was published" in error
    mlflow = build_resources(settings)["mlflow"]
    assert mlflow.facts(NAME, "2").tags["promotion_decision"] == "promoted"
    assert mlflow.alias_version(NAME, "champion") == "1", "champion moved to a version that was never published"
    assert read_topic(settings.kafka_bootstrap_servers, config["publication"]["topic"]) == before
