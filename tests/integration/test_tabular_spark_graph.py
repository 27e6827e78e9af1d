"""antispam_bots on the real graph with `engine: spark`: tiny labelled data to scores in Kafka, equal to the local engine's."""

from __future__ import annotations

import pandas as pd
import pytest

from ok_ml_assets.configs import parse_experiment_config
from ok_ml_assets.definitions import build_resources
from ok_ml_assets.pipeline_types.tabular_classification.engine import LocalEngine
from ok_ml_assets.pipeline_types.tabular_classification.recipe import VersionFile, run_recipe
from ok_ml_assets.registry import registry_client
from tests.conftest import write_config
from tests.integration.test_tabular_classification_graph import KEY, NAME, antispam_config, refresh, register_bots
from tests.kafka_utils import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.spark]
SPARK_TABLES = ("labelled_examples", "dataset_split", "predictions")


@pytest.fixture
def spark_bots_home(home, settings, spark):
    """The test home with the tiny bot world registered and antispam_bots (relaxed) on Spark (the tests' shared session)."""
    register_bots(settings)
    return write_config(home, antispam_config(engine="spark"))


def local_values(settings, config: dict) -> dict:
    """The recipe on the local engine over the registered window: what the Spark run must equal."""
    client = registry_client(settings)
    files = [VersionFile(v.tag, client.path(v.name, v.tag)) for v in client.versions("bot_accounts")][-14:]
    local = parse_experiment_config({**config, "engine": "local"}, f"{NAME}.yml")
    return run_recipe(local, {"examples": files, "engine": LocalEngine()}, targets=("evaluation_report", "predictions"))


def test_the_refresh_runs_on_spark_and_publishes_the_local_engine_scores(spark_bots_home, settings, instance):
    result = refresh(settings, instance)
    assert result.success, [e.step_failure_data.error for e in result.get_step_failure_events()]
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    rules = {rule.check_name for rules in parse_experiment_config(spark_bots_home, f"{NAME}.yml").monitoring.values() for rule in rules}
    assert set(evaluations) == rules | {"every_entity_scored"} and all(evaluations.values())
    for table in SPARK_TABLES:
        stored = settings.assets_dir / NAME / f"{table}.parquet"
        assert stored.is_dir() and list(stored.glob("part-*.parquet")), f"{table} was not written by Spark"
        metadata = instance.fetch_materializations(KEY(table), limit=1).records[0].asset_materialization.metadata
        assert metadata["engine"].value == "spark"

    local = local_values(settings, spark_bots_home)
    stored = pd.read_parquet(settings.assets_dir / NAME / "predictions.parquet")
    pd.testing.assert_frame_equal(stored.assign(probabilities=stored["probabilities"].map(list)), local["predictions"])
    facts = build_resources(settings)["mlflow"].facts(NAME, "1")
    metrics = local["evaluation_report"].as_metrics()
    assert {name: facts.metrics[name] for name in metrics} == metrics
    assert set(facts.aliases) == {"champion", "challenger"}

    published = read_topic(settings.kafka_bootstrap_servers, spark_bots_home["publication"]["topic"])
    assert len(published) == len(local["predictions"]) > 1000
    flagged = {int(key) for key, values in published.items() if values[-1]["flagged"]}
    assert flagged == set(local["predictions"].loc[local["predictions"]["flagged"] == 1, "account_id"])
