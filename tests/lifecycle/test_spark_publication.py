"""A Spark table is published, streamed from the executors, exactly as the local path publishes the same rows."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from ok_ml_assets.configs import ExperimentConfig, load_experiment_config
from ok_ml_assets.lifecycle.operations import publish_rollout, publish_spark_rollout
from ok_ml_assets.lifecycle.publication import ROLLOUT, SPARK_CHUNK_ROWS, HeldRows, Provenance, spark_rollout, with_arms
from ok_ml_assets.pipeline_types import pipeline_type
from ok_ml_assets.pipeline_types.recommendation_als.payload import popular_fallback
from ok_ml_assets.resources.kafka import KafkaResource
from ok_ml_assets.settings import PROJECT_ROOT, load_settings
from tests.kafka_utils import read_messages, read_trailers

pytestmark = [pytest.mark.spark, pytest.mark.integration]
PARTITIONS = 8


@pytest.fixture
def kafka() -> KafkaResource:
    return KafkaResource(bootstrap_servers=load_settings().kafka_bootstrap_servers)


def config_with_topic() -> ExperimentConfig:
    """prod_discovery's config publishing to a topic of its own."""
    base = load_experiment_config(PROJECT_ROOT / "asset_configs" / "prod_discovery.yml")
    return base.model_copy(update={"publication": base.publication.model_copy(update={"topic": f"test.{uuid.uuid4().hex[:12]}"})})


def recommendation_table(users: int, seed: int) -> pd.DataFrame:
    """Top-20 lists over few sources (so the fallback's counts tie), with scores the bulk writer leaves to the per-row one."""
    rng = np.random.default_rng(seed)
    sources = np.argsort(rng.random((users, 60)), axis=1)[:, :20]
    scores = -np.sort(-rng.gamma(2.0, 0.15, (users, 20)), axis=1)
    scores[:5, -1] = [1e-05, -0.25, 0.0, 123456.5, 2.5e-7]
    lengths = rng.integers(0, 21, users)
    return pd.DataFrame({"user_id": rng.choice(20 * users, users, replace=False).astype(np.int64) + 1,
                         "source_ids": [s[:n].tolist() for s, n in zip(sources, lengths)],
                         "scores": [c[:n].tolist() for c, n in zip(scores, lengths)]})


@pytest.fixture(scope="module")
def stored(spark, tmp_path_factory):
    """A recommendation table as Spark stores it (a partitioned parquet dataset) read back, the same rows in pandas, and
    the Spark partition of each row."""
    from pyspark.sql import functions as F

    folder = tmp_path_factory.mktemp("assets") / "recommendations.parquet"
    spark.createDataFrame(recommendation_table(10_000, seed=5)).repartition(PARTITIONS).write.parquet(str(folder))
    # A partition per part file (a local session packs small files together): the stream crosses several partitions.
    spark.conf.set("spark.sql.files.maxPartitionBytes", "16m")
    spark.conf.set("spark.sql.files.openCostInBytes", "16m")
    frame = spark.read.parquet(str(folder))
    rows = frame.withColumn("partition", F.spark_partition_id()).toPandas()
    return frame, rows.drop(columns="partition"), rows["partition"].to_numpy()


def by_key(messages: list[tuple[bytes, dict]]) -> dict[bytes, dict]:
    """Data messages by key (each key once in a publication)."""
    return {key: value for key, value in messages if not key.startswith(b"__batch__")}


def without_topic(trailers: list[dict]) -> list[dict]:
    """Trailers with their topic left out (the two paths publish to two topics)."""
    return sorted(({k: v for k, v in t.items() if k != "topic"} for t in trailers), key=lambda t: t["partition"])


def test_the_spark_path_publishes_the_local_bytes_and_trailers_holding_a_chunk_at_a_time(spark, stored, kafka):
    frame, rows, partition = stored
    assert frame.rdd.getNumPartitions() == PARTITIONS
    provenance = Provenance("prod_discovery", "prod_discovery", "3", "run-1")
    local_config, spark_config = config_with_topic(), config_with_topic()
    local = publish_rollout(kafka, local_config, rows, provenance, "2026-11-29")
    held = HeldRows()
    streamed = publish_rollout(kafka, spark_config, frame, provenance, "2026-11-29", held)

    local_messages = read_messages(kafka.bootstrap_servers, local_config.publication.topic)
    spark_messages = read_messages(kafka.bootstrap_servers, spark_config.publication.topic)
    assert len(by_key(spark_messages)) == len(local.rollout) > 4_000
    assert by_key(spark_messages) == by_key(local_messages)
    trailers = without_topic(read_trailers(kafka.bootstrap_servers, spark_config.publication.topic))
    assert trailers == without_topic(read_trailers(kafka.bootstrap_servers, local_config.publication.topic))
    assert len(trailers) == spark_config.publication.partitions and len(trailers[0]["fallback"]["items"]) == 20
    assert streamed.report.messages == local.report.messages and streamed.report.counts == local.report.counts

    # The same arms for every user, and the same rollout users.
    arms = streamed.arms.toPandas().sort_values("user_id").reset_index(drop=True)
    expected = local.arms.sort_values("user_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(arms[["user_id", "arm", "as_of"]], expected[["user_id", "arm", "as_of"]])

    # The driver held one encoded chunk of one partition at a time, never the table.
    per_partition = np.bincount(partition[(local.arms["arm"] == ROLLOUT).to_numpy()])
    assert held.total == len(local.rollout) and held.now == 0
    assert 0 < held.peak <= min(per_partition.max(), SPARK_CHUNK_ROWS) < held.total / 4


def test_the_fallback_ranks_tied_sources_as_the_local_path_does(spark):
    # Every source in exactly as many lists, first seen in a shuffled order: the ranking is all ties.
    rng = np.random.default_rng(9)
    users = 3_500
    table = pd.DataFrame({"user_id": rng.permutation(users).astype(np.int64),
                          "source_ids": [[(start + j) % 7 * 11 for j in range(5)] for start in rng.permutation(users) % 7],
                          "scores": [[0.5] * 5] * users})
    # A plan that reads its rows in one order every time (as a stored dataset does; a round-robin repartition does not).
    frame = spark.createDataFrame(table)
    rows = frame.toPandas()
    assert rows["source_ids"].explode().value_counts().nunique() == 1
    assert popular_fallback(frame, 7) == popular_fallback(rows, 7)
    assert popular_fallback(frame, 7) != popular_fallback(rows.iloc[::-1], 7)  # the order of the rows decides the ties


class FailingEncoder:
    """The recommendation type, except that encoding the chunk holding one user fails (on the executor)."""

    def __init__(self, user_id: int):
        self.kind, self.user_id = pipeline_type("recommendation_als"), user_id

    def key_column(self, config):
        return self.kind.key_column(config)

    def fallback(self, config, predictions):
        return self.kind.fallback(config, predictions)

    def encode_messages(self, config, predictions, provenance):
        if (predictions["user_id"] == self.user_id).any():
            raise RuntimeError(f"injected encoder failure at user {self.user_id}")
        return self.kind.encode_messages(config, predictions, provenance)


def test_a_failure_on_one_partition_leaves_no_message_of_the_batch(spark, stored, kafka):
    from pyspark.sql import functions as F

    frame, rows, _ = stored
    config = config_with_topic()
    before = publish_rollout(kafka, config, rows, Provenance("prod_discovery", "prod_discovery", "3", "run-before"), "2026-11-29")
    rollout = spark_rollout(frame, config.publication, "user_id").withColumn("partition", F.spark_partition_id())
    last = rollout.where(F.col("partition") == PARTITIONS - 1).agg(F.max("user_id")).first()[0]
    held = HeldRows()
    failing = Provenance("prod_discovery", "prod_discovery", "4", "run-failing")
    with pytest.raises(Exception, match=f"injected encoder failure at user {last}"):
        publish_spark_rollout(kafka, config, frame, failing, "2026-11-29", held, kind=FailingEncoder(last))
    assert held.total > 0  # messages of the earlier partitions were already in the transaction

    messages = read_messages(kafka.bootstrap_servers, config.publication.topic)
    assert {value["run_id"] for _, value in messages} == {"run-before"}
    assert len(by_key(messages)) == before.report.messages == int((with_arms(rows, config.publication, "")["arm"] == ROLLOUT).sum())


def test_predictions_logged_from_spark_load_back_as_pandas_for_a_rollback(spark, stored, tmp_path, monkeypatch):
    from ok_ml_assets.resources.mlflow import MlflowResource

    frame, rows, _ = stored
    mlflow = MlflowResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    # MLflow exports the URI it is pointed at: the variable goes back to what it was after the test.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow.tracking_uri)
    client = mlflow.client()
    run_id = client.create_run(client.create_experiment("spark-predictions", (tmp_path / "artifacts").as_uri())).info.run_id
    mlflow.log_predictions(run_id, frame)
    loaded = mlflow.load_predictions(run_id)
    assert isinstance(loaded, pd.DataFrame) and list(loaded.columns) == ["user_id", "source_ids", "scores"]
    as_lists = lambda table: table.sort_values("user_id").assign(  # noqa: E731
        source_ids=lambda t: t["source_ids"].map(list), scores=lambda t: t["scores"].map(list)).reset_index(drop=True)
    pd.testing.assert_frame_equal(as_lists(loaded), as_lists(rows))
