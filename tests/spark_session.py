"""The Spark session tests share: the product's own settings (engines.spark) in a temporary folder, UI off."""

from __future__ import annotations

import os
from pathlib import Path

from ok_ml_assets.settings import load_settings


def shared_spark(folder: Path):
    """The process's session, started once with the product's settings (event log and scratch under `folder`)."""
    from ok_ml_assets.engines import spark as engine

    saved = {name: os.environ.get(name) for name in ("OK_ML_SPARK_DIR", "OK_ML_SPARK_CONF")}
    os.environ["OK_ML_SPARK_DIR"] = str(folder)
    os.environ["OK_ML_SPARK_CONF"] = "spark.ui.enabled=false spark.sql.shuffle.partitions=2 spark.driver.memory=4g"
    try:
        return engine.session(load_settings())
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
