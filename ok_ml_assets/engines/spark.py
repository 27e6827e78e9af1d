"""The Spark side of the engine seam: the session's settings, the Dagster resource that owns it, and table helpers.

One session per run process: the resource creates it on first use (never at import) and stops it when the run ends.
Outside Dagster (reproduction, benchmarks) `session()` makes the same session from the same settings.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster_pyspark import LazyPySparkResource
from pydantic import PrivateAttr
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ok_ml_assets.settings import Settings, load_settings

LOOPBACK = "127.0.0.1"
# The facts of every session this process started (`ok-ml run` prints where its UI and event log were).
STARTED: list[dict[str, str]] = []


def spark_config(settings: Settings) -> dict[str, str]:
    """The session's settings: the master, loopback-only driver, a project-local warehouse and event log, then OK_ML_SPARK_CONF."""
    events = settings.spark_dir / "events"
    config = {
        "spark.master": settings.spark_master,
        "spark.app.name": "ok-ml-assets",
        "spark.driver.host": LOOPBACK,
        "spark.driver.bindAddress": LOOPBACK,
        "spark.ui.port": str(settings.spark_ui_port),
        "spark.sql.warehouse.dir": str(settings.spark_dir / "warehouse"),
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": events.as_uri(),
        "spark.local.dir": str(settings.spark_dir / "tmp"),
        # A local session's default of 200 shuffle partitions is 200 tiny tasks per join on a laptop-sized input.
        "spark.sql.shuffle.partitions": "8",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # pandas writes nanosecond timestamps, which Spark reads only as longs: read_parquet turns them into timestamps.
        "spark.sql.legacy.parquet.nanosAsLong": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "65536",
        "spark.driver.memory": driver_memory(settings.spark_master),
        "spark.ui.showConsoleProgress": "false",
        # Python workers run this interpreter (this environment's packages); a cluster sets its own in OK_ML_SPARK_CONF.
        "spark.pyspark.python": sys.executable,
        # MLlib's ALS runs on the native BLAS when the machine has one (`make openblas`): one thread per task, since
        # Spark already runs a task per core (Spark's own advice for OpenBLAS).
        "spark.executorEnv.OPENBLAS_NUM_THREADS": "1",
    }
    config.update(dict(settings.spark_conf))
    return config


def driver_memory(master: str) -> str:
    """The driver's heap: on `local[*]` the driver is also the executor, so half the machine (at least 4g); 4g for a cluster.

    The large preset's MLlib fit and shuffles on local[*] took 13.6 GB of JVM on a 24 GiB machine with 12g.
    """
    if not master.startswith("local"):
        return "4g"
    machine_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30
    return f"{max(4, machine_gib // 2)}g"


def prepare_dirs(config: dict[str, str]) -> None:
    """Create the event-log and scratch folders a local session writes to (Spark refuses a missing event-log folder)."""
    for key in ("spark.eventLog.dir", "spark.local.dir", "spark.sql.warehouse.dir"):
        value = config.get(key, "")
        if value.startswith("file:"):
            value = value.removeprefix("file://")
        if value and "://" not in value:
            Path(value).mkdir(parents=True, exist_ok=True)


def start_session(config: dict[str, Any]) -> SparkSession:
    """A session with these settings, Spark's own console logging kept to errors."""
    prepare_dirs(config)
    # PySpark starts its local workers from PYSPARK_PYTHON, not from the spark.pyspark.python setting.
    os.environ.setdefault("PYSPARK_PYTHON", config.get("spark.pyspark.python", sys.executable))
    if str(config.get("spark.master", "")).startswith("local"):
        # A local session talks to itself only: without this Spark binds its block manager to the machine's address.
        os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
        # On local[*] the tasks run in the driver's JVM, which takes its environment from this process.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", config.get("spark.executorEnv.OPENBLAS_NUM_THREADS", "1"))
    builder = SparkSession.builder
    for key, value in config.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    facts = session_facts(session)
    if facts not in STARTED:
        STARTED.append(facts)
    return session


class SparkResource(LazyPySparkResource):
    """dagster-pyspark's lazy session resource: created when a Spark experiment's step first asks, stopped at the run's end.

    A session the process already had (a notebook's, a test's) is used and left running: the resource stops only its own.
    """

    _owned: bool = PrivateAttr(default=False)

    def _init_session(self) -> None:
        if self._spark_session is None:
            active = SparkSession.getActiveSession()
            self._spark_session = active or start_session(self.spark_config)
            self._owned = active is None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._spark_session is not None and self._owned:
            self._spark_session.stop()
        self._spark_session, self._owned = None, False


def spark_resource(settings: Settings) -> SparkResource:
    """The resource bound in definitions when an experiment runs on Spark."""
    return SparkResource(spark_config=spark_config(settings))


def session(settings: Settings | None = None) -> SparkSession:
    """The process's session with the product's settings (the active one if a run already started it)."""
    return SparkSession.getActiveSession() or start_session(spark_config(settings or load_settings()))


def session_facts(spark: SparkSession) -> dict[str, str]:
    """Where an on-call engineer looks: the master, the UI's address and the event log."""
    context = spark.sparkContext
    conf = context.getConf()
    events = conf.get("spark.eventLog.dir", "") if conf.get("spark.eventLog.enabled", "false") == "true" else ""
    return {"master": context.master, "ui": context.uiWebUrl or "disabled", "app_id": context.applicationId,
            "event_log": f"{events.rstrip('/')}/{context.applicationId}" if events else "off"}


def read_parquet(spark: SparkSession, paths: Sequence[Path]) -> DataFrame:
    """Parquet files as one Spark DataFrame, nanosecond timestamps (pandas' unit) as Spark's microsecond ones."""
    frame = spark.read.parquet(*[str(p) for p in paths])
    for field in pq.read_schema(paths[0]):
        if pa.types.is_timestamp(field.type) and field.type.unit == "ns":
            micros = F.expr(f"timestamp_micros(`{field.name}` div 1000)")
            frame = frame.withColumn(field.name, micros if field.type.tz else micros.cast("timestamp_ntz"))
    return frame


def to_pandas(table: DataFrame | pd.DataFrame) -> pd.DataFrame:
    """A table in the driver as pandas (through Arrow): only for tables the driver must hold anyway."""
    return table if isinstance(table, pd.DataFrame) else table.toPandas()
