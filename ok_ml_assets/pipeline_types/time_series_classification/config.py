"""The sections a `time_series_classification` experiment adds to the shared config, shaped like the talk's config.yml."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from ok_ml_assets.configs import DatasetWindow, ExperimentConfig, Strict

METRICS = ("pr_auc", "event_precision", "event_recall", "event_f1", "detection_delay_points", "false_alerts_per_series_day")


class Datasets(Strict):
    """dataset_download: the registered metric series, by tag (the window's last version) and how many versions back."""

    series: DatasetWindow


class SplitDataset(Strict):
    """split_dataset: train/validation/test shares of the time range, in time order."""

    train_size: float = Field(gt=0, lt=1)
    val_size: float = Field(gt=0, lt=1)
    test_size: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _sizes_add_up(self) -> SplitDataset:
        total = self.train_size + self.val_size + self.test_size
        if abs(total - 1) > 1e-6:
            raise ValueError(f"train_size + val_size + test_size must be 1, not {total:g}")
        return self


class Windows(Strict):
    """build_windows: each series cut into windows of `length` points every `step` points, with seasonal lags."""

    length: int = Field(default=24, ge=4, le=10_000)
    step: int = Field(default=1, ge=1)
    season: int = Field(default=24, ge=2, description="Points per daily season (24 for hourly points).")
    weekly_season: int = Field(default=168, ge=2, description="Points per weekly season.")


class Model(Strict):
    """LightGBM gradient boosting of anomalous windows, early stopping on validation."""

    num_leaves: int = Field(default=31, ge=2, le=4096)
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    n_estimators: int = Field(default=400, ge=1, le=20000)
    early_stopping_rounds: int = Field(default=30, ge=1)
    min_child_samples: int = Field(default=20, ge=1)
    class_weight: Literal["balanced", "none"] = "balanced"
    seed: int = 0


class Evaluation(Strict):
    """evaluate: the alert threshold is chosen on validation for a target precision (model and baseline alike)."""

    target_precision: float = Field(default=0.8, gt=0, le=1)


class Synthetic(Strict):
    """The synthetic service metrics `make run` registers when the dataset has no version yet."""

    series: int = Field(default=300, ge=3)
    seed: int | None = None


class TimeSeriesClassificationConfig(ExperimentConfig):
    """Anomalous windows of many services' metric series, alerting per series."""

    pipeline_type: Literal["time_series_classification"]
    datasets: Datasets
    windows: Windows = Windows()
    split_dataset: SplitDataset
    model: Model = Model()
    evaluation: Evaluation = Evaluation()
    synthetic: Synthetic | None = None

    monitored_assets: ClassVar[tuple[str, ...]] = ("series_windows", "predictions")

    def recorded_metrics(self) -> set[str]:
        """Test-split metrics of the model (and of the robust z-score baseline, prefixed `baseline_`)."""
        return set(METRICS)
