"""The shared part of every experiment YAML in asset_configs/, and loading by pipeline type.

An experiment config is a discriminated union on `pipeline_type`: the shared sections below are validated
once here, and each pipeline type's package adds its own sections in a subclass of `ExperimentConfig`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, Literal

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

from ok_ml_assets.monitoring.rules import MonitoringRules, daily_datasets

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class ConfigError(ValueError):
    """An experiment config that cannot be used, naming the file and the field."""


class Strict(BaseModel):
    """Base for config sections: unknown fields are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DatasetWindow(Strict):
    """A registered dataset read over the last `window_days` calendar days up to its newest (or pinned) version, or whole."""

    dataset_name: str
    window_days: int | None = Field(
        default=None, ge=1, le=3660,
        description="Calendar days ending at the window's last version (days without a registered version count too); "
                    "a dataset not partitioned daily counts versions.",
    )
    tag: str | None = Field(default=None, description="Pin the window's last version to this tag.")

    @field_validator("dataset_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"dataset name {value!r} must match {NAME_PATTERN.pattern}")
        return value


class Publication(Strict):
    """Where and to whom an experiment's predictions are published."""

    topic: str = Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")
    partitions: int = Field(default=6, ge=1)
    rollout_fraction: float = Field(gt=0, le=1)
    salt: str = Field(min_length=1)
    cron: str = "0 3 * * 1"

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(value):
            raise ValueError(f"{value!r} is not a cron schedule (five fields, e.g. '0 3 * * 1')")
        return value


class Promotion(Strict):
    """When a trained model may replace the champion."""

    primary_metric: str
    min_metrics: dict[str, float] = {}
    min_evaluated: dict[str, int] = Field(
        default={}, description="Sample sizes (a recorded count metric, e.g. evaluated_users) below which the gate refuses to decide."
    )
    max_regression: float = Field(ge=0, le=1, description="Allowed relative drop of the primary metric vs the champion.")
    min_lift_over_baseline: float = Field(ge=0, description="Relative lift over the baseline a first model needs.")
    baseline: str = Field(default="best", pattern=r"^[a-z][a-z0-9_]*$",
                          description="The baseline a first model must beat: `best` of those recorded, or one by name.")
    require_clean_tree: bool = True


class ExperimentConfig(Strict):
    """What every experiment has, whatever its type: identity, datasets, promotion, publication and monitoring."""

    # Each type narrows these: its own `Literal` name, its dataset roles, the assets it monitors.
    pipeline_type: str
    experiment_name: str
    description: str = ""
    owner: str = ""
    engine: Literal["local", "spark"] = Field(
        default="local", description="Where the heavy stages run: this machine (local) or Spark (spark, OK_ML_SPARK_MASTER).")
    datasets: Strict
    publication: Publication
    promotion: Promotion
    monitoring: MonitoringRules = Field(default_factory=dict)
    _source_text: str = PrivateAttr(default="")

    monitored_assets: ClassVar[tuple[str, ...]] = ()
    # The engines this type's recipe implements; a type adds `spark` once its heavy stages run there.
    engines: ClassVar[tuple[str, ...]] = ("local",)

    @property
    def source_text(self) -> str:
        """The exact YAML this config was loaded from (a dump of it when built in code)."""
        return self._source_text or yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def dataset_windows(self) -> dict[str, DatasetWindow]:
        """Every dataset the experiment reads, by its role (e.g. interactions)."""
        return dict(self.datasets)

    def recorded_metrics(self) -> set[str]:
        """The metric names a training of this experiment records, which promotion may name."""
        return set()

    @field_validator("engine")
    @classmethod
    def _engine_implemented(cls, value: str) -> str:
        if value not in cls.engines:
            raise ValueError(f"engine {value!r} is not implemented by this pipeline type (it runs on: {', '.join(cls.engines)})")
        return value

    @field_validator("experiment_name")
    @classmethod
    def _experiment_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"experiment name {value!r} must match {NAME_PATTERN.pattern}")
        return value

    @model_validator(mode="after")
    def _names_exist(self) -> ExperimentConfig:
        unknown_assets = sorted(set(self.monitoring) - set(self.monitored_assets))
        if unknown_assets:
            raise ValueError(
                f"monitoring names {unknown_assets}, which {self.pipeline_type} does not produce; "
                f"monitored assets are {list(self.monitored_assets)}"
            )
        for asset, rules in self.monitoring.items():
            unknown_roles = sorted(daily_datasets(rules) - set(self.dataset_windows()))
            if unknown_roles:
                raise ValueError(
                    f"monitoring.{asset}: daily rules name datasets {unknown_roles}, which the experiment does not read; "
                    f"its datasets are {sorted(self.dataset_windows())}"
                )
        known = self.recorded_metrics()
        named = {self.promotion.primary_metric} | set(self.promotion.min_metrics) | set(self.promotion.min_evaluated)
        if self.promotion.baseline != "best":
            named.add(f"{self.promotion.baseline}_{self.promotion.primary_metric}")
        unknown = sorted(named - known)
        if unknown:
            raise ValueError(f"promotion names unknown metrics {unknown}; recorded metrics are {sorted(known)}")
        return self


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {field}: {item['msg']}")
    return "\n".join(lines)


def config_model(data: dict, source: str) -> type[ExperimentConfig]:
    """The config class of the pipeline type a YAML document names (the union's discriminator)."""
    from ok_ml_assets.pipeline_types import UnknownPipelineType, pipeline_type

    try:
        return pipeline_type(data.get("pipeline_type")).config_model
    except UnknownPipelineType as error:
        raise ConfigError(f"{source}: invalid experiment config\n  pipeline_type: {error}") from None


def parse_experiment_config(data: object, source: str) -> ExperimentConfig:
    """Validate an already-parsed YAML document, naming `source` and the field in any error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    model = config_model(data, source)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: invalid experiment config\n{_describe(error)}") from None


class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML's safe loader, refusing a mapping that names a key twice (YAML would keep the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def parse_experiment_text(text: str, source: str) -> ExperimentConfig:
    """Parse and validate YAML text, keeping the text as the config's exact source."""
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    config = parse_experiment_config(data, source)
    config._source_text = text
    return config


def load_experiment_config(path: Path) -> ExperimentConfig:
    """Load and validate one experiment YAML."""
    if not path.is_file():
        raise ConfigError(f"{path}: not a file (an experiment config is a YAML file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None
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
    configs = [load_experiment_config(path) for path in paths]
    require_distinct_topics(configs, directory)
    return configs


def with_engine(configs: list[ExperimentConfig], engine: str | None) -> list[ExperimentConfig]:
    """The configs with `engine` (OK_ML_ENGINE, `make run ENGINE=...`) for every experiment whose type implements it."""
    if engine is None:
        return configs
    if engine not in ("local", "spark"):
        raise ConfigError(f"OK_ML_ENGINE={engine!r}: the engines are local and spark")
    return [on_engine(config, engine) if engine in config.engines else config for config in configs]


def on_engine(config: ExperimentConfig, engine: str) -> ExperimentConfig:
    """The config on `engine`, its YAML text saying so too (it is logged with each training, and reproduction reads it)."""
    moved = config.model_copy(update={"engine": engine})
    line = f"engine: {engine}  # set by OK_ML_ENGINE"
    text = config.source_text
    said = re.search(r"^engine:", text, re.M)
    moved._source_text = re.sub(r"^engine:.*$", line, text, count=1, flags=re.M) if said else f"{line}\n{text}"
    return moved


def require_distinct_topics(configs: list[ExperimentConfig], directory: Path) -> None:
    """Refuse two experiments publishing to one topic: their values would overwrite each other's keys."""
    by_topic: dict[str, list[str]] = {}
    for config in configs:
        by_topic.setdefault(config.publication.topic, []).append(config.experiment_name)
    shared = {topic: names for topic, names in by_topic.items() if len(names) > 1}
    if shared:
        topic, names = next(iter(shared.items()))
        raise ConfigError(f"{directory}: publication.topic: {', '.join(f'{n}.yml' for n in names)} all publish to {topic!r}; "
                          "each experiment needs its own topic")


def require_cataloged_datasets(configs: list[ExperimentConfig], catalog_datasets: set[str], catalog_path: Path) -> None:
    """Refuse an experiment reading a dataset the data registry's catalog does not declare."""
    for config in configs:
        for role, window in config.dataset_windows().items():
            if window.dataset_name not in catalog_datasets:
                raise ConfigError(f"{config.experiment_name}.yml: datasets.{role}.dataset_name: {window.dataset_name!r} is not in "
                                  f"the catalog {catalog_path} (datasets there: {', '.join(sorted(catalog_datasets))})")
