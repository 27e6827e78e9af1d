"""time_series_classification's stages on tiny generated metrics: windows, split, events, training, payload, pyfunc."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ok_ml_assets.configs import parse_experiment_config
from ok_ml_assets.lifecycle.publication import Provenance
from ok_ml_assets.pipeline_types.time_series_classification import recipe
from ok_ml_assets.pipeline_types.time_series_classification.config import Windows
from ok_ml_assets.pipeline_types.time_series_classification.payload import encode_messages
from ok_ml_assets.pipeline_types.time_series_classification.synthetic import change_unit, stop_reporting, synthetic_days
from ok_ml_assets.pipeline_types.time_series_classification.windows import event_metrics, window_features
from ok_ml_assets.settings import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "asset_configs" / "ok_monitoring_anomaly_detection.yml"
SERIES = 45


def tiny_config() -> dict:
    """The committed config on the tiny world: 45 series, 14 days up to 2026-11-14."""
    data = yaml.safe_load(CONFIG.read_text())
    data["datasets"]["series"] = {**data["datasets"]["series"], "window_days": 14, "tag": "2026-11-14"}
    data["synthetic"] = {"series": SERIES, "seed": 21}
    return data


def version_files(folder: Path, fault=None, days: int = 14) -> list[recipe.VersionFile]:
    """The tiny world's days as version files, the newest one optionally faulted."""
    files = []
    generated = list(synthetic_days("tiny", 21, SERIES))[:days]
    for i, (tag, frame) in enumerate(generated):
        path = folder / f"{tag}.parquet"
        (fault(frame) if fault and i == len(generated) - 1 else frame).to_parquet(path, index=False)
        files.append(recipe.VersionFile(tag, path))
    return files


@pytest.fixture(scope="module")
def detection(tmp_path_factory) -> dict:
    """The recipe run to its predictions on the tiny world."""
    config = parse_experiment_config(tiny_config(), "tiny")
    files = version_files(tmp_path_factory.mktemp("series"))
    return {"config": config, **recipe.run_recipe(config, {"series": files}, targets=["predictions", "evaluation_report"])}


def test_synthetic_versions_keep_their_contract():
    for tag, frame in list(synthetic_days("tiny", 3, 12))[:3]:
        assert not frame.duplicated(["series_id", "ts"]).any()
        assert (frame["ts"].dt.date.astype(str) == tag).all()
        assert frame["anomaly"].isin([0, 1]).all() and (frame["value"] > 0).all()


def test_windows_see_only_the_past_and_their_features_are_what_they_say():
    points = pd.DataFrame({"series_id": 1, "service": "s", "metric": "m", "anomaly": 0,
                           "ts": pd.date_range("2026-11-01", periods=60, freq="h"), "value": np.arange(60, dtype=float)})
    windows = window_features(points, Windows(length=24, step=6, season=24, weekly_season=168))
    assert windows["ts"].iloc[0] == points["ts"].iloc[23] and (windows["ts"].diff().dropna() == pd.Timedelta(hours=6)).all()
    first = windows.iloc[0]
    assert first["mean"] == pytest.approx(11.5) and first["rate"] == pytest.approx(1 / first["std"])
    assert np.isnan(first["season_dev"]) and windows.iloc[1]["season_dev"] == pytest.approx(24 / windows.iloc[1]["std"])


def test_concatenation_refuses_a_point_registered_twice(tmp_path):
    files = version_files(tmp_path, days=2)
    with pytest.raises(ValueError, match=r"duplicated \(series_id, ts\) points"):
        recipe.concat_datasets([files[0], files[0]])


def test_time_split_keeps_the_newest_windows_for_test(detection):
    split = detection["dataset_split"]
    assert split.loc[split["split"] == "train", "ts"].max() < split.loc[split["split"] == "validation", "ts"].min()
    assert split.loc[split["split"] == "validation", "ts"].max() < split.loc[split["split"] == "test", "ts"].min()


def test_events_are_caught_by_any_alert_inside_and_false_alerts_counted():
    ts = pd.date_range("2026-11-01", periods=10, freq="h")
    windows = pd.DataFrame({"series_id": 1, "ts": ts, "anomaly": [0, 1, 1, 1, 0, 0, 1, 1, 0, 0]})
    alerts = np.array([0, 0, 1, 0, 0, 1, 0, 0, 0, 0])
    metrics = event_metrics(windows, alerts, step_points=1)
    assert metrics["event_recall"] == 0.5 and metrics["event_precision"] == 0.5
    assert metrics["detection_delay_points"] == 1.0 and metrics["events"] == 2


def test_the_detector_beats_the_robust_z_score(detection):
    metrics = detection["evaluation_report"].as_metrics()
    assert metrics["pr_auc"] > metrics["baseline_pr_auc"] and metrics["event_recall"] > 0
    assert set(detection["config"].recorded_metrics()) <= set(metrics)


def test_predictions_are_each_series_window_at_the_newest_timestamp(detection, tmp_path):
    predictions = detection["predictions"]
    assert len(predictions) == SERIES and predictions["window_end"].nunique() == 1
    stopped = recipe.run_recipe(detection["config"], {"series": version_files(tmp_path, fault=stop_reporting)})
    assert len(stopped["predictions"]) == SERIES - SERIES // 3  # a metric stopped: its series are not served stale


def test_a_unit_change_moves_the_level_ratio_of_its_series(detection, tmp_path):
    faulted = recipe.run_recipe(detection["config"], {"series": version_files(tmp_path, fault=change_unit)})["predictions"]
    latency = faulted["metric"] == "latency_ms"
    assert (faulted.loc[latency, "level_ratio"] < 0.2).all() and faulted.loc[~latency, "level_ratio"].between(0.2, 5).all()


def test_message_is_versioned_json_keyed_by_series(detection):
    provenance = Provenance("ok_monitoring_anomaly_detection", "ok_monitoring_anomaly_detection", "1", "run", "2026-11-30T00:00:00+00:00")
    key, value = next(encode_messages(detection["predictions"], provenance))
    body = json.loads(value)
    assert key == b"1" and body["schema"] == "ok_ml.anomaly" and body["series_id"] == 1
    assert {"service", "metric", "window_end", "score", "alert"} <= set(body) and isinstance(body["alert"], bool)


def test_the_logged_pyfunc_scores_like_the_recipe(detection, tmp_path, monkeypatch):
    import mlflow

    from ok_ml_assets.pipeline_types.time_series_classification.model import DetectorModel, model_files

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("pyfunc", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        files = model_files(detection["detector_at_threshold"], tmp_path)
        info = mlflow.pyfunc.log_model(name="model", python_model=DetectorModel(), artifacts={k: str(v) for k, v in files.items()})
    windows = detection["series_windows"]
    latest = windows[windows["ts"] == windows["ts"].max()].sort_values("series_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(mlflow.pyfunc.load_model(info.model_uri).predict(latest), detection["predictions"])
