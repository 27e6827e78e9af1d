"""Top-K on Spark: the engine's blocked kernel on the executors against MLlib's `recommendForAllUsers` plus an anti-join.

    python benchmarks/bench_spark_topk.py [--users 100000] [--sources 100000] [--pairs-per-user 38] [--k 20]

One MLlib ALS model (rank 64, one iteration: the factors' values do not change the work) on synthetic pairs; the pairs
are also the exclusions, as in prod_discovery (interacted and followed sources are never recommended). Both ways write
every user's top-K to Spark's no-op sink, so each is computed whole and nothing is collected:

- product: `SparkEngine.recommend`, the engine's path (factors collected once, users in tasks, exclusions joined per
  user, the local kernel against broadcast source factors);
- MLlib: `recommendForAllUsers(k + the most exclusions any user has)`, exploded, anti-joined with the exclusions, cut
  to k per user. It must ask for that many so that k remain after the anti-join, which is what makes it slow.

The large preset has 1M users, 100k sources and about 38 pairs per user; the defaults keep its catalog and 1/10 of
its users (both ways scale with users). The share of lists equal between the two is printed too (float32 against
float64 scores may swap near ties).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from summary import record, timed  # benchmarks/ is on sys.path when a script runs


def synthetic_pairs(users: int, sources: int, per_user: int, seed: int = 7) -> pd.DataFrame:
    """Distinct (user, source) pairs with a skewed source popularity and a weight."""
    rng = np.random.default_rng(seed)
    user = np.repeat(np.arange(users, dtype=np.int64), rng.poisson(per_user, users).clip(1))
    source = (rng.zipf(1.2, user.size) - 1) % sources
    pairs = pd.DataFrame({"user_id": user, "source_id": source.astype(np.int64)}).drop_duplicates()
    return pairs.assign(weight=rng.gamma(1.5, 2.0, len(pairs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--sources", type=int, default=100_000)
    parser.add_argument("--pairs-per-user", type=int, default=38)
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args()

    from pyspark.ml.recommendation import ALS
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from ok_ml_assets.engines.spark import session
    from ok_ml_assets.pipeline_types.recommendation_als.config import SparkOptions
    from ok_ml_assets.pipeline_types.recommendation_als.spark import SparkEngine, collected_factors
    from ok_ml_assets.pipeline_types.recommendation_als.training import Embeddings

    spark = session()
    pairs = spark.createDataFrame(synthetic_pairs(args.users, args.sources, args.pairs_per_user)).localCheckpoint()
    excluded = pairs.select("user_id", "source_id").localCheckpoint()
    ratings = pairs.select(F.col("user_id").cast("int").alias("user"), F.col("source_id").cast("int").alias("item"), "weight")
    blocks = spark.sparkContext.defaultParallelism
    model = ALS(rank=64, maxIter=1, implicitPrefs=True, userCol="user", itemCol="item", ratingCol="weight", seed=1,
                numUserBlocks=blocks, numItemBlocks=blocks).fit(ratings)
    most_excluded = excluded.groupBy("user_id").count().agg(F.max("count")).first()[0]
    print(f"{excluded.count():,} pairs of {args.users:,} users and {args.sources:,} sources; at most {most_excluded} "
          f"exclusions for one user; top-{args.k}", flush=True)

    def product():
        user_ids, user_factors = collected_factors(model.userFactors)
        source_ids, source_factors = collected_factors(model.itemFactors)
        embeddings = Embeddings(user_ids, user_factors, source_ids, source_factors)
        table = SparkEngine(spark, SparkOptions()).recommend(embeddings, excluded, args.k)
        table.write.format("noop").mode("overwrite").save()
        return table

    def mllib():
        asked = model.recommendForAllUsers(args.k + most_excluded)
        exploded = asked.select(F.col("user").cast("long").alias("user_id"), F.posexplode("recommendations").alias("pos", "r"))
        candidates = exploded.select("user_id", "pos", F.col("r.item").cast("long").alias("source_id"), F.col("r.rating").alias("score"))
        kept = candidates.join(excluded, ["user_id", "source_id"], "left_anti")
        ranked = kept.withColumn("rank", F.row_number().over(Window.partitionBy("user_id").orderBy("pos"))).where(F.col("rank") <= args.k)
        table = (ranked.groupBy("user_id").agg(F.sort_array(F.collect_list(F.struct("rank", "source_id"))).alias("top"))
                 .select("user_id", F.col("top.source_id").alias("source_ids")).localCheckpoint())
        table.write.format("noop").mode("overwrite").save()
        return table

    product_seconds, product_table = timed(product)
    print(f"  product (blocked kernel on the executors): {product_seconds:.1f} s", flush=True)
    mllib_seconds, mllib_table = timed(mllib)
    print(f"  MLlib recommendForAllUsers(k + {most_excluded}) + anti-join: {mllib_seconds:.1f} s", flush=True)
    ours, theirs = (table.select("user_id", F.col("source_ids").alias(name)) for table, name in ((product_table, "a"), (mllib_table, "b")))
    joined = ours.join(theirs, "user_id")
    same = joined.agg(F.avg((F.col("a") == F.col("b")).cast("double"))).first()[0]
    print(f"  MLlib / product: {mllib_seconds / product_seconds:.2f}x; lists equal for {same:.1%} of users")
    record(f"spark top-K, {args.users:,} users x {args.sources:,} sources", product_seconds, mllib_seconds, "s",
           "recommendForAllUsers + anti-join", "")


if __name__ == "__main__":
    main()
