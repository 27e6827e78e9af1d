"""Publication of a Spark table (streamed from the executors) beside the local path on the same rows, on the local broker.

    .venv/bin/python benchmarks/bench_spark_publication.py [--users 200000] [--top-k 20] [--parts 8] [--repeats 2]

A recommendation table like prod_discovery's is stored as Spark stores an asset (a partitioned parquet dataset) and
published three ways, each to a fresh topic, from the same rows: the local path (`publish_rollout` on the pandas table,
already in memory), the Spark path (`publish_rollout` on the Spark DataFrame: arms and encoding on the executors, the
driver streaming encoded chunks with toLocalIterator), and the alternative the Spark path did not take: the driver
reading the dataset's parquet parts batch by batch with pyarrow and encoding them itself (file-backed frames only). Each
figure is the best of the repeats, the paths taking turns; the driver's peak of rows held is printed beside each.
Needs the local Kafka (`make kafka-up`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

import pandas as pd
from bench_publication import config_for, recommendation_table
from summary import record

from ok_ml_assets.configs import ExperimentConfig, load_experiment_config
from ok_ml_assets.lifecycle.operations import publish_rollout
from ok_ml_assets.lifecycle.publication import (
    ROLLOUT,
    BatchEnd,
    HeldRows,
    Provenance,
    publish_messages,
    spark_rollout,
    with_arms,
)
from ok_ml_assets.pipeline_types import pipeline_type
from ok_ml_assets.resources.kafka import KafkaResource
from ok_ml_assets.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
BATCH_ROWS = 4_000


def stored_dataset(spark, table: pd.DataFrame, parts: int, folder: Path):
    """The table written by Spark as `parts` parquet part files, read back one partition per part, and its rows in Spark's order."""
    spark.createDataFrame(table).repartition(parts).write.parquet(str(folder))
    spark.conf.set("spark.sql.files.maxPartitionBytes", "256m")
    spark.conf.set("spark.sql.files.openCostInBytes", "256m")
    frame = spark.read.parquet(str(folder))
    return frame, frame.toPandas()


def publish_local(kafka: KafkaResource, config: ExperimentConfig, rows: pd.DataFrame, provenance: Provenance, held: HeldRows) -> int:
    """The local path on the pandas table; it holds the whole table."""
    held.take(len(rows))
    return publish_rollout(kafka, config, rows, provenance, "2026-11-29").report.messages


def publish_spark(kafka: KafkaResource, config: ExperimentConfig, frame, provenance: Provenance, held: HeldRows) -> int:
    """The product's Spark path."""
    return publish_rollout(kafka, config, frame, provenance, "2026-11-29", held).report.messages


def parquet_part_messages(folder: Path, config: ExperimentConfig, provenance: Provenance, held: HeldRows):
    """The rollout's messages read from the dataset's part files BATCH_ROWS at a time and encoded by the driver."""
    import pyarrow.parquet as pq

    kind = pipeline_type(config.pipeline_type)
    for part in sorted(folder.glob("part-*.parquet")):
        for batch in pq.ParquetFile(part).iter_batches(batch_size=BATCH_ROWS):
            chunk = with_arms(batch.to_pandas(), config.publication, "2026-11-29")
            rollout = chunk[chunk["arm"] == ROLLOUT]
            held.take(len(chunk))
            yield from kind.encode_messages(config, rollout, provenance)
            held.release(len(chunk))


def publish_parts(kafka: KafkaResource, config: ExperimentConfig, frame, folder: Path, provenance: Provenance, held: HeldRows) -> int:
    """The alternative: the fallback counted by Spark, the messages read and encoded by the driver from the part files."""
    kind = pipeline_type(config.pipeline_type)
    fallback = kind.fallback(config, spark_rollout(frame, config.publication, kind.key_column(config)))
    messages = parquet_part_messages(folder, config, provenance, held)
    return publish_messages(kafka, config.publication, messages, BatchEnd(provenance, config.publication, fallback)).messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--sources", type=int, default=5_000)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from ok_ml_assets.engines.spark import session

    kafka = KafkaResource(bootstrap_servers=load_settings().kafka_bootstrap_servers)
    kafka.require_reachable()
    base = load_experiment_config(ROOT / "asset_configs" / "prod_discovery.yml")
    provenance = Provenance(base.experiment_name, base.experiment_name, "1", "bench-run")
    spark = session()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "recommendations.parquet"
        frame, rows = stored_dataset(spark, recommendation_table(args.users, args.top_k, args.sources), args.parts, folder)
        paths = {
            "local (pandas table in memory)": partial(publish_local, kafka, rows=rows, provenance=provenance),
            "spark (executors encode, toLocalIterator)": partial(publish_spark, kafka, frame=frame, provenance=provenance),
            "parquet parts read by the driver (pyarrow)": partial(publish_parts, kafka, frame=frame, folder=folder, provenance=provenance),
        }
        best, peaks, sent = dict.fromkeys(paths, float("inf")), {}, {}
        for _ in range(args.repeats):
            for name, publish in paths.items():
                config = config_for(base, f"bench.spark_publication.{uuid.uuid4().hex[:12]}")
                kafka.ensure_topic(config.publication.topic, config.publication.partitions)
                held = HeldRows()
                started = time.perf_counter()
                sent[name] = publish(config=config, held=held)
                best[name] = min(best[name], time.perf_counter() - started)
                peaks[name] = held.peak
    assert len(set(sent.values())) == 1, f"the paths sent different numbers of messages: {sent}"
    messages = next(iter(sent.values()))
    print(f"{args.users:,} users x top-{args.top_k} in {args.parts} parquet parts, rollout {base.publication.rollout_fraction:.0%}: "
          f"{messages:,} messages; best of {args.repeats}; Spark {spark.sparkContext.master}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'path':46} {'seconds':>8} {'msg/s':>10} {'vs local':>9} {'peak rows in driver':>20}")
    local = best["local (pandas table in memory)"]
    for name, seconds in best.items():
        print(f"{name:46} {seconds:8.2f} {messages / seconds:10,.0f} {local / seconds:9.2f} {peaks[name]:20,}")
    spark_seconds = best["spark (executors encode, toLocalIterator)"]
    record(f"spark publication, {args.users // 1000}k users x top-{args.top_k} (msg/s)", messages / spark_seconds, messages / local,
           "msg/s", "local publication of the same rows")


if __name__ == "__main__":
    main()
