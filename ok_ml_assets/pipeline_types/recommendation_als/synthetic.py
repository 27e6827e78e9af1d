"""The synthetic social network `make run` registers for a recommendation experiment's two datasets."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from ok_ml_assets.pipeline_types.recommendation_als.config import RecommendationAlsConfig
from ok_ml_assets.registry import DataRegistry, DatasetVersion
from ok_ml_assets.synthetic import SyntheticWorld, generate_world


def synthetic_versions(config: RecommendationAlsConfig, preset: str, seed: int) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """Each day's events and new follows, under the dataset names the config reads."""
    world = generate_world(preset, seed=config.synthetic.seed if config.synthetic.seed is not None else seed)
    return world_versions(world, config.datasets.interactions.dataset_name, config.datasets.subscriptions.dataset_name)


def world_versions(
    world: SyntheticWorld, interactions: str = "interactions", subscriptions: str = "subscriptions"
) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """Every day of a given synthetic world under the two dataset names."""
    for day in world.days():
        yield interactions, day.tag, day.interactions
        yield subscriptions, day.tag, day.subscriptions


def register_world(client: DataRegistry, world: SyntheticWorld) -> list[DatasetVersion]:
    """Register every day of a synthetic world not registered yet as `interactions` and `subscriptions`, in one commit."""
    from ok_ml_assets.orchestration import register_versions

    return register_versions(client, world_versions(world), f"synthetic:{world.seed}")
