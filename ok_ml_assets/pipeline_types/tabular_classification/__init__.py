"""Pipeline type `tabular_classification`: labelled registered data -> features -> LightGBM -> scores per entity -> Kafka."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ok_ml_assets.pipeline_types.base import PipelineType, Reproduced
from ok_ml_assets.pipeline_types.tabular_classification.config import TabularClassificationConfig

if TYPE_CHECKING:
    import dagster as dg
    import pandas as pd

    from ok_ml_assets.lifecycle.publication import Provenance
    from ok_ml_assets.registry import DatasetVersion


class TabularClassification(PipelineType):
    """Binary or multiclass classifiers of entities (accounts, posts) from declared tabular features."""

    name = "tabular_classification"
    published_asset = "published_predictions"

    @property
    def config_model(self) -> type[TabularClassificationConfig]:
        """The YAML model: the shared sections plus the talk's stages (concat_datasets, split_dataset, ...)."""
        return TabularClassificationConfig

    def key_column(self, config: TabularClassificationConfig) -> str:
        """Scores are keyed by the YAML's entity id column (account_id, post_id...)."""
        return config.features.id_column

    def build(self, config: TabularClassificationConfig) -> dg.Definitions:
        """The experiment's assets, checks, jobs, schedules and sensors."""
        from ok_ml_assets.pipeline_types.tabular_classification.builder import build_tabular_classification

        return build_tabular_classification(config)

    def encode_messages(
        self, config: TabularClassificationConfig, predictions: pd.DataFrame, provenance: Provenance
    ) -> Iterator[tuple[bytes, bytes]]:
        """Per entity, the versioned `ok_ml.classification` JSON."""
        from ok_ml_assets.pipeline_types.tabular_classification.payload import encode_messages

        return encode_messages(predictions, config.features.id_column, config.classes, provenance)

    def fallback(self, config: TabularClassificationConfig, predictions: pd.DataFrame) -> dict:
        """An entity the model did not score is not flagged."""
        return {"label": None, "score": None, "flagged": False, "source": "not scored by this batch"}

    def synthetic_versions(self, config: TabularClassificationConfig, preset: str, seed: int) -> Iterable[tuple[str, str, pd.DataFrame]]:
        """The configured generator's daily labelled exports."""
        from ok_ml_assets.pipeline_types.tabular_classification.synthetic import synthetic_versions

        return synthetic_versions(config, preset, seed)

    def reproduce(self, config: TabularClassificationConfig, inputs: Mapping[str, list[tuple[DatasetVersion, Path]]]) -> Reproduced:
        """The recipe's test metrics and predictions from the recorded versions."""
        from ok_ml_assets.pipeline_types.tabular_classification.recipe import VersionFile, run_recipe

        files = [VersionFile(v.tag, path) for v, path in inputs["examples"]]
        values = run_recipe(config, {"examples": files}, targets=("evaluation_report", "predictions"))
        return Reproduced(values["evaluation_report"].as_metrics(), values["engine"].to_pandas(values["predictions"]))

    def prediction_agreement(self, recorded: pd.DataFrame, fresh: pd.DataFrame) -> float:
        """Share of the recorded entities given the same label again."""
        id_column = recorded.columns[0]  # prediction tables lead with the entity id
        joined = recorded.merge(fresh, on=id_column, suffixes=("_recorded", "_fresh"))
        if joined.empty:
            return 0.0
        return float((joined["label_recorded"] == joined["label_fresh"]).mean())


PIPELINE_TYPE = TabularClassification()
