"""Typed model of one experiment YAML in asset_configs/: the only place parameters live."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ok_ml_assets.monitoring.rules import MonitoringRules

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
MONITORED_ASSETS = {"recommendation_als": ("user_source_features", "recommendations")}


class ConfigError(ValueError):
    """An experiment config that cannot be used, naming the file and the field."""


class Strict(BaseModel):
    """Base for config sections: unknown fields are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetWindow(Strict):
    """A registered dataset read over its last `window_days` daily versions, or over all of them when unset."""

    dataset_name: str
    window_days: int | None = Field(default=None, ge=1, le=3660)
    tag: str | None = Field(default=None, description="Pin the window's last version to this tag.")

    @field_validator("dataset_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"dataset name {value!r} must match {NAME_PATTERN.pattern}")
        return value


class Datasets(Strict):
    """The datasets a recommendation experiment consumes."""

    interactions: DatasetWindow
    subscriptions: DatasetWindow


class Features(Strict):
    """How daily events become one implicit-feedback weight per (user, source)."""

    event_weights: dict[Literal["view", "click", "like", "comment"], float]
    half_life_days: float = Field(gt=0)
    min_user_interactions: int = Field(default=1, ge=1)

    @field_validator("event_weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        if not value or any(w < 0 for w in value.values()):
            raise ValueError("event weights must be non-empty and non-negative")
        return value


class Model(Strict):
    """Implicit-feedback ALS parameters."""

    factors: int = Field(ge=2, le=1024)
    regularization: float = Field(ge=0)
    iterations: int = Field(ge=1, le=200)
    alpha: float = Field(gt=0)
    seed: int = 0


class Evaluation(Strict):
    """Time-based holdout: the last days of the window are hidden from the evaluated model."""

    holdout_days: int = Field(ge=1)
    k: int = Field(ge=1)
    online_days: int = Field(default=7, ge=1, description="Days after a publication its online metrics look at.")


class Recommendations(Strict):
    """Per-user top-K lists."""

    top_k: int = Field(ge=1, le=1000)


class Publication(Strict):
    """Where and to whom the recommendations are published."""

    topic: str = Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")
    partitions: int = Field(default=6, ge=1)
    rollout_fraction: float = Field(gt=0, le=1)
    salt: str = Field(min_length=1)
    cron: str = "0 3 * * 1"


class Promotion(Strict):
    """When a trained model may replace the champion."""

    primary_metric: str
    min_metrics: dict[str, float] = {}
    max_regression: float = Field(ge=0, le=1, description="Allowed relative drop of the primary metric vs the champion.")
    min_lift_over_baseline: float = Field(ge=0, description="Relative lift over the popularity baseline a first model needs.")
    require_clean_tree: bool = True


class ExperimentConfig(Strict):
    """One experiment: which pipeline type builds it and every parameter it runs with."""

    pipeline_type: Literal["recommendation_als"]
    experiment_name: str
    description: str = ""
    owner: str = ""
    engine: Literal["local"] = "local"
    datasets: Datasets
    features: Features
    model: Model
    evaluation: Evaluation
    recommendations: Recommendations
    publication: Publication
    promotion: Promotion
    monitoring: MonitoringRules = Field(default_factory=dict)
    _source_text: str = PrivateAttr(default="")

    @property
    def source_text(self) -> str:
        """The exact YAML this config was loaded from (a dump of it when built in code)."""
        return self._source_text or yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    @field_validator("experiment_name")
    @classmethod
    def _experiment_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"experiment name {value!r} must match {NAME_PATTERN.pattern}")
        return value

    @model_validator(mode="after")
    def _holdout_inside_window(self) -> ExperimentConfig:
        if self.datasets.interactions.window_days is None:
            raise ValueError("datasets.interactions.window_days is required: features are computed over a window")
        if self.evaluation.holdout_days >= self.datasets.interactions.window_days:
            raise ValueError(
                f"evaluation.holdout_days ({self.evaluation.holdout_days}) must be shorter than "
                f"datasets.interactions.window_days ({self.datasets.interactions.window_days})"
            )
        if self.evaluation.k > self.recommendations.top_k:
            raise ValueError("evaluation.k must not exceed recommendations.top_k")
        unknown_assets = sorted(set(self.monitoring) - set(MONITORED_ASSETS[self.pipeline_type]))
        if unknown_assets:
            raise ValueError(
                f"monitoring names {unknown_assets}, which {self.pipeline_type} does not produce; "
                f"monitored assets are {list(MONITORED_ASSETS[self.pipeline_type])}"
            )
        k = self.evaluation.k
        known = {f"{m}_at_{k}" for m in ("precision", "recall", "map", "ndcg")}
        unknown = sorted(({self.promotion.primary_metric} | set(self.promotion.min_metrics)) - known)
        if unknown:
            raise ValueError(f"promotion names unknown metrics {unknown}; recorded metrics are {sorted(known)}")
        return self


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {field}: {item['msg']}")
    return "\n".join(lines)


def parse_experiment_config(data: object, source: str) -> ExperimentConfig:
    """Validate an already-parsed YAML document, naming `source` and the field in any error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: invalid experiment config\n{_describe(error)}") from None


def parse_experiment_text(text: str, source: str) -> ExperimentConfig:
    """Parse and validate YAML text, keeping the text as the config's exact source."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    config = parse_experiment_config(data, source)
    config._source_text = text
    return config


def load_experiment_config(path: Path) -> ExperimentConfig:
    """Load and validate one experiment YAML."""
    text = path.read_text()
    config = parse_experiment_text(text, str(path))
    if config.experiment_name != path.stem:
        raise ConfigError(
            f"{path}: experiment_name: {config.experiment_name!r} must equal the file name {path.stem!r}"
        )
    return config


def load_experiment_configs(directory: Path) -> list[ExperimentConfig]:
    """Load every experiment YAML in `directory`, sorted by name; a missing or empty folder is an error."""
    paths = sorted(directory.glob("*.yml"))
    if not paths:
        raise ConfigError(f"{directory}: no experiment configs (*.yml) found; set OK_ML_CONFIGS_DIR to the configs folder")
    return [load_experiment_config(path) for path in paths]
