"""prod_discovery with `engine: spark` end to end on tiny data: the same graph, checks and topic as the local engine."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from ok_ml_assets.lifecycle.publication import in_rollout
from tests.conftest import relaxed_config, write_config
from tests.integration.test_prod_discovery import KEY, run_whole_graph
from tests.kafka_utils import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def test_a_spark_experiment_publishes_its_rollout_and_stores_partitioned_tables(home, settings, instance, spark):
    write_config(home, relaxed_config(engine="spark"))
    config, defs, datasets_ok, result = run_whole_graph(settings, instance)
    assert config.engine == "spark" and datasets_ok and result.success

    folder = settings.assets_dir / "prod_discovery" / "recommendations.parquet"
    assert folder.is_dir() and len(list(folder.glob("part-*.parquet"))) >= 1
    recommendations = pd.read_parquet(folder)
    chosen = in_rollout(recommendations["user_id"].to_numpy(), config.publication.rollout_fraction, config.publication.salt)
    published = read_topic(settings.kafka_bootstrap_servers, config.publication.topic)
    assert set(published) == {str(u) for u in recommendations.loc[chosen, "user_id"]}
    for row in recommendations[chosen].head(50).itertuples():
        [message] = published[str(row.user_id)]
        assert [item["source_id"] for item in message["items"]] == list(row.source_ids)

    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    expected = {rule.check_name for rules in config.monitoring.values() for rule in rules} | {"all_scores_finite"}
    assert set(evaluations) == expected and all(evaluations.values())
    features = instance.fetch_materializations(KEY("user_source_features"), limit=1).records[0].asset_materialization
    assert features.metadata["engine"].value == "spark" and features.metadata["rows"].value > 1000
    publication = instance.fetch_materializations(KEY("published_recommendations"), limit=1).records[0].asset_materialization
    assert publication.metadata["messages"].value == int(chosen.sum())


def test_the_run_stops_the_session_it_started_and_leaves_a_running_one_alone(spark, settings):
    from ok_ml_assets.engines.spark import spark_resource

    with dg.build_resources({"spark": spark_resource(settings)}) as resources:
        assert resources.spark.spark_session is spark
    assert not spark.sparkContext._jsc.sc().isStopped()
