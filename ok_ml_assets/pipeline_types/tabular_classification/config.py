"""The sections a `tabular_classification` experiment adds to the shared config, named after the talk's stages."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from ok_ml_assets.configs import DatasetWindow, ExperimentConfig, Strict

BINARY_METRICS = ("roc_auc", "pr_auc", "log_loss", "precision_at_threshold", "recall_at_threshold", "f1_at_threshold",
                  "calibration_error", "positive_rate")
MULTICLASS_METRICS = ("roc_auc", "pr_auc", "log_loss", "macro_f1", "accuracy", "calibration_error")


class Datasets(Strict):
    """dataset_download: the registered labelled dataset, read over a window of versions or pinned to a tag."""

    examples: DatasetWindow


class ConcatDatasets(Strict):
    """concat_datasets: how the downloaded versions become one table."""

    deduplicate_on: list[str] = Field(default_factory=list, description="Keep the newest row per these columns.")


class SplitDataset(Strict):
    """split_dataset: train/validation/test shares, by time (versions in order) or stratified at random."""

    method: Literal["time", "stratified"] = "time"
    train_size: float = Field(gt=0, lt=1)
    val_size: float = Field(gt=0, lt=1)
    test_size: float = Field(gt=0, lt=1)
    seed: int = 0

    @model_validator(mode="after")
    def _sizes_add_up(self) -> SplitDataset:
        total = self.train_size + self.val_size + self.test_size
        if abs(total - 1) > 1e-6:
            raise ValueError(f"train_size + val_size + test_size must be 1, not {total:g}")
        return self


class Column(Strict):
    """A feature column and what to do where it is missing."""

    name: str
    kind: Literal["numeric", "categorical"]
    # numeric: mean, median, zero or keep (the model's own missing branch); categorical: category (its own
    # "missing" level) or keep.
    missing: Literal["mean", "median", "zero", "keep", "category"] = "keep"

    @model_validator(mode="after")
    def _policy_fits_kind(self) -> Column:
        allowed = {"numeric": {"mean", "median", "zero", "keep"}, "categorical": {"category", "keep"}}[self.kind]
        if self.missing not in allowed:
            raise ValueError(f"column {self.name!r}: a {self.kind} column's missing policy is one of {sorted(allowed)}")
        return self


class Features(Strict):
    """prepare_features: the entity id, the label and the declared feature columns."""

    id_column: str
    label_column: str
    columns: list[Column] = Field(min_length=1)


class Model(Strict):
    """LightGBM gradient boosting with early stopping on the validation split."""

    num_leaves: int = Field(default=31, ge=2, le=4096)
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    n_estimators: int = Field(default=500, ge=1, le=20000)
    early_stopping_rounds: int = Field(default=30, ge=1)
    min_child_samples: int = Field(default=20, ge=1)
    feature_fraction: float = Field(default=1.0, gt=0, le=1)
    class_weight: Literal["balanced", "none"] = "balanced"
    seed: int = 0


class Evaluation(Strict):
    """evaluate: the operating threshold (binary) is chosen on validation for a target precision; metrics on test."""

    target_precision: float = Field(default=0.9, gt=0, le=1)
    calibration_bins: int = Field(default=10, ge=2, le=100)


class Synthetic(Strict):
    """The synthetic world `make run` registers for the dataset when it has no version yet."""

    generator: Literal["bot_accounts", "clickbait_posts"]
    seed: int | None = None


class TabularClassificationConfig(ExperimentConfig):
    """A classifier of entities from declared tabular features: binary or multiclass."""

    pipeline_type: Literal["tabular_classification"]
    datasets: Datasets
    concat_datasets: ConcatDatasets = ConcatDatasets()
    split_dataset: SplitDataset
    features: Features
    classes: list[str] = Field(min_length=2, description="Label values; with two, the second is the positive class.")
    model: Model = Model()
    evaluation: Evaluation = Evaluation()
    synthetic: Synthetic | None = None

    monitored_assets: ClassVar[tuple[str, ...]] = ("labelled_examples", "predictions")
    # On Spark: the examples, the split, the preparation's statistics and the scoring; LightGBM trains on the driver.
    engines: ClassVar[tuple[str, ...]] = ("local", "spark")

    @property
    def binary(self) -> bool:
        """Two classes: scores are the positive class's probability, cut at the operating threshold."""
        return len(self.classes) == 2

    def recorded_metrics(self) -> set[str]:
        """Test-split metrics of the model (and of the prior-rate baseline, prefixed `baseline_`)."""
        if self.binary:
            return set(BINARY_METRICS)
        return set(MULTICLASS_METRICS) | {f"recall_{label}" for label in self.classes}

    @model_validator(mode="after")
    def _columns_are_distinct(self) -> TabularClassificationConfig:
        names = [c.name for c in self.features.columns]
        reserved = {self.features.id_column, self.features.label_column}
        if len(set(names)) != len(names) or reserved & set(names):
            raise ValueError("feature columns must be distinct and must not include the id or the label column")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("classes must be distinct")
        return self
