"""Reusable pipeline types: each turns one experiment config into assets, checks and schedules."""

from collections.abc import Callable

import dagster as dg

from ok_ml_assets.configs import ExperimentConfig
from ok_ml_assets.factories.recommendation_als import build_recommendation_als

PIPELINE_TYPES: dict[str, Callable[[ExperimentConfig], dg.Definitions]] = {
    "recommendation_als": build_recommendation_als,
}


def build_experiment(config: ExperimentConfig) -> dg.Definitions:
    """The Dagster definitions of one experiment, built by its pipeline type."""
    return PIPELINE_TYPES[config.pipeline_type](config)
