"""The heavy-step seam: each experiment names its engine (`engine: local | spark`), each type implements its heavy stages on both.

`local` is this machine as fast as it goes (DuckDB, numpy, implicit); `spark` runs the same stages on a Spark cluster
(`local[*]` by default) through dagster-pyspark. Only `engines.spark` imports pyspark, and only an experiment on Spark
imports it.
"""

from __future__ import annotations

from typing import Literal

EngineName = Literal["local", "spark"]
ENGINES: tuple[str, ...] = ("local", "spark")


def is_spark_frame(value: object) -> bool:
    """Whether a value is a Spark DataFrame, without importing pyspark."""
    return type(value).__module__.startswith("pyspark.sql") and type(value).__name__ == "DataFrame"
