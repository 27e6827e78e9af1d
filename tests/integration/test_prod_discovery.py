"""prod_discovery end to end on tiny data against the real Kafka broker."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from ok_ml_assets.configs import load_experiment_config
from ok_ml_assets.definitions import build_definitions
from ok_ml_assets.lifecycle.publication import in_rollout
from ok_ml_assets.orchestration import (
    materialize_datasets,
    materialize_refresh,
    sync_partitions,
)
from ok_ml_assets.pipeline_types.recommendation_als.features import read_pairs
from ok_ml_assets.pipeline_types.recommendation_als.synthetic import register_world
from ok_ml_assets.registry import registry_client
from ok_ml_assets.synthetic import generate_world
from tests.conftest import relaxed_config, write_config
from tests.kafka_utils import read_topic, topic_exists

pytestmark = pytest.mark.integration
KEY = lambda name: dg.AssetKey(["prod_discovery", name])  # noqa: E731


def run_whole_graph(settings, instance):
    """Materialize the dataset partitions and the refresh job in-process, as `make run` does."""
    defs = build_definitions(settings)
    config = load_experiment_config(settings.configs_dir / "prod_discovery.yml")
    tags = sync_partitions(instance, registry_client(settings))
    datasets_ok = materialize_datasets(defs, instance, config, tags)
    return config, defs, datasets_ok, materialize_refresh(defs, instance, "prod_discovery")


def stored(settings, name: str) -> pd.DataFrame:
    return pd.read_parquet(settings.assets_dir / "prod_discovery" / f"{name}.parquet")


def test_rollout_users_receive_exactly_their_recommendations(settings, instance):
    config, _, datasets_ok, result = run_whole_graph(settings, instance)
    assert datasets_ok and result.success

    recommendations = stored(settings, "recommendations")
    publication = config.publication
    expected_users = recommendations[in_rollout(recommendations["user_id"].to_numpy(), publication.rollout_fraction, publication.salt)]
    published = read_topic(settings.kafka_bootstrap_servers, config.publication.topic)

    assert 0 < len(expected_users) < len(recommendations)
    assert set(published) == {str(u) for u in expected_users["user_id"]}
    model = instance.fetch_materializations(KEY("trained_model"), limit=1).records[0].asset_materialization.metadata
    for row in expected_users.itertuples():
        [message] = published[str(row.user_id)]
        assert [i["source_id"] for i in message["items"]] == list(row.source_ids)
        assert [i["score"] for i in message["items"]] == pytest.approx(list(row.scores), abs=1e-5)
        assert message["user_id"] == row.user_id and message["experiment"] == "prod_discovery"
        assert f"{message['model']['name']} v{message['model']['version']}" == model["model"].value
        assert message["version"] == 1 and message["run_id"] == model["mlflow_run_id"].value

    client = registry_client(settings)
    every_follow = read_pairs([client.path(v.name, v.tag) for v in client.versions("subscriptions")])
    recommended = recommendations.explode("source_ids").rename(columns={"source_ids": "source_id"})
    recommended["source_id"] = recommended["source_id"].astype("int64")
    assert recommended.merge(every_follow, on=["user_id", "source_id"]).empty

    meta = instance.fetch_materializations(KEY("published_recommendations"), limit=1).records[0].asset_materialization.metadata
    assert meta["messages"].value == len(expected_users)
    assert sum(high - low + 1 for low, high in meta["offsets"].value.values()) == len(expected_users)


def test_every_dataset_partition_and_check_is_recorded(settings, instance):
    _, _, datasets_ok, result = run_whole_graph(settings, instance)
    assert datasets_ok and result.success
    assert instance.get_materialized_partitions(KEY("interactions")) == set(instance.get_dynamic_partitions("interactions"))
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    config = load_experiment_config(settings.configs_dir / "prod_discovery.yml")
    expected = {rule.check_name for rules in config.monitoring.values() for rule in rules} | {"all_scores_finite"}
    assert set(evaluations) == expected and all(evaluations.values())
    features = instance.fetch_materializations(KEY("user_source_features"), limit=1).records[0].asset_materialization
    assert isinstance(features.metadata["weight_mean"].value, float)


def test_failing_blocking_check_publishes_nothing(home, settings, instance):
    # A world with fewer sources than the lists' minimum length leaves every list short.
    small = generate_world("tiny", seed=3, sources=12)
    settings.registry_repo.rename(home / "registry-full")
    register_world(registry_client(settings), small)
    config = write_config(home, relaxed_config())

    defs = build_definitions(settings)
    result = materialize_refresh(defs, instance, "prod_discovery")

    assert not result.success
    assert "prod_discovery__published_recommendations" not in {e.step_key for e in result.get_step_success_events()}
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert "list_length_between" in failed
    assert not instance.fetch_materializations(KEY("published_recommendations"), limit=1).records
    assert read_topic(settings.kafka_bootstrap_servers, config["publication"]["topic"]) == {}

    # Materialized alone later, publication verifies the gate itself and still publishes nothing.
    alone = dg.materialize(
        [*defs.assets, *defs.asset_checks], selection=[KEY("published_recommendations")], instance=instance,
        resources=defs.resources, raise_on_error=False,
    )
    assert not alone.success
    assert "list_length_between" in str(alone.get_step_failure_events()[0].step_failure_data.error)
    assert not topic_exists(settings.kafka_bootstrap_servers, config["publication"]["topic"]) or \
        read_topic(settings.kafka_bootstrap_servers, config["publication"]["topic"]) == {}
