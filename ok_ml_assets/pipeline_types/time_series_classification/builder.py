"""The Dagster graph of a `time_series_classification` experiment: one asset per recipe stage, plus the shared lifecycle."""

import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd

from ok_ml_assets.lifecycle.assets import (
    PUBLISH_WHEN_GATES_PASS,
    PromotionOutcome,
    TrainedModel,
    TrainingOrigin,
    build_automation,
    build_model_promotion,
    lineage,
    log_training_run,
    publication_metadata,
    publish_champion,
    read_window,
    recorded_versions,
    seen_in_training,
    statistics_metadata,
    trained_model_output,
    training_origin,
)
from ok_ml_assets.lifecycle.checks import blocking_check_keys, build_experiment_checks
from ok_ml_assets.lifecycle.datasets import build_dataset_asset
from ok_ml_assets.lifecycle.operations import Rescoring
from ok_ml_assets.pipeline_types.time_series_classification.config import TimeSeriesClassificationConfig
from ok_ml_assets.pipeline_types.time_series_classification.recipe import (
    SPLIT_COLUMN,
    STAGE,
    TEST,
    Detector,
    VersionFile,
    part,
    run_recipe,
    step_points,
)
from ok_ml_assets.pipeline_types.time_series_classification.windows import alert_metrics
from ok_ml_assets.resources.kafka import KafkaResource
from ok_ml_assets.resources.mlflow import LoggedModel, MlflowResource, ModelVersionFacts
from ok_ml_assets.resources.registry import RegistryResource


def load_detector(mlflow: MlflowResource, name: str, version: str) -> Detector:
    """The detector of a registered version, as its logged pyfunc scores."""
    return mlflow.load_model(name, version).unwrap_python_model().detector


def champion_rescorer(config: TimeSeriesClassificationConfig):
    """Re-scores the champion on the challenger's test windows, unless the champion trained on any of their days."""
    dataset = config.datasets.series.dataset_name

    def rescore(mlflow: MlflowResource, champion: ModelVersionFacts, challenger: ModelVersionFacts, evaluation: dict) -> Rescoring:
        split = evaluation["dataset_split"]
        test = part(split, TEST)
        days = set(pd.to_datetime(test["ts"]).dt.date.astype(str))
        unfair = seen_in_training(champion, dataset, days, "days")
        if unfair:
            return unfair
        detector = load_detector(mlflow, champion.name, champion.version)
        metrics = alert_metrics(test, detector.scores(test), detector.threshold, step_points(split))
        return Rescoring(metrics, f"scored on the challenger's {len(test)} test windows at its own threshold {detector.threshold:.4f}")

    return rescore


def log_detector(
    mlflow: MlflowResource, config: TimeSeriesClassificationConfig, detector: Detector, metrics: dict[str, float], origin: TrainingOrigin,
):
    """Track a training in MLflow (params, event-level test metrics beside the baseline) and register its pyfunc."""
    from ok_ml_assets.pipeline_types.time_series_classification.model import DetectorModel, model_files

    with tempfile.TemporaryDirectory() as tmp:
        model = LoggedModel(DetectorModel(), model_files(detector, Path(tmp)), ("ok-ml-assets", "lightgbm", "numpy", "pandas"))
        return log_training_run(mlflow, config, metrics, origin, model)


def build_time_series_classification(config: TimeSeriesClassificationConfig) -> dg.Definitions:
    """Every asset, check, job and schedule of one anomaly detection experiment."""
    exp = config.experiment_name
    key = lambda name: dg.AssetKey([exp, name])  # noqa: E731
    window = config.datasets.series
    common = {"key_prefix": [exp], "group_name": exp}

    series = build_dataset_asset(exp, "series", window)

    @dg.asset(**common, deps=[series.key], kinds={"pandas", "parquet"})
    def metric_series(registry: RegistryResource) -> dg.Output[pd.DataFrame]:
        """dataset_download + concat_datasets: the tagged versions' points (series, metric, timestamp, value, anomaly) in one table."""
        versions, paths = read_window(registry.client(), window)
        table = STAGE["metric_series"].run(config, {"series": [VersionFile(v.tag, p) for v, p in zip(versions, paths)]})
        return dg.Output(table, metadata={
            "dataset_versions": dg.MetadataValue.json(lineage(versions)),
            "as_of": versions[-1].tag,
            "points": dg.MetadataValue.int(len(table)),
            "series": dg.MetadataValue.int(int(table["series_id"].nunique())),
        })

    @dg.asset(**common, kinds={"pandas", "parquet"})
    def series_windows(metric_series: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        """build_windows: each series' windows with rolling statistics, seasonal deviations, rate of change and time features."""
        table = STAGE["series_windows"].run(config, {"metric_series": metric_series})
        return dg.Output(table, metadata={
            "windows": dg.MetadataValue.int(len(table)),
            "anomalous_share": dg.MetadataValue.float(float(table["anomaly"].mean())),
            **statistics_metadata(config, "series_windows", table),
        })

    @dg.asset(**common, kinds={"pandas", "parquet"})
    def dataset_split(series_windows: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        """split_dataset: the windows' time range cut in order into train, validation and test."""
        table = STAGE["dataset_split"].run(config, {"series_windows": series_windows})
        counts = table[SPLIT_COLUMN].value_counts()
        return dg.Output(table, metadata={
            **{f"{name}_windows": dg.MetadataValue.int(int(counts.get(name, 0))) for name in ("train", "validation", "test")},
            "test_from": str(part(table, TEST)["ts"].min()),
        })

    @dg.asset(**common, kinds={"lightgbm", "mlflow"})
    def trained_model(context: dg.AssetExecutionContext, dataset_split: pd.DataFrame, registry: RegistryResource,
                      mlflow: MlflowResource) -> dg.Output[TrainedModel]:
        """The window classifier's MLflow run and `challenger` version: event-level test metrics beside the robust z-score."""
        versions = recorded_versions(context.instance, registry.client(), key("metric_series"))
        values = run_recipe(config, {"dataset_split": dataset_split}, targets=("detector_at_threshold",))
        metrics = values["evaluation_report"].as_metrics()
        registered = log_detector(mlflow, config, values["detector_at_threshold"], metrics, training_origin(context, config, versions))
        return trained_model_output(registered, metrics, versions[-1].tag, mlflow, output_name="result")

    model_promotion = build_model_promotion(config, ("dataset_split",), rescore=champion_rescorer(config))

    @dg.asset(**common, kinds={"lightgbm", "parquet"})
    def predictions(series_windows: pd.DataFrame, trained_model: TrainedModel, mlflow: MlflowResource) -> dg.Output[pd.DataFrame]:
        """Per series, its latest window's anomaly score and alert flag from the registered model."""
        detector = load_detector(mlflow, trained_model.model_name, trained_model.model_version)
        table = STAGE["predictions"].run(config, {"detector_at_threshold": detector, "series_windows": series_windows})
        mlflow.log_predictions(trained_model.run_id, table)
        return dg.Output(table, metadata={
            "series": dg.MetadataValue.int(len(table)),
            "alerts": dg.MetadataValue.int(int(table["alert"].sum())),
            "threshold": dg.MetadataValue.float(detector.threshold),
            "model": f"{trained_model.model_name} v{trained_model.model_version}",
            **statistics_metadata(config, "predictions", table),
        })

    checks = build_experiment_checks(config, key)
    gates = blocking_check_keys(checks)

    @dg.asset(**common, kinds={"kafka"}, automation_condition=PUBLISH_WHEN_GATES_PASS)
    def published_alerts(
        context: dg.AssetExecutionContext,
        predictions: pd.DataFrame,
        trained_model: TrainedModel,
        model_promotion: PromotionOutcome,
        kafka: KafkaResource,
        mlflow: MlflowResource,
    ) -> dg.Output[pd.DataFrame]:
        """Each series' champion score and alert, keyed by series id; automation publishes once upstream is new and checks pass."""
        sent = publish_champion(context, config, gates, predictions, trained_model, model_promotion, kafka, mlflow)
        return dg.Output(sent.arms, metadata=publication_metadata(sent.report, config, len(predictions), trained_model))

    refresh = [metric_series, series_windows, dataset_split, trained_model, model_promotion, predictions, published_alerts]
    assets = dg.Definitions(assets=[series, *refresh], asset_checks=checks)
    return dg.Definitions.merge(assets, build_automation(config, refresh, published_alerts))
