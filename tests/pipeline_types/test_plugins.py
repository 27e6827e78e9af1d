"""Pipeline types are plug-ins: a package per type, found by name, and no shared module names one."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

import ok_ml_assets.pipeline_types as pipeline_types
from ok_ml_assets.configs import ConfigError, load_experiment_configs
from ok_ml_assets.definitions import build_definitions
from ok_ml_assets.settings import PROJECT_ROOT, load_settings

PACKAGE = PROJECT_ROOT / "ok_ml_assets"

# A whole pipeline type in one package: its config sections and a one-asset graph. Nothing shared changes.
TOY_TYPE = '''
from typing import ClassVar, Literal

import dagster as dg

from ok_ml_assets.configs import DatasetWindow, ExperimentConfig, Strict
from ok_ml_assets.lifecycle.assets import refresh_job_name
from ok_ml_assets.pipeline_types.base import PipelineType


class Datasets(Strict):
    events: DatasetWindow


class Params(Strict):
    threshold: float


class ToyConfig(ExperimentConfig):
    pipeline_type: Literal["toy_threshold"]
    datasets: Datasets
    params: Params
    monitored_assets: ClassVar[tuple[str, ...]] = ("flags",)

    def recorded_metrics(self):
        return {"accuracy"}


class ToyThreshold(PipelineType):
    name = "toy_threshold"
    published_asset = "flags"
    config_model = ToyConfig

    def key_column(self, config):
        return "entity_id"

    def build(self, config):
        @dg.asset(key=[config.experiment_name, "flags"], group_name=config.experiment_name)
        def flags() -> float:
            """Entities above the threshold."""
            return config.params.threshold

        # The registry sensor starts `<experiment>_refresh` when the experiment's datasets get new versions.
        refresh = dg.define_asset_job(refresh_job_name(config.experiment_name), selection=[flags])
        return dg.Definitions(assets=[flags], jobs=[refresh])

    def encode_messages(self, config, predictions, provenance):
        return iter(())

    def fallback(self, config, predictions):
        return {"flagged": False}

    def synthetic_versions(self, config, preset, seed):
        return []

    def reproduce(self, config, inputs):
        raise NotImplementedError

    def prediction_agreement(self, recorded, fresh):
        return 1.0


PIPELINE_TYPE = ToyThreshold()
'''


@pytest.fixture
def toy_type(tmp_path, monkeypatch) -> Path:
    """A pipeline type package dropped next to the real ones, as a team would add one."""
    folder = tmp_path / "plugins"
    (folder / "toy_threshold").mkdir(parents=True)
    (folder / "toy_threshold" / "__init__.py").write_text(TOY_TYPE)
    monkeypatch.setattr(pipeline_types, "__path__", [*pipeline_types.__path__, str(folder)])
    pipeline_types.known_types.cache_clear()
    pipeline_types.import_type.cache_clear()
    yield folder
    pipeline_types.known_types.cache_clear()
    pipeline_types.import_type.cache_clear()


def toy_config(name: str = "toy_flags") -> dict:
    """A toy experiment YAML: the shared sections plus the toy type's own."""
    return {
        "pipeline_type": "toy_threshold", "experiment_name": name,
        "datasets": {"events": {"dataset_name": "interactions", "window_days": 3}},
        "params": {"threshold": 0.5},
        "publication": {"topic": "toy.flags", "rollout_fraction": 1.0, "salt": "toy"},
        "promotion": {"primary_metric": "accuracy", "max_regression": 0.1, "min_lift_over_baseline": 0.0},
        "monitoring": {"flags": [{"rule": "not_null", "column": "entity_id"}]},
    }


def test_every_package_is_a_type_named_after_itself():
    assert "recommendation_als" in pipeline_types.known_types()
    for name in pipeline_types.known_types():
        assert pipeline_types.pipeline_type(name).name == name


def test_shared_modules_never_name_a_pipeline_type():
    types = pipeline_types.known_types()
    shared = [p for p in PACKAGE.rglob("*.py") if not any(part in types for part in p.relative_to(PACKAGE).parts)]
    offenders = [f"{p.relative_to(PROJECT_ROOT)}: {t}" for p in shared for t in types if t in p.read_text()]
    assert not offenders


def test_a_new_type_is_one_package_and_its_experiments_load_beside_the_others(toy_type, tmp_path, monkeypatch):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "toy_flags.yml").write_text(yaml.safe_dump(toy_config()))
    (configs / "prod_discovery.yml").write_text((PROJECT_ROOT / "asset_configs" / "prod_discovery.yml").read_text())
    monkeypatch.setenv("OK_ML_CONFIGS_DIR", str(configs))
    assert {c.pipeline_type for c in load_experiment_configs(configs)} == {"toy_threshold", "recommendation_als"}
    keys = build_definitions(load_settings()).resolve_asset_graph().get_all_asset_keys()
    assert dg.AssetKey(["toy_flags", "flags"]) in keys and dg.AssetKey(["prod_discovery", "recommendations"]) in keys


def test_a_type_validates_its_own_sections_and_the_shared_ones(toy_type, tmp_path):
    bad = toy_config()
    bad["params"] = {"threshhold": 0.5}
    bad["monitoring"] = {"recommendations": []}
    path = tmp_path / "toy_flags.yml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError) as error:
        load_experiment_configs(tmp_path)
    assert str(path) in str(error.value) and "params.threshhold" in str(error.value)


@pytest.mark.parametrize("name", ["gradient_magic", ["a", "list"], None])
def test_an_unknown_type_names_the_file_and_the_known_types(tmp_path, name):
    path = tmp_path / "nope.yml"
    path.write_text(yaml.safe_dump({"pipeline_type": name, "experiment_name": "nope"}))
    with pytest.raises(ConfigError) as error:
        load_experiment_configs(tmp_path)
    text = str(error.value)
    assert str(path) in text and f"pipeline_type: unknown pipeline type {name!r}" in text and "recommendation_als" in text
