"""Pipeline type `time_series_classification`: metric series -> windows -> LightGBM anomaly scores -> alerts per series -> Kafka."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ok_ml_assets.pipeline_types.base import PipelineType, Reproduced
from ok_ml_assets.pipeline_types.time_series_classification.config import TimeSeriesClassificationConfig

if TYPE_CHECKING:
    import dagster as dg
    import pandas as pd

    from ok_ml_assets.lifecycle.publication import Provenance
    from ok_ml_assets.registry import DatasetVersion


class TimeSeriesClassification(PipelineType):
    """Anomaly detection on many services' metric series: a classifier of anomalous windows, alerting per series."""

    name = "time_series_classification"
    published_asset = "published_alerts"

    @property
    def config_model(self) -> type[TimeSeriesClassificationConfig]:
        """The YAML model: the shared sections plus windows, split_dataset, model, evaluation and synthetic."""
        return TimeSeriesClassificationConfig

    def key_column(self, config: TimeSeriesClassificationConfig) -> str:
        """Alerts are keyed by series."""
        return "series_id"

    def build(self, config: TimeSeriesClassificationConfig) -> dg.Definitions:
        """The experiment's assets, checks, jobs, schedules and sensors."""
        from ok_ml_assets.pipeline_types.time_series_classification.builder import build_time_series_classification

        return build_time_series_classification(config)

    def encode_messages(
        self, config: TimeSeriesClassificationConfig, predictions: pd.DataFrame, provenance: Provenance
    ) -> Iterator[tuple[bytes, bytes]]:
        """Per series, the versioned `ok_ml.anomaly` JSON."""
        from ok_ml_assets.pipeline_types.time_series_classification.payload import encode_messages

        return encode_messages(predictions, provenance)

    def fallback(self, config: TimeSeriesClassificationConfig, predictions: pd.DataFrame) -> dict:
        """A series the model did not score raises no alert."""
        return {"score": None, "alert": False, "source": "not scored by this batch"}

    def synthetic_versions(self, config: TimeSeriesClassificationConfig, preset: str, seed: int) -> Iterable[tuple[str, str, pd.DataFrame]]:
        """Synthetic service metrics, one version per day."""
        from ok_ml_assets.pipeline_types.time_series_classification.synthetic import synthetic_versions

        return synthetic_versions(config, preset, seed)

    def reproduce(self, config: TimeSeriesClassificationConfig, inputs: Mapping[str, list[tuple[DatasetVersion, Path]]]) -> Reproduced:
        """The recipe's test metrics and latest alerts from the recorded versions."""
        from ok_ml_assets.pipeline_types.time_series_classification.recipe import VersionFile, run_recipe

        files = [VersionFile(v.tag, path) for v, path in inputs["series"]]
        values = run_recipe(config, {"series": files}, targets=("evaluation_report", "predictions"))
        return Reproduced(values["evaluation_report"].as_metrics(), values["predictions"])

    def prediction_agreement(self, recorded: pd.DataFrame, fresh: pd.DataFrame) -> float:
        """Share of the recorded series with the same alert flag again."""
        joined = recorded.merge(fresh, on="series_id", suffixes=("_recorded", "_fresh"))
        return float((joined["alert_recorded"] == joined["alert_fresh"]).mean()) if len(joined) else 0.0


PIPELINE_TYPE = TimeSeriesClassification()
