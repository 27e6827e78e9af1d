"""Experiment configs: the committed ones load, bad ones fail naming the file and the field."""

from __future__ import annotations

import pytest
import yaml

from ok_ml_assets.configs import (
    ConfigError,
    load_experiment_config,
    load_experiment_configs,
    parse_experiment_text,
    with_engine,
)
from ok_ml_assets.settings import PROJECT_ROOT
from tests.conftest import prod_config


def write(tmp_path, config: dict, name: str = "prod_discovery"):
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_committed_configs_load():
    configs = load_experiment_configs(PROJECT_ROOT / "asset_configs")
    assert "prod_discovery" in {c.experiment_name for c in configs}
    prod = next(c for c in configs if c.experiment_name == "prod_discovery")
    assert prod.datasets.interactions.window_days == 10 and prod.datasets.subscriptions.window_days is None


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"model": {"factorz": 3}}, "model.factorz", "Extra inputs are not permitted"),
        ({"model": {"factors": "many"}}, "model.factors", "valid integer"),
        ({"publication": {"rollout_fraction": 1.5}}, "publication.rollout_fraction", "less than or equal to 1"),
        ({"datasets": {"interactions": {"dataset_name": "Bad/Name", "window_days": 3}}},
         "datasets.interactions.dataset_name", "must match"),
        ({"pipeline_type": "nope"}, "pipeline_type", "recommendation_als"),
        ({"evaluation": {"holdout_days": 10}}, "holdout_days", "shorter than"),
    ],
)
def test_bad_field_is_named_with_the_file(tmp_path, changes, field, message):
    path = write(tmp_path, prod_config(**changes))
    with pytest.raises(ConfigError) as error:
        load_experiment_config(path)
    text = str(error.value)
    assert str(path) in text and field in text and message in text


def test_missing_section_is_named(tmp_path):
    config = prod_config()
    del config["promotion"]
    with pytest.raises(ConfigError, match=r"promotion: Field required"):
        load_experiment_config(write(tmp_path, config))


def test_monitoring_of_an_asset_the_pipeline_lacks_is_refused(tmp_path):
    config = prod_config(monitoring={"no_such_asset": [{"rule": "not_null", "column": "x"}]})
    with pytest.raises(ConfigError, match=r"monitoring names \['no_such_asset'\]"):
        load_experiment_config(write(tmp_path, config))


def test_a_daily_rule_on_a_dataset_the_experiment_does_not_read_is_refused(tmp_path):
    config = prod_config(monitoring={"user_source_features": [
        {"rule": "daily_rows_change", "dataset": "clicks", "max_relative_change": 0.1}]})
    with pytest.raises(ConfigError, match=r"monitoring\.user_source_features: daily rules name datasets \['clicks'\]"):
        load_experiment_config(write(tmp_path, config))


def test_a_bad_monitoring_rule_names_its_position(tmp_path):
    config = prod_config()
    config["monitoring"]["recommendations"][1] = {"rule": "list_length", "min": "ten"}
    with pytest.raises(ConfigError, match=r"monitoring\.recommendations\.1"):
        load_experiment_config(write(tmp_path, config))


def test_experiment_name_must_match_file_name(tmp_path):
    with pytest.raises(ConfigError, match="must equal the file name 'other'"):
        load_experiment_config(write(tmp_path, prod_config(), name="other"))


def test_yaml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "broken.yml"
    path.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="broken.yml: not valid YAML"):
        load_experiment_config(path)


def test_a_sample_minimum_must_name_a_recorded_count(tmp_path):
    data = yaml.safe_load((PROJECT_ROOT / "asset_configs" / "prod_discovery.yml").read_text())
    data["promotion"]["min_evaluated"] = {"evaluated_items": 10}
    path = tmp_path / "prod_discovery.yml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"promotion names unknown metrics \['evaluated_items'\]"):
        load_experiment_config(path)


def test_an_engine_the_type_does_not_implement_is_refused_by_name(tmp_path):
    config = yaml.safe_load((PROJECT_ROOT / "asset_configs" / "ok_monitoring_anomaly_detection.yml").read_text())
    path = write(tmp_path, {**config, "engine": "spark"}, "ok_monitoring_anomaly_detection")
    with pytest.raises(ConfigError, match=r"(?s)ok_monitoring_anomaly_detection.yml.*engine.*not implemented.*runs on: local"):
        load_experiment_config(path)


def test_the_engine_override_moves_only_the_types_that_implement_it_and_says_so_in_the_logged_yaml():
    configs = {c.experiment_name: c for c in with_engine(load_experiment_configs(PROJECT_ROOT / "asset_configs"), "spark")}
    assert configs["prod_discovery"].engine == "spark" and configs["ok_monitoring_anomaly_detection"].engine == "local"
    assert parse_experiment_text(configs["prod_discovery"].source_text, "logged").engine == "spark"
    with pytest.raises(ConfigError, match="OK_ML_ENGINE='gpu'"):
        with_engine(list(configs.values()), "gpu")
