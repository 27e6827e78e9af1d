"""What the shared lifecycle asks of a pipeline type: the one interface every type package implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import dagster as dg
    import pandas as pd

    from ok_ml_assets.configs import ExperimentConfig
    from ok_ml_assets.lifecycle.publication import Provenance
    from ok_ml_assets.registry import DatasetVersion


@dataclass(frozen=True)
class Reproduced:
    """A retraining from recorded inputs: its metrics and its predictions."""

    metrics: dict[str, float]
    predictions: pd.DataFrame


class PipelineType(ABC):
    """A kind of model: its config, its Dagster graph, its payload, its synthetic data and its reproduction."""

    name: ClassVar[str]
    # The asset that publishes to Kafka (beside `trained_model` and `model_promotion`, which every type has).
    published_asset: ClassVar[str]

    @property
    @abstractmethod
    def config_model(self) -> type[ExperimentConfig]:
        """The pydantic model of this type's experiment YAML (a subclass of ExperimentConfig)."""

    @abstractmethod
    def key_column(self, config: ExperimentConfig) -> str:
        """The entity id column of an experiment's predictions: the Kafka key and the key of the online store."""

    @abstractmethod
    def build(self, config: ExperimentConfig) -> dg.Definitions:
        """Every asset, check, job, schedule and sensor of one experiment.

        It includes the job `lifecycle.assets.refresh_job_name(experiment)`, which the registry sensor starts
        when a dataset the experiment reads gets a new version.
        """

    @abstractmethod
    def encode_messages(
        self, config: ExperimentConfig, predictions: pd.DataFrame, provenance: Provenance
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of each published prediction: the type's versioned payload, as the config shapes it."""

    @abstractmethod
    def fallback(self, config: ExperimentConfig, predictions: pd.DataFrame) -> dict:
        """What serving answers for a key with no published value (unknown entity, control arm), published with the batch."""

    @abstractmethod
    def synthetic_versions(self, config: ExperimentConfig, preset: str, seed: int) -> Iterable[tuple[str, str, pd.DataFrame]]:
        """(dataset name, tag, table) of a synthetic world for the experiment's datasets, for `make run`."""

    @abstractmethod
    def reproduce(self, config: ExperimentConfig, inputs: Mapping[str, list[tuple[DatasetVersion, Path]]]) -> Reproduced:
        """Retrain from the recorded dataset versions (by role, oldest first) with the recipe."""

    @abstractmethod
    def prediction_agreement(self, recorded: pd.DataFrame, fresh: pd.DataFrame) -> float:
        """How far two prediction tables agree, in [0, 1]."""
