"""Windows of each metric series with their features, and event-level scoring of alerts against labelled anomalies."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ok_ml_assets.pipeline_types.time_series_classification.config import Windows

KEYS = ["series_id", "ts"]
FEATURES = ["value", "mean", "std", "last_z", "robust_z", "season_dev", "week_dev", "rate", "level_ratio", "hour", "weekday"]
BASELINE = "robust_z"


def window_features(points: pd.DataFrame, windows: Windows) -> pd.DataFrame:
    """Per series and window end: rolling statistics, robust z-score, seasonal deviations, rate of change, time of day/week."""
    points = points.sort_values(KEYS, kind="stable").reset_index(drop=True)
    by = points.groupby("series_id", sort=False)["value"]
    rolling = by.rolling(windows.length, min_periods=windows.length)
    mean, std = rolling.mean().to_numpy(), rolling.std().to_numpy()
    median = rolling.median().to_numpy()
    spread = (rolling.quantile(0.75).to_numpy() - rolling.quantile(0.25).to_numpy()) / 1.349
    value = points["value"].to_numpy()
    scale = np.where(std > 0, std, np.nan)
    features = points[["series_id", "service", "metric", "ts", "anomaly"]].assign(
        value=value, mean=mean, std=std,
        last_z=(value - mean) / scale,
        robust_z=np.abs(value - median) / np.where(spread > 0, spread, np.nan),
        season_dev=(value - by.shift(windows.season).to_numpy()) / scale,
        week_dev=(value - by.shift(windows.weekly_season).to_numpy()) / scale,
        rate=(value - by.shift(1).to_numpy()) / scale,
        level_ratio=mean / by.transform("median").to_numpy(),
        hour=points["ts"].dt.hour.to_numpy(),
        weekday=points["ts"].dt.weekday.to_numpy(),
    )
    position = points.groupby("series_id", sort=False).cumcount().to_numpy()
    keep = (position >= windows.length - 1) & ((position - (windows.length - 1)) % windows.step == 0)
    return features[keep].reset_index(drop=True)


CANDIDATE_QUANTILES = np.linspace(0.5, 0.9995, 80)


def threshold_for_precision(windows: pd.DataFrame, scores: np.ndarray, target: float, step_points: int) -> float:
    """The lowest alert threshold whose event-level precision reaches `target` (most recall); else the most precise.

    Event level, because an on-call engineer sees alert episodes, not windows: a run of alerting windows is one alert.
    """
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return float("inf")
    best, best_precision = float(finite.max()), -1.0
    for threshold in np.unique(np.quantile(finite, CANDIDATE_QUANTILES)):
        precision = event_metrics(windows, np.nan_to_num(scores, nan=-np.inf) >= threshold, step_points)["event_precision"]
        if precision >= target:
            return float(threshold)
        if precision > best_precision:
            best, best_precision = float(threshold), precision
    return best


def runs(series: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """A run id per row: consecutive rows of one series with the same flag share it."""
    starts = np.ones(len(flags), dtype=bool)
    starts[1:] = (series[1:] != series[:-1]) | (flags[1:] != flags[:-1])
    return np.cumsum(starts)


def event_metrics(windows: pd.DataFrame, alerts: np.ndarray, step_points: int) -> dict[str, float]:
    """Event-level precision and recall, detection delay (points) and false alerts per series per day.

    An anomaly interval is a run of labelled windows; it is caught if any window inside it alerts. An alert episode
    is a run of alerting windows; it is false if it touches no labelled window.
    """
    frame = windows[["series_id", "ts", "anomaly"]].assign(alert=alerts.astype(bool)).sort_values(KEYS, kind="stable")
    series, labels, alert = frame["series_id"].to_numpy(), frame["anomaly"].to_numpy() == 1, frame["alert"].to_numpy()
    event_run, alert_run = runs(series, labels), runs(series, alert)
    events = pd.DataFrame({"run": event_run[labels], "alert": alert[labels]})
    events["offset"] = events.groupby("run").cumcount()
    caught = events.groupby("run")["alert"].any()
    delays = events[events["alert"]].groupby("run")["offset"].min()
    episodes = pd.DataFrame({"run": alert_run[alert], "labelled": labels[alert]}).groupby("run")["labelled"].any()
    precision = float(episodes.mean()) if len(episodes) else 0.0
    recall = float(caught.mean()) if len(caught) else 0.0
    days = max((frame["ts"].max() - frame["ts"].min()) / pd.Timedelta(days=1), 1 / 24)
    return {
        "event_precision": precision,
        "event_recall": recall,
        "event_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "detection_delay_points": float(delays.mean() * step_points) if len(delays) else float("nan"),
        "false_alerts_per_series_day": float((~episodes).sum() / (frame["series_id"].nunique() * days)),
        "events": float(len(caught)),
    }


def alert_metrics(windows: pd.DataFrame, scores: np.ndarray, threshold: float, step_points: int) -> dict[str, float]:
    """Window-level PR-AUC and the event-level metrics of alerting at `threshold`."""
    from sklearn.metrics import average_precision_score  # here: at module level it cost the code location about a second

    labels = windows["anomaly"].to_numpy()
    usable = np.isfinite(scores)
    has_both = labels[usable].min(initial=0) != labels[usable].max(initial=0)
    pr_auc = float(average_precision_score(labels[usable], scores[usable])) if has_both else 0.0
    return {"pr_auc": pr_auc, **event_metrics(windows, np.nan_to_num(scores, nan=-np.inf) >= threshold, step_points)}
