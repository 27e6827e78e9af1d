"""The Spark session's settings (engines.spark.spark_config), read from the environment without starting Spark."""

from __future__ import annotations

import os

import pytest

from ok_ml_assets.engines.spark import spark_config
from ok_ml_assets.settings import load_settings

MACHINE_GIB = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """A clean Spark environment under a temporary home."""
    monkeypatch.setenv("OK_ML_HOME", str(tmp_path))
    for name in ("OK_ML_SPARK_MASTER", "OK_ML_SPARK_CONF", "OK_ML_SPARK_DIR"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_local_driver_gets_half_the_machine_and_at_least_4g(environment):
    memory = spark_config(load_settings())["spark.driver.memory"]
    assert memory == f"{max(4, MACHINE_GIB // 2)}g"


def test_a_cluster_driver_keeps_4g(environment):
    environment.setenv("OK_ML_SPARK_MASTER", "spark://127.0.0.1:7077")
    assert spark_config(load_settings())["spark.driver.memory"] == "4g"


def test_the_environment_overrides_the_driver_memory(environment):
    environment.setenv("OK_ML_SPARK_CONF", "spark.driver.memory=6g spark.sql.shuffle.partitions=4")
    config = spark_config(load_settings())
    assert (config["spark.driver.memory"], config["spark.sql.shuffle.partitions"]) == ("6g", "4")
