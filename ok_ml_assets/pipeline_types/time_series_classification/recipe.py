"""The recipe of `time_series_classification`, its stages named as in the talk's config.yml.

dataset_download (the tagged versions) -> concat_datasets -> build_windows -> split_dataset (by time) -> train_model
(LightGBM on window features, early stopping on validation) -> evaluate (alert thresholds for a target precision
chosen on validation, for the model and the robust z-score baseline; event-level metrics on test) -> predict (each
series' latest window).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ok_ml_assets import recipes
from ok_ml_assets.pipeline_types.time_series_classification.config import (
    Evaluation,
    Model,
    SplitDataset,
    TimeSeriesClassificationConfig,
    Windows,
)
from ok_ml_assets.pipeline_types.time_series_classification.windows import (
    BASELINE,
    FEATURES,
    KEYS,
    alert_metrics,
    threshold_for_precision,
    window_features,
)
from ok_ml_assets.recipes import Stage, VersionFile, stage_index

SPLIT_COLUMN = "split"
TRAIN, VALIDATION, TEST = "train", "validation", "test"


@dataclass(frozen=True)
class Detector:
    """A trained window classifier and its alert threshold."""

    booster_text: str
    best_iteration: int
    threshold: float

    def scores(self, windows: pd.DataFrame) -> np.ndarray:
        """The anomaly score of each window."""
        import lightgbm as lgb

        matrix = windows[FEATURES].to_numpy(np.float64)
        return lgb.Booster(model_str=self.booster_text).predict(matrix, num_iteration=self.best_iteration)


@dataclass(frozen=True)
class EvaluationReport:
    """Test metrics of the model and of the robust z-score baseline, each at its own threshold."""

    model: dict[str, float]
    baseline: dict[str, float]
    threshold: float
    baseline_threshold: float

    def as_metrics(self) -> dict[str, float]:
        """Flat metric names for tracking: model metrics as is, baseline ones prefixed, plus both thresholds."""
        return {**self.model, **{f"baseline_{k}": v for k, v in self.baseline.items()},
                "threshold": self.threshold, "baseline_threshold": self.baseline_threshold}


def concat_datasets(series: list[VersionFile]) -> pd.DataFrame:
    """metric_series: the tagged versions in one table, ordered by series and time; a duplicated point is an error."""
    if not series:
        raise ValueError("no registered version of the metric series in the window")
    table = pd.concat([pd.read_parquet(f.path) for f in series], ignore_index=True)
    duplicated = table.duplicated(KEYS)
    if duplicated.any():
        first = table[duplicated].iloc[0]
        raise ValueError(f"{int(duplicated.sum())} duplicated (series_id, ts) points across versions, "
                         f"e.g. series {first['series_id']} at {first['ts']}")
    return table.sort_values(KEYS, kind="stable").reset_index(drop=True)


def build_windows(metric_series: pd.DataFrame, windows: Windows) -> pd.DataFrame:
    """series_windows: each series' windows with their features and the label of their last point."""
    return window_features(metric_series, windows)


def split_dataset(series_windows: pd.DataFrame, split: SplitDataset) -> pd.DataFrame:
    """dataset_split: the time range cut in order: the oldest share trains, then validation, the newest tests."""
    times = np.sort(series_windows["ts"].unique())
    train_end = times[max(int(len(times) * split.train_size) - 1, 0)]
    val_end = times[max(int(len(times) * (split.train_size + split.val_size)) - 1, 0)]
    ts = series_windows["ts"].to_numpy()
    parts = np.where(ts <= train_end, TRAIN, np.where(ts <= val_end, VALIDATION, TEST))
    result = series_windows.assign(**{SPLIT_COLUMN: parts})
    for name in (TRAIN, VALIDATION, TEST):
        if not (parts == name).any():
            raise ValueError(f"split_dataset left the {name} split empty ({len(times)} window end times)")
    return result


def part(split_windows: pd.DataFrame, name: str) -> pd.DataFrame:
    """The windows of one split."""
    return split_windows[split_windows[SPLIT_COLUMN] == name]


def balanced_weights(labels: np.ndarray, policy: str) -> np.ndarray:
    """Per-window weights giving both classes the same total weight (anomalies are rare), or none."""
    if policy == "none":
        return np.ones(len(labels))
    counts = np.bincount(labels, minlength=2).astype(np.float64)
    return (len(labels) / (2 * np.maximum(counts, 1)))[labels]


def train_model(split_windows: pd.DataFrame, model: Model) -> Detector:
    """detector: LightGBM on the train windows, early stopping on the validation windows."""
    import lightgbm as lgb

    train, val = part(split_windows, TRAIN), part(split_windows, VALIDATION)
    y_train, y_val = train["anomaly"].to_numpy(np.int64), val["anomaly"].to_numpy(np.int64)
    train_set = lgb.Dataset(train[FEATURES].to_numpy(np.float64), y_train, weight=balanced_weights(y_train, model.class_weight))
    val_set = lgb.Dataset(val[FEATURES].to_numpy(np.float64), y_val, weight=balanced_weights(y_val, model.class_weight),
                          reference=train_set)
    params = {"objective": "binary", "num_leaves": model.num_leaves, "learning_rate": model.learning_rate,
              "min_child_samples": model.min_child_samples, "seed": model.seed, "deterministic": True,
              "force_row_wise": True, "verbosity": -1}
    booster = lgb.train(params, train_set, num_boost_round=model.n_estimators, valid_sets=[val_set],
                        callbacks=[lgb.early_stopping(model.early_stopping_rounds, verbose=False)])
    return Detector(booster.model_to_string(), int(booster.best_iteration or 0), 0.5)


def step_points(split_windows: pd.DataFrame) -> int:
    """Points between consecutive windows of a series (the configured step)."""
    gaps = split_windows.groupby("series_id")["ts"].diff().dropna()
    hour = pd.Timedelta(hours=1)
    return max(int(round(gaps.median() / hour)), 1) if len(gaps) else 1


def evaluate(detector: Detector, split_windows: pd.DataFrame, evaluation: Evaluation) -> EvaluationReport:
    """evaluation: thresholds for the target precision on validation, then event-level metrics on test, model and baseline."""
    val, test = part(split_windows, VALIDATION), part(split_windows, TEST)
    step = step_points(split_windows)
    threshold = threshold_for_precision(val, detector.scores(val), evaluation.target_precision, step)
    baseline_threshold = threshold_for_precision(val, val[BASELINE].to_numpy(), evaluation.target_precision, step)
    return EvaluationReport(
        model=alert_metrics(test, detector.scores(test), threshold, step),
        baseline=alert_metrics(test, test[BASELINE].to_numpy(), baseline_threshold, step),
        threshold=threshold, baseline_threshold=baseline_threshold,
    )


def with_threshold(detector: Detector, report: EvaluationReport) -> Detector:
    """detector_at_threshold: the detector carrying the alert threshold chosen in evaluation."""
    return Detector(detector.booster_text, detector.best_iteration, report.threshold)


def predict(detector: Detector, series_windows: pd.DataFrame) -> pd.DataFrame:
    """predictions: each series' window ending at the newest timestamp, with its anomaly score, alert flag and baseline.

    A series that stopped reporting has no such window and is left out rather than served a stale alert.
    """
    newest = series_windows["ts"].max()
    latest = series_windows[series_windows["ts"] == newest].sort_values("series_id").reset_index(drop=True)
    return latest_predictions(detector, latest)


def latest_predictions(detector: Detector, latest: pd.DataFrame) -> pd.DataFrame:
    """The prediction table of given windows (one per series)."""
    score = detector.scores(latest)
    return pd.DataFrame({
        "series_id": latest["series_id"].to_numpy(),
        "service": latest["service"].to_numpy(),
        "metric": latest["metric"].to_numpy(),
        "window_end": latest["ts"].to_numpy(),
        "score": score.astype(np.float64),
        "alert": (score >= detector.threshold).astype(np.int64),
        "baseline_score": latest[BASELINE].to_numpy(np.float64),
        "level_ratio": latest["level_ratio"].to_numpy(np.float64),
    })


STAGES: tuple[Stage, ...] = (
    Stage("metric_series", concat_datasets, ("series",)),
    Stage("series_windows", build_windows, ("metric_series",), ("windows",)),
    Stage("dataset_split", split_dataset, ("series_windows",), ("split_dataset",)),
    Stage("detector", train_model, ("dataset_split",), ("model",)),
    Stage("evaluation_report", evaluate, ("detector", "dataset_split"), ("evaluation",)),
    Stage("detector_at_threshold", with_threshold, ("detector", "evaluation_report")),
    Stage("predictions", predict, ("detector_at_threshold", "series_windows")),
)


def run_recipe(
    config: TimeSeriesClassificationConfig, values: Mapping[str, object], targets: Iterable[str] = ("predictions",)
) -> dict[str, object]:
    """Compute `targets` (the predictions by default) from the given values with this type's stages."""
    return recipes.run_recipe(STAGES, config, values, targets)


STAGE = stage_index(STAGES)
