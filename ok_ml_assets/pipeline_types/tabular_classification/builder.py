"""The Dagster graph of a `tabular_classification` experiment: one asset per recipe stage, plus the shared lifecycle."""

import tempfile
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
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
    table_rows,
    trained_model_output,
    training_origin,
)
from ok_ml_assets.lifecycle.checks import blocking_check_keys, build_experiment_checks
from ok_ml_assets.lifecycle.datasets import build_dataset_asset
from ok_ml_assets.lifecycle.operations import Rescoring
from ok_ml_assets.pipeline_types.tabular_classification.config import TabularClassificationConfig
from ok_ml_assets.pipeline_types.tabular_classification.engine import ROW_ID, engine_for
from ok_ml_assets.pipeline_types.tabular_classification.recipe import (
    LABEL_INDEX,
    SPLIT_COLUMN,
    STAGE,
    TEST,
    TRAIN,
    VALIDATION,
    VERSION_COLUMN,
    Classifier,
    VersionFile,
    metrics_of,
    part,
    run_recipe,
    score_split,
)
from ok_ml_assets.resources.io import EngineTable
from ok_ml_assets.resources.kafka import KafkaResource
from ok_ml_assets.resources.mlflow import LoggedModel, MlflowResource, ModelVersionFacts
from ok_ml_assets.resources.registry import RegistryResource


def load_classifier(mlflow: MlflowResource, name: str, version: str) -> Classifier:
    """The classifier of a registered version, as its logged pyfunc scores."""
    return mlflow.load_model(name, version).unwrap_python_model().classifier


def champion_rescorer(config: TabularClassificationConfig):
    """Re-scores the champion on the challenger's test split, unless the champion trained on any of its versions."""
    dataset = config.datasets.examples.dataset_name

    def rescore(mlflow: MlflowResource, champion: ModelVersionFacts, challenger: ModelVersionFacts, evaluation: dict) -> Rescoring:
        test = part(evaluation["dataset_split"], TEST)
        unfair = seen_in_training(champion, dataset, test[VERSION_COLUMN], "versions")
        if unfair:
            return unfair
        classifier = load_classifier(mlflow, champion.name, champion.version)
        labels, probabilities = score_split(classifier, test, config.features)
        metrics = metrics_of(labels, probabilities, config.classes, classifier.threshold, config.evaluation.calibration_bins)
        return Rescoring(metrics, f"scored on the challenger's {len(test)} test rows at its own threshold {classifier.threshold:.4f}")

    return rescore


def log_classifier(
    mlflow: MlflowResource, config: TabularClassificationConfig, classifier: Classifier, metrics: dict[str, float],
    origin: TrainingOrigin,
):
    """Track a training in MLflow (params, test metrics, feature importance) and register its pyfunc as `challenger`."""
    from ok_ml_assets.pipeline_types.tabular_classification.model import ClassifierModel, model_files

    with tempfile.TemporaryDirectory() as tmp:
        model = LoggedModel(ClassifierModel(), model_files(classifier, config.features.id_column, Path(tmp)),
                            ("ok-ml-assets", "lightgbm", "numpy", "pandas", "scikit-learn"))
        importance = {"feature_importance.csv": classifier.importance.to_csv(index=False)}
        return log_training_run(mlflow, config, metrics, origin, model, importance)


def class_rates(table, label_column: str, classes: list[str]) -> dict[str, dg.MetadataValue]:
    """The rows and each class's share of them, as plottable metadata, for a table in either engine's form (Spark counts)."""
    if isinstance(table, pd.DataFrame):
        counts = table[label_column].astype(str).value_counts().to_dict()
    else:
        from pyspark.sql import functions as F

        counts = dict(table.groupBy(F.col(label_column).cast("string")).count().collect())
    rows = sum(counts.values())
    return {"rows": dg.MetadataValue.int(rows),
            **{f"share_{label}": dg.MetadataValue.float(counts.get(label, 0) / rows if rows else 0.0) for label in classes}}


def split_rates(table) -> dict[str, dg.MetadataValue]:
    """Rows and positive-label rate of each split, as metadata, for a table in either engine's form (Spark counts)."""
    if isinstance(table, pd.DataFrame):
        groups = table.groupby(SPLIT_COLUMN)[LABEL_INDEX]
        facts = {name: (len(values), float(values.gt(0).mean())) for name, values in groups}
    else:
        from pyspark.sql import functions as F

        rows = table.groupBy(SPLIT_COLUMN).agg(F.count(F.lit(1)), F.avg((F.col(LABEL_INDEX) > 0).cast("double"))).collect()
        facts = {row[0]: (int(row[1]), float(row[2])) for row in rows}
    names = (TRAIN, VALIDATION, TEST)
    return {**{f"{name}_rows": dg.MetadataValue.int(facts.get(name, (0, 0.0))[0]) for name in names},
            **{f"{name}_label_rate": dg.MetadataValue.float(facts.get(name, (0, float("nan")))[1]) for name in names}}


def prediction_counts(table) -> tuple[int, int]:
    """Entities and flagged entities of a prediction table in either engine's form (Spark counts on the executors)."""
    if isinstance(table, pd.DataFrame):
        return len(table), int(table["flagged"].sum())
    from pyspark.sql import functions as F

    row = table.agg(F.count(F.lit(1)), F.sum("flagged")).first()
    return int(row[0]), int(row[1] or 0)


def unscored_entities(entities, predictions, id_column: str) -> tuple[int, int, list]:
    """(entities, how many lack a finite score, up to five of them), for tables in either engine's form."""
    if isinstance(entities, pd.DataFrame):
        expected = entities[id_column]
        scored = predictions.loc[np.isfinite(predictions["score"].to_numpy()), id_column]
        missing = expected[~expected.isin(scored)]
        return len(expected), len(missing), missing.head(5).tolist()
    from pyspark.sql import functions as F

    score = F.col("score")
    finite = score.isNotNull() & ~F.isnan(score) & (F.abs(score) != F.lit(float("inf")))
    missing = entities.join(predictions.where(finite).select(id_column), id_column, "left_anti")
    examples = [row[0] for row in missing.orderBy(ROW_ID).select(id_column).limit(5).collect()]
    return entities.count(), missing.count(), examples


def build_entities_scored_check(config: TabularClassificationConfig, key) -> dg.AssetChecksDefinition:
    """The structural check no rule expresses: every entity of the newest version got a finite score (on Spark, by Spark)."""

    # EngineTable on the parameters (Dagster refuses a typed AssetIn on a check's own asset): Spark DataFrames when Spark
    # stored the tables, pandas otherwise.
    @dg.asset_check(asset=key("predictions"), blocking=True, name="every_entity_scored",
                    additional_ins={"labelled_examples": dg.AssetIn(key("labelled_examples"))})
    def every_entity_scored(predictions: EngineTable, labelled_examples: EngineTable, spark: dg.ResourceParam[Any]) -> dg.AssetCheckResult:
        """Every entity of the newest version has a finite score."""
        entities = engine_for(config, spark).entities_to_score(labelled_examples, config.features)
        expected, missing, examples = unscored_entities(entities, predictions, config.features.id_column)
        share = 1 - missing / max(expected, 1)
        return dg.AssetCheckResult(
            passed=missing == 0,
            description=f"{share:.2%} of the {expected} entities of the newest version have a finite score",
            metadata={"observed": share, "threshold": 1.0, "entities": expected, "examples": dg.MetadataValue.json(examples)},
        )

    return every_entity_scored


def build_tabular_classification(config: TabularClassificationConfig) -> dg.Definitions:
    """Every asset, check, job and schedule of one classification experiment."""
    exp = config.experiment_name
    key = lambda name: dg.AssetKey([exp, name])  # noqa: E731
    window = config.datasets.examples
    common = {"key_prefix": [exp], "group_name": exp}
    engine_kind = "spark" if config.engine == "spark" else "pandas"
    table_in = lambda name: {name: dg.AssetIn(key(name), dagster_type=EngineTable)}  # noqa: E731

    examples = build_dataset_asset(exp, "examples", window)

    @dg.asset(**common, deps=[examples.key], kinds={engine_kind, "parquet"})
    def labelled_examples(registry: RegistryResource, spark: dg.ResourceParam[Any]) -> dg.Output[Any]:
        """dataset_download + concat_datasets: the window's registered versions in one table, with their version and class index."""
        client = registry.client()
        versions, paths = read_window(client, window)
        files = [VersionFile(v.tag, p) for v, p in zip(versions, paths)]
        table = STAGE["labelled_examples"].run(config, {"examples": files, "engine": engine_for(config, spark)})
        return dg.Output(table, metadata={
            "dataset_versions": dg.MetadataValue.json(lineage(versions)),
            "as_of": versions[-1].tag,
            "engine": config.engine,
            **class_rates(table, config.features.label_column, config.classes),
            **statistics_metadata(config, "labelled_examples", table),
        })

    @dg.asset(**common, kinds={engine_kind, "parquet"}, ins=table_in("labelled_examples"))
    def dataset_split(labelled_examples, spark: dg.ResourceParam[Any]) -> dg.Output[Any]:
        """split_dataset: each example's split (train, validation, test), by time or stratified as the YAML says."""
        table = STAGE["dataset_split"].run(config, {"labelled_examples": labelled_examples, "engine": engine_for(config, spark)})
        return dg.Output(table, metadata={"method": config.split_dataset.method, "engine": config.engine, **split_rates(table)})

    @dg.asset(**common, kinds={"lightgbm", "mlflow"}, ins=table_in("dataset_split"))
    def trained_model(context: dg.AssetExecutionContext, dataset_split, registry: RegistryResource,
                      mlflow: MlflowResource, spark: dg.ResourceParam[Any]) -> dg.Output[TrainedModel]:
        """The LightGBM classifier's MLflow run and `challenger` version, with test metrics beside the prior-rate baseline."""
        versions = recorded_versions(context.instance, registry.client(), key("labelled_examples"))
        values = run_recipe(config, {"dataset_split": dataset_split, "engine": engine_for(config, spark)},
                            targets=("classifier_at_threshold",))
        metrics = values["evaluation_report"].as_metrics()
        registered = log_classifier(mlflow, config, values["classifier_at_threshold"], metrics,
                                    training_origin(context, config, versions))
        context.log.info(f"{exp}: best iteration {values['classifier'].best_iteration}, threshold {metrics['threshold']:.4f}")
        return trained_model_output(registered, metrics, versions[-1].tag, mlflow, output_name="result")

    model_promotion = build_model_promotion(config, ("dataset_split",), rescore=champion_rescorer(config))

    @dg.asset(**common, kinds={"lightgbm", "parquet", *(["spark"] if config.engine == "spark" else [])},
              ins=table_in("labelled_examples"))
    def predictions(labelled_examples, trained_model: TrainedModel, mlflow: MlflowResource,
                    spark: dg.ResourceParam[Any]) -> dg.Output[Any]:
        """Per entity of the newest version: predicted label, score, flag and every class's probability, from the registered model."""
        classifier = load_classifier(mlflow, trained_model.model_name, trained_model.model_version)
        table = STAGE["predictions"].run(config, {"classifier_at_threshold": classifier, "labelled_examples": labelled_examples,
                                                  "engine": engine_for(config, spark)})
        # A Spark table is logged as the parts its executors write, and counted there: the driver never holds it.
        mlflow.log_predictions(trained_model.run_id, table)
        entities, flagged = prediction_counts(table)
        return dg.Output(table, metadata={
            "entities": dg.MetadataValue.int(entities),
            "flagged": dg.MetadataValue.int(flagged),
            "threshold": dg.MetadataValue.float(classifier.threshold),
            "model": f"{trained_model.model_name} v{trained_model.model_version}",
            "engine": config.engine,
            **statistics_metadata(config, "predictions", table),
        })

    checks = [*build_experiment_checks(config, key), build_entities_scored_check(config, key)]
    gates = blocking_check_keys(checks)

    @dg.asset(**common, kinds={"kafka"}, automation_condition=PUBLISH_WHEN_GATES_PASS, dagster_type=EngineTable,
              ins=table_in("predictions"))
    def published_predictions(
        context: dg.AssetExecutionContext,
        predictions,
        trained_model: TrainedModel,
        model_promotion: PromotionOutcome,
        kafka: KafkaResource,
        mlflow: MlflowResource,
    ) -> dg.Output:
        """Rollout entities' champion scores in a topic keyed by entity id; automation publishes once upstream is new and checks pass."""
        # `predictions` is pandas, or a Spark DataFrame when Spark stored it: then it is streamed from the executors.
        sent = publish_champion(context, config, gates, predictions, trained_model, model_promotion, kafka, mlflow)
        return dg.Output(sent.arms, metadata=publication_metadata(sent.report, config, table_rows(predictions), trained_model))

    refresh = [labelled_examples, dataset_split, trained_model, model_promotion, predictions, published_predictions]
    assets = dg.Definitions(assets=[examples, *refresh], asset_checks=checks)
    return dg.Definitions.merge(assets, build_automation(config, refresh, published_predictions))
