"""What the benchmarks read: prod_discovery's config and its registered windows, as `make run` left them."""

from __future__ import annotations

import datetime as dt

from ok_ml_assets.configs import ExperimentConfig, load_experiment_config
from ok_ml_assets.pipeline_types.recommendation_als.recipe import DailyFile
from ok_ml_assets.registry import registry_client
from ok_ml_assets.settings import load_settings


def prod_discovery_inputs() -> tuple[ExperimentConfig, dict[str, list[DailyFile]]]:
    """The config and the recipe's inputs: its registered windows by role, as daily files."""
    settings = load_settings()
    config = load_experiment_config(settings.configs_dir / "prod_discovery.yml")
    client = registry_client(settings)
    windows = {role: client.window(w.dataset_name, w.window_days, w.tag) for role, w in config.dataset_windows().items()}
    return config, {role: [DailyFile(dt.date.fromisoformat(v.tag), client.path(v.name, v.tag)) for v in versions]
                    for role, versions in windows.items()}
