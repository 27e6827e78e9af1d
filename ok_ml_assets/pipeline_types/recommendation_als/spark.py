"""The heavy stages of `recommendation_als` on Spark: the same features, MLlib ALS (or implicit), top-K per user on executors.

Features are the local DuckDB query in Spark SQL. ALS is MLlib's implicit-preference ALS (`spark.als: mllib`) or the local
`implicit` on the features collected to the driver (`spark.als: implicit`). Top-K runs on the executors: users in tasks of
`users_per_task`, each scoring them against the broadcast source factors with the local blocked kernel, their exclusions
joined in Spark, so the lists equal the local engine's for the same factors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ok_ml_assets.engines import spark as spark_engine
from ok_ml_assets.pipeline_types.recommendation_als.config import Features, SparkOptions
from ok_ml_assets.pipeline_types.recommendation_als.evaluation import HoldoutReport, score_on_holdout
from ok_ml_assets.pipeline_types.recommendation_als.scoring import top_k
from ok_ml_assets.pipeline_types.recommendation_als.training import AlsParams, Embeddings, fit_als

PAIR = ["user_id", "source_id"]
INT32_MAX = 2**31 - 1
RECOMMENDATIONS_SCHEMA = "user_id bigint, source_ids array<bigint>, scores array<double>"


def features_sql(view: str, as_of: dt.date, features: Features) -> str:
    """The local engine's feature query (features.py) in Spark SQL, over the temporary view of the window's events."""
    cases = " ".join(f"WHEN '{event}' THEN {float(w)}" for event, w in features.event_weights.items())
    active = ""
    if features.min_user_interactions > 1:
        active = (f", active AS (SELECT user_id FROM pairs GROUP BY user_id "
                  f"HAVING sum(events) >= {int(features.min_user_interactions)})")
    return f"""
        WITH events AS (
            SELECT user_id, source_id, CASE event {cases} ELSE 0.0 END AS w,
                   datediff(DATE '{as_of.isoformat()}', CAST(ts AS DATE)) AS age
            FROM {view}
        ), pairs AS (
            SELECT user_id, source_id, sum(w * pow(0.5, age / {float(features.half_life_days)})) AS weight,
                   count(*) AS events, min(age) AS days_since_last
            FROM events GROUP BY user_id, source_id
        ){active}
        SELECT p.user_id, p.source_id, CAST(p.weight AS DOUBLE) AS weight,
               CAST(p.events AS BIGINT) AS events, CAST(p.days_since_last AS BIGINT) AS days_since_last
        FROM pairs p{" JOIN active USING (user_id)" if active else ""}
        WHERE p.weight > 0
        ORDER BY p.user_id, p.source_id
    """


def empty_pairs(spark: SparkSession, with_since: bool = False) -> DataFrame:
    """No pairs, typed like the pairs a file would give."""
    return spark.createDataFrame([], "user_id bigint, source_id bigint" + (", since timestamp_ntz" if with_since else ""))


class SparkEngine:
    """`recommendation_als` on a Spark session: `local[*]` by default, any cluster by OK_ML_SPARK_MASTER."""

    name = "spark"

    def __init__(self, spark: SparkSession, options: SparkOptions | None = None):
        self.spark, self.options = spark, options or SparkOptions()

    @classmethod
    def from_resource(cls, resource, options: SparkOptions) -> SparkEngine:
        """The engine on the run's Spark resource (dagster-pyspark's), or on the process's session outside a run."""
        session = getattr(resource, "spark_session", None) if resource is not None else None
        return cls(session or spark_engine.session(), options)

    def _events(self, files: Sequence[Path]) -> DataFrame:
        return spark_engine.read_parquet(self.spark, files)

    def features(self, files: Sequence[Path], as_of: dt.date, features: Features) -> DataFrame:
        """Per (user, source) decayed weight, events and recency, computed by Spark SQL over the registered files.

        Checkpointed on the executors when made, like the top-K lists: the asset's counts, statistics and stored copy
        (and the holdout's fits) read it again, and would otherwise each recompute it from the raw files.
        """
        if not files:
            raise ValueError("no interaction files in the feature window")
        view = f"events_{abs(hash((tuple(map(str, files)), as_of))):x}"
        self._events(files).createOrReplaceTempView(view)
        return self.spark.sql(features_sql(view, as_of, features)).localCheckpoint()

    def follows(self, files: Sequence[Path]) -> DataFrame:
        """Distinct follows with `since`, the UTC day of the first one (a zone-less timestamp, like the local engine's)."""
        if not files:
            return empty_pairs(self.spark, with_since=True)
        return (self._events(files).groupBy(*PAIR)
                .agg(F.min(F.to_date("ts")).cast("timestamp_ntz").alias("since")).orderBy(*PAIR))

    def pairs(self, files: Sequence[Path]) -> DataFrame:
        """Distinct (user, source) pairs of the files."""
        if not files:
            return empty_pairs(self.spark)
        return self._events(files).select(*PAIR).distinct().orderBy(*PAIR)

    def excluded_pairs(self, kinds: Sequence[str], subscribed: DataFrame, interacted: DataFrame,
                       before: dt.date | None = None) -> DataFrame:
        """The pairs never recommended, as `kinds` names them, distinct."""
        excluded = empty_pairs(self.spark)
        if "subscriptions" in kinds:
            follows = subscribed
            if before is not None and "since" in subscribed.columns:
                follows = subscribed.where(F.col("since") < F.lit(dt.datetime.combine(before, dt.time())).cast("timestamp_ntz"))
            excluded = excluded.unionByName(follows.select(*PAIR))
        if "interacted" in kinds:
            excluded = excluded.unionByName(interacted.select(*PAIR))
        return excluded.distinct()

    def fit(self, features: DataFrame, params: AlsParams) -> Embeddings:
        """ALS factors: MLlib's on the cluster, or implicit's on the collected features when the YAML asks."""
        if self.options.als == "implicit":
            return fit_als(self.to_pandas(features.select(*PAIR, "weight")), params)
        return fit_mllib_als(features, params)

    def evaluate(self, train_features: DataFrame, holdout_pairs: DataFrame, excluded: DataFrame, params: AlsParams, k: int,
                 baselines: bool = True, intervals: bool = True) -> HoldoutReport:
        """The engine's ALS fit on the train part, then the local metrics and baselines on the pairs collected to the driver."""
        embeddings = self.fit(train_features, params)
        return score_on_holdout(embeddings, self.to_pandas(train_features.select(*PAIR, "weight")), self.to_pandas(holdout_pairs),
                                self.to_pandas(excluded), k, baselines, intervals)

    def recommend(self, embeddings: Embeddings, excluded: DataFrame, k: int) -> DataFrame:
        """Each user's top-K sources on the executors, never an excluded one, ordered by user."""
        users = self._users_with_exclusions(embeddings, excluded)
        factors = self.spark.sparkContext.broadcast((embeddings.source_ids, embeddings.source_factors))

        def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            source_ids, source_factors = factors.value
            for batch in batches:
                yield top_k_batch(batch, source_ids, source_factors, k)

        return users.mapInArrow(score, RECOMMENDATIONS_SCHEMA).orderBy("user_id").localCheckpoint()

    def _users_with_exclusions(self, embeddings: Embeddings, excluded: DataFrame) -> DataFrame:
        """(user_id, factors, excluded source indices) per user, in tasks of `users_per_task` users."""
        tasks = max(1, -(-len(embeddings.user_ids) // self.options.users_per_task))
        users = self.spark.createDataFrame(pa.table({
            "user_id": pa.array(embeddings.user_ids, pa.int64()),
            "factors": pa.FixedSizeListArray.from_arrays(embeddings.user_factors.astype(np.float32).reshape(-1),
                                                         embeddings.user_factors.shape[1]).cast(pa.list_(pa.float32())),
        }))
        sources = self.spark.createDataFrame(pd.DataFrame({"source_id": embeddings.source_ids,
                                                           "source_index": np.arange(len(embeddings.source_ids), dtype=np.int64)}))
        per_user = (excluded.join(F.broadcast(sources), "source_id")
                    .groupBy("user_id").agg(F.collect_list("source_index").alias("excluded")))
        return users.join(per_user, "user_id", "left").repartitionByRange(tasks, "user_id")

    def to_pandas(self, table: DataFrame | pd.DataFrame) -> pd.DataFrame:
        """A table the driver must hold (evaluation's pairs, the model artifact's exclusions) as pandas."""
        return spark_engine.to_pandas(table)


def top_k_batch(batch: pa.RecordBatch, source_ids: np.ndarray, source_factors: np.ndarray, k: int) -> pa.RecordBatch:
    """The local top-K kernel on one batch of users: factors and excluded source indices in, id and score lists out."""
    n = batch.num_rows
    users = np.asarray(batch.column("factors").flatten().to_numpy(zero_copy_only=False), np.float32).reshape(n, -1)
    excluded = batch.column("excluded")
    lengths = excluded.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    indices = excluded.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    exclude = sp.csr_matrix((np.ones(len(indices), np.float32), indices, np.concatenate([[0], np.cumsum(lengths)])),
                            shape=(n, len(source_ids)))
    # One thread per task: Spark already runs a task per core.
    items, scores = top_k(users, source_factors, exclude, k, threads=1)
    valid = items >= 0
    offsets = pa.array(np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int32))
    ids = pa.ListArray.from_arrays(offsets, pa.array(source_ids[items[valid]], pa.int64()))
    values = pa.ListArray.from_arrays(offsets, pa.array(scores[valid].astype(np.float64)))
    return pa.RecordBatch.from_arrays([batch.column("user_id"), ids, values], names=["user_id", "source_ids", "scores"])


def fit_mllib_als(features: DataFrame, params: AlsParams) -> Embeddings:
    """MLlib's implicit-preference ALS (confidence 1 + alpha * weight, like the local fit), factors collected by id."""
    from pyspark.ml.recommendation import ALS

    require_int32_ids(features)
    ratings = features.select(F.col("user_id").cast("int").alias("user"), F.col("source_id").cast("int").alias("item"),
                              F.col("weight").cast("float").alias("weight"))
    # One block per core of the cluster: MLlib's default of 10 blocks is 3x slower on a 2-core local[*] (17 s against 6 s).
    blocks = max(1, features.sparkSession.sparkContext.defaultParallelism)
    als = ALS(rank=params.factors, maxIter=params.iterations, regParam=params.regularization, alpha=params.alpha,
              implicitPrefs=True, seed=params.seed, userCol="user", itemCol="item", ratingCol="weight",
              numUserBlocks=blocks, numItemBlocks=blocks)
    model = als.fit(ratings)
    user_ids, user_factors = collected_factors(model.userFactors)
    source_ids, source_factors = collected_factors(model.itemFactors)
    return Embeddings(user_ids, user_factors, source_ids, source_factors)


def require_int32_ids(features: DataFrame) -> None:
    """MLlib's ALS takes integer ids: refuse larger ones by name rather than let them wrap."""
    row = features.agg(F.min("user_id"), F.max("user_id"), F.min("source_id"), F.max("source_id")).first()
    if row is not None and row[0] is not None and (min(row[0], row[2]) < 0 or max(row[1], row[3]) > INT32_MAX):
        raise ValueError(f"MLlib ALS needs user_id and source_id in 0..{INT32_MAX} (found users {row[0]}..{row[1]}, "
                         f"sources {row[2]}..{row[3]}); set spark.als: implicit in the experiment YAML")


def collected_factors(factors: DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """An MLlib factor table (id, features) as ids in ascending order and their float32 factor matrix."""
    table = factors.orderBy("id").toArrow()
    ids = table.column("id").to_numpy().astype(np.int64)
    rank = len(table.column("features")[0]) if table.num_rows else 0
    matrix = np.asarray(table.column("features").combine_chunks().flatten().to_numpy(zero_copy_only=False), np.float32)
    return ids, np.ascontiguousarray(matrix.reshape(len(ids), rank))
