"""What the benchmarks read: prod_discovery's config and its registered windows, as `make run` left them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ok_ml_assets.configs import ExperimentConfig, load_experiment_config
from ok_ml_assets.pipelines.recommender import DailyFile
from ok_ml_assets.registry import registry_client
from ok_ml_assets.settings import load_settings


def prod_discovery_inputs() -> tuple[ExperimentConfig, list[DailyFile], list[Path]]:
    """The config, the interaction days of its window and the subscription files it reads."""
    settings = load_settings()
    config = load_experiment_config(settings.configs_dir / "prod_discovery.yml")
    client = registry_client(settings)
    windows = {role: client.window(w.dataset_name, w.window_days, w.tag) for role, w in config.datasets}
    interactions = [DailyFile(dt.date.fromisoformat(v.tag), client.path(v.name, v.tag)) for v in windows["interactions"]]
    return config, interactions, [client.path(v.name, v.tag) for v in windows["subscriptions"]]
