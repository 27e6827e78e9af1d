"""The baseline of bench_spark.py: prod_discovery's refresh on Spark as a bare script, the same work with the same libraries.

    python benchmarks/bare_spark_refresh.py INPUTS.json CONFIG.yml

It starts a plain SparkSession with the product's Spark settings, runs the recipe's stages on the Spark engine (features
in Spark SQL, holdout split, MLlib ALS fits, holdout evaluation with its baselines, top-K on the executors), writes the
recommendations as parquet, and publishes the rollout arm with one transactional producer, without Dagster, MLflow,
monitoring or the registry. It prints one JSON line of timings. INPUTS.json is bench_run.py's.
"""

import time

STARTED = time.perf_counter()

import json  # noqa: E402  (imports are part of what is timed)
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from bare_refresh import messages, publish, read_inputs  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402

from ok_ml_assets.configs import load_experiment_config  # noqa: E402
from ok_ml_assets.engines.spark import prepare_dirs, spark_config  # noqa: E402
from ok_ml_assets.pipeline_types.recommendation_als.recipe import run_recipe  # noqa: E402
from ok_ml_assets.pipeline_types.recommendation_als.spark import SparkEngine  # noqa: E402
from ok_ml_assets.settings import load_settings  # noqa: E402

IMPORTED = time.perf_counter()


def start_spark() -> SparkSession:
    """A plain session with the product's settings."""
    config = spark_config(load_settings())
    prepare_dirs(config)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder
    for key, value in config.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def main() -> None:
    """Run the refresh on Spark and print its timings."""
    inputs = read_inputs(Path(sys.argv[1]))
    config = load_experiment_config(Path(sys.argv[2]))
    config = config.model_copy(update={"engine": "spark"})
    began = time.perf_counter()
    spark = start_spark()
    session = time.perf_counter()
    values = run_recipe(config, {**inputs, "engine": SparkEngine(spark, config.spark)}, targets=("holdout_report", "recommendations"))
    with tempfile.TemporaryDirectory() as tmp:
        values["recommendations"].write.parquet(str(Path(tmp) / "recommendations.parquet"))
        recommendations = spark.read.parquet(str(Path(tmp) / "recommendations.parquet")).toPandas()
    # Spark hands list columns over as numpy arrays; the message writer takes Python lists.
    recommendations = recommendations.assign(source_ids=recommendations["source_ids"].map(lambda ids: ids.tolist()),
                                             scores=recommendations["scores"].map(lambda scores: scores.tolist()))
    computed = time.perf_counter()
    publish(config.publication.topic, messages(recommendations, config))
    published = time.perf_counter()
    spark.stop()
    print(json.dumps({"imports": IMPORTED - STARTED, "session": session - began, "compute": computed - session,
                      "publish": published - computed, "total": time.perf_counter() - STARTED}))


if __name__ == "__main__":
    main()
