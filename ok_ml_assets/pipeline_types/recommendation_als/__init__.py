"""Pipeline type `recommendation_als`: registered events -> windowed features -> ALS -> top-K per user -> Kafka."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ok_ml_assets.pipeline_types.base import PipelineType, Reproduced
from ok_ml_assets.pipeline_types.recommendation_als.config import RecommendationAlsConfig

if TYPE_CHECKING:
    import dagster as dg
    import pandas as pd

    from ok_ml_assets.lifecycle.publication import Provenance
    from ok_ml_assets.registry import DatasetVersion


class RecommendationAls(PipelineType):
    """Implicit-feedback ALS recommending sources a user does not follow yet (groups, music, games...)."""

    name = "recommendation_als"
    published_asset = "published_recommendations"

    @property
    def config_model(self) -> type[RecommendationAlsConfig]:
        """The YAML model: the shared sections plus features, model, evaluation, recommendations and synthetic."""
        return RecommendationAlsConfig

    def key_column(self, config: RecommendationAlsConfig) -> str:
        """Recommendations are keyed by user."""
        return "user_id"

    def build(self, config: RecommendationAlsConfig) -> dg.Definitions:
        """The experiment's assets, checks, jobs, schedules and sensors."""
        from ok_ml_assets.pipeline_types.recommendation_als.builder import build_recommendation_als

        return build_recommendation_als(config)

    def encode_messages(
        self, config: RecommendationAlsConfig, predictions: pd.DataFrame, provenance: Provenance
    ) -> Iterator[tuple[bytes, bytes]]:
        """Per user, the versioned `ok_ml.recommendations` JSON."""
        from ok_ml_assets.pipeline_types.recommendation_als.payload import encode_messages

        return encode_messages(predictions, provenance)

    def fallback(self, config: RecommendationAlsConfig, predictions: pd.DataFrame) -> dict:
        """The sources recommended most often in the batch, for users it has no list for."""
        from ok_ml_assets.pipeline_types.recommendation_als.payload import popular_fallback

        return popular_fallback(predictions, config.recommendations.top_k)

    def synthetic_versions(self, config: RecommendationAlsConfig, preset: str, seed: int) -> Iterable[tuple[str, str, pd.DataFrame]]:
        """A synthetic social network's daily events and follows."""
        from ok_ml_assets.pipeline_types.recommendation_als.synthetic import synthetic_versions

        return synthetic_versions(config, preset, seed)

    def reproduce(self, config: RecommendationAlsConfig, inputs: Mapping[str, list[tuple[DatasetVersion, Path]]]) -> Reproduced:
        """The recipe's holdout metrics and recommendations from the recorded daily versions."""
        import datetime as dt

        from ok_ml_assets.pipeline_types.recommendation_als.recipe import DailyFile, run_recipe

        files = {role: [DailyFile(dt.date.fromisoformat(v.tag), path) for v, path in inputs[role]]
                 for role in ("interactions", "subscriptions")}
        values = run_recipe(config, files, targets=("holdout_report", "recommendations"))
        # On the config's own engine; the comparison reads the lists in the driver.
        return Reproduced(values["holdout_report"].as_metrics(), values["engine"].to_pandas(values["recommendations"]))

    def prediction_agreement(self, recorded: pd.DataFrame, fresh: pd.DataFrame) -> float:
        """Mean share of common sources in the two top-K lists of each user."""
        from ok_ml_assets.pipeline_types.recommendation_als.recipe import list_overlap

        return list_overlap(recorded, fresh)


PIPELINE_TYPE = RecommendationAls()
