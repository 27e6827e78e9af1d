"""The heavy-step seam: each experiment names its engine (`engine: local | spark`), each type implements its heavy stages on both.

`local` is this machine as fast as it goes (DuckDB, numpy, implicit); `spark` runs the same stages on a Spark cluster
(`local[*]` by default) through dagster-pyspark. Only `engines.spark` imports pyspark, and only an experiment on Spark
imports it.
"""

from __future__ import annotations

from typing import Literal

import dagster as dg

EngineName = Literal["local", "spark"]
ENGINES: tuple[str, ...] = ("local", "spark")


def is_spark_frame(value: object) -> bool:
    """Whether a value is a Spark DataFrame, without importing pyspark."""
    return type(value).__module__.startswith("pyspark.sql") and type(value).__name__ == "DataFrame"


class NoSparkSession(dg.ConfigurableResource):
    """The `spark` resource of a code location where no experiment runs on Spark: pyspark is never imported."""

    @property
    def spark_session(self):
        """Refuse by name: only an experiment with `engine: spark` gets a session."""
        raise RuntimeError("no experiment in this code location has engine: spark, so no Spark session is bound "
                           "(set engine: spark in the experiment YAML, or OK_ML_ENGINE=spark)")


def spark_resource_for(engines: set[str], settings) -> dg.ConfigurableResource:
    """dagster-pyspark's lazy session resource when an experiment runs on Spark, else a placeholder that imports nothing."""
    if "spark" not in engines:
        return NoSparkSession()
    from ok_ml_assets.engines.spark import spark_resource

    return spark_resource(settings)
