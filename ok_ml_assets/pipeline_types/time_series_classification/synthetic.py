"""Synthetic service metrics: hourly series with daily and weekly seasonality, trend and noise, and labelled anomalies
(level shifts, spikes, slow drifts), one registered version per day; and the faults monitoring is tested against."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pandas as pd

from ok_ml_assets.pipeline_types.time_series_classification.config import TimeSeriesClassificationConfig

START = dt.datetime(2026, 11, 1)
POINTS_PER_DAY = 24
METRICS = ("latency_ms", "error_rate", "requests_per_s")
# Every preset covers the committed config's 21-day window; the world's size is the config's `synthetic.series`.
DAYS = {"tiny": 21, "default": 21, "large": 60}
# Probability that a series has an anomaly starting on a given day.
ANOMALY_RATE = 0.12


def series_profile(n_series: int, seed: int) -> pd.DataFrame:
    """Each series' identity and shape: service, metric, level, seasonal amplitude, trend and noise."""
    rng = np.random.default_rng([seed, 0])
    metric = np.asarray(METRICS)[np.arange(n_series) % len(METRICS)]
    scale = np.select([metric == "latency_ms", metric == "error_rate"], [200.0, 2.0], 1000.0)
    return pd.DataFrame({
        "series_id": np.arange(1, n_series + 1, dtype=np.int64),
        "service": [f"svc-{i // len(METRICS):03d}" for i in range(n_series)],
        "metric": metric,
        "level": scale * rng.uniform(0.5, 1.5, n_series),
        "daily": rng.uniform(0.1, 0.4, n_series),
        "weekly": rng.uniform(0.0, 0.2, n_series),
        "trend": rng.normal(0, 0.002, n_series),
        "noise": rng.uniform(0.03, 0.08, n_series),
    })


def anomaly_effects(rng: np.random.Generator, n_series: int) -> tuple[np.ndarray, np.ndarray]:
    """(multiplicative effect, label) of one day's anomalies per series and hour."""
    effect, label = np.zeros((n_series, POINTS_PER_DAY)), np.zeros((n_series, POINTS_PER_DAY), dtype=np.int64)
    hours = np.arange(POINTS_PER_DAY)
    for s in np.flatnonzero(rng.random(n_series) < ANOMALY_RATE):
        kind, start = rng.integers(3), int(rng.integers(0, POINTS_PER_DAY - 3))
        if kind == 0:    # level shift for a few hours
            inside = (hours >= start) & (hours < start + int(rng.integers(3, 10)))
            effect[s, inside] = rng.choice([-1, 1]) * rng.uniform(0.4, 0.8)
        elif kind == 1:  # spike of one or two hours
            inside = (hours >= start) & (hours < start + int(rng.integers(1, 3)))
            effect[s, inside] = rng.uniform(1.0, 2.5)
        else:            # slow drift, growing to the end of the day
            inside = hours >= start
            effect[s, inside] = np.linspace(0.1, rng.uniform(0.6, 1.0), inside.sum())
        label[s, inside] = 1
    return effect, label


def metrics_day(profile: pd.DataFrame, day: int, seed: int) -> pd.DataFrame:
    """One day's hourly points of every series, with the anomaly label."""
    rng = np.random.default_rng([seed, day + 1])
    n = len(profile)
    t = day * POINTS_PER_DAY + np.arange(POINTS_PER_DAY)
    daily = np.sin(2 * np.pi * (t % 24) / 24)[None, :] * profile["daily"].to_numpy()[:, None]
    weekend = ((START + dt.timedelta(days=day)).weekday() >= 5)
    weekly = -profile["weekly"].to_numpy()[:, None] * weekend
    trend = profile["trend"].to_numpy()[:, None] * t[None, :] / 24
    noise = rng.normal(0, 1, (n, POINTS_PER_DAY)) * profile["noise"].to_numpy()[:, None]
    effect, label = anomaly_effects(rng, n)
    value = profile["level"].to_numpy()[:, None] * np.maximum(1 + daily + weekly + trend + noise + effect, 0.01)
    stamps = pd.Timestamp(START) + pd.to_timedelta(t, unit="h")
    return pd.DataFrame({
        "series_id": np.repeat(profile["series_id"].to_numpy(), POINTS_PER_DAY),
        "service": np.repeat(profile["service"].to_numpy(), POINTS_PER_DAY),
        "metric": np.repeat(profile["metric"].to_numpy(), POINTS_PER_DAY),
        "ts": np.tile(stamps.to_numpy(), n),
        "value": value.ravel(),
        "anomaly": label.ravel(),
    })


def synthetic_days(preset: str, seed: int, n_series: int) -> Iterator[tuple[str, pd.DataFrame]]:
    """(tag, table) of each day of the world."""
    if preset not in DAYS:
        raise ValueError(f"unknown preset {preset!r}; presets are {sorted(DAYS)}")
    profile = series_profile(n_series, seed)
    for day in range(DAYS[preset]):
        yield (START.date() + dt.timedelta(days=day)).isoformat(), metrics_day(profile, day, seed)


def synthetic_versions(config: TimeSeriesClassificationConfig, preset: str, seed: int) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """The world's days under the experiment's dataset name (nothing without a `synthetic` section)."""
    if config.synthetic is None:
        return iter(())
    world_seed = config.synthetic.seed if config.synthetic.seed is not None else seed
    name = config.datasets.series.dataset_name
    return ((name, tag, frame) for tag, frame in synthetic_days(preset, world_seed, config.synthetic.series))


def change_unit(frame: pd.DataFrame, metric: str = "latency_ms", factor: float = 0.001) -> pd.DataFrame:
    """Fault: a metric reported in another unit (milliseconds became seconds)."""
    scaled = frame["value"].where(frame["metric"] != metric, frame["value"] * factor)
    return frame.assign(value=scaled)


def stop_reporting(frame: pd.DataFrame, metric: str = "error_rate") -> pd.DataFrame:
    """Fault: a metric stops reporting (its rows are gone)."""
    return frame[frame["metric"] != metric].reset_index(drop=True)
