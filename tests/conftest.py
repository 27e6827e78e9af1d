"""Shared fixtures: an isolated product home, a registry seeded with a tiny world, the real Kafka broker."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml

from ok_ml_assets.pipeline_types.recommendation_als.synthetic import register_world
from ok_ml_assets.registry import DataRegistry, load_catalog
from ok_ml_assets.settings import PROJECT_ROOT, Settings, load_settings
from ok_ml_assets.synthetic import generate_world

CATALOG = PROJECT_ROOT / "data_registry" / "catalog.yml"
PROD_CONFIG = PROJECT_ROOT / "asset_configs" / "prod_discovery.yml"


def prod_config(**changes: dict) -> dict:  
    """The committed prod_discovery config with some sections updated."""
    config = yaml.safe_load(PROD_CONFIG.read_text())
    for section, values in changes.items():
        config[section] = {**config.get(section, {}), **values} if isinstance(values, dict) else values
    return config


@pytest.fixture(scope="session")
def tiny_registry_template(tmp_path_factory) -> Path:
    """A registry repository and remote holding the tiny world, built once and copied per test."""
    root = tmp_path_factory.mktemp("registry-template")
    client = DataRegistry(root / "registry", str(root / "dvc-remote"), load_catalog(CATALOG))
    register_world(client, generate_world("tiny", seed=7))
    return root


@pytest.fixture
def home(tmp_path, monkeypatch, tiny_registry_template) -> Path:
    """An isolated OK_ML_HOME with the tiny world registered and the committed configs, topics made unique."""
    shutil.copytree(tiny_registry_template, tmp_path, dirs_exist_ok=True)
    # The DVC remote is recorded by absolute path; point the copy at its own remote.
    configs = tmp_path / "configs"
    configs.mkdir()
    monkeypatch.setenv("OK_ML_HOME", str(tmp_path))
    monkeypatch.setenv("OK_ML_CONFIGS_DIR", str(configs))
    monkeypatch.setenv("OK_ML_DVC_REMOTE", str(tmp_path / "dvc-remote"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    # mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; forget the previous test's store.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    write_config(tmp_path, relaxed_config())
    return tmp_path


def relaxed_config(**changes: dict) -> dict:
    """prod_config for tests: trees under development are dirty, and the tiny world gives ALS a smaller lead."""
    promotion = {**prod_config()["promotion"], "require_clean_tree": False, "min_lift_over_baseline": 0.05}
    return prod_config(**{"promotion": promotion, **changes})


def write_config(home: Path, config: dict) -> dict:
    """Write an experiment config into the test home, with a topic unique to this test."""
    config = {**config, "publication": {**config["publication"], "topic": f"test.{uuid.uuid4().hex[:12]}"}}
    (home / "configs" / f"{config['experiment_name']}.yml").write_text(yaml.safe_dump(config))
    return config


@pytest.fixture
def settings(home) -> Settings:
    """Settings read from the test environment."""
    return load_settings()


@pytest.fixture
def instance(home) -> dg.DagsterInstance:
    """A throwaway Dagster instance."""
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One Spark session for every Spark test of the process (a session takes seconds to start): the product's settings
    on local[*] in a temporary folder, without the UI, two shuffle partitions for tables of test size."""
    from tests.spark_session import shared_spark

    return shared_spark(tmp_path_factory.mktemp("spark"))
