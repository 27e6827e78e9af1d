"""The Dagster graph of a `recommendation_als` experiment: one asset per recipe stage, plus the shared lifecycle."""

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
    record_published_lists,
    recorded_versions,
    statistics_metadata,
    table_rows,
    tag_date,
    trained_dataset_tags,
    trained_model_output,
    training_origin,
)
from ok_ml_assets.lifecycle.checks import blocking_check_keys, build_experiment_checks
from ok_ml_assets.lifecycle.datasets import build_dataset_asset
from ok_ml_assets.lifecycle.operations import Rescoring
from ok_ml_assets.pipeline_types.recommendation_als import quality
from ok_ml_assets.pipeline_types.recommendation_als.config import RecommendationAlsConfig
from ok_ml_assets.pipeline_types.recommendation_als.engine import engine_for
from ok_ml_assets.pipeline_types.recommendation_als.evaluation import rescore_lists
from ok_ml_assets.pipeline_types.recommendation_als.features import read_events
from ok_ml_assets.pipeline_types.recommendation_als.online import engaged_pairs
from ok_ml_assets.pipeline_types.recommendation_als.online import online_metrics as online_metrics_per_arm
from ok_ml_assets.pipeline_types.recommendation_als.recipe import (
    STAGE,
    DailyFile,
    HoldoutSplit,
    evaluation_exclusions,
    holdout_tags,
    run_recipe,
)
from ok_ml_assets.pipeline_types.recommendation_als.search import ChosenModel
from ok_ml_assets.pipeline_types.recommendation_als.training import Embeddings
from ok_ml_assets.registry import DatasetVersion
from ok_ml_assets.resources.io import EngineTable
from ok_ml_assets.resources.kafka import KafkaResource
from ok_ml_assets.resources.mlflow import LoggedModel, MlflowResource, ModelVersionFacts
from ok_ml_assets.resources.monitoring import MonitoringResource
from ok_ml_assets.resources.registry import RegistryResource


def embeddings_frame(ids: np.ndarray, factors: np.ndarray, id_column: str) -> pd.DataFrame:
    """Ids with their factor vectors, as a table."""
    return pd.DataFrame({id_column: ids, "embedding": list(factors)})


def frame_factors(frame: pd.DataFrame, id_column: str) -> tuple[np.ndarray, np.ndarray]:
    """Ids and the stacked factor matrix of an embeddings table."""
    return frame[id_column].to_numpy(np.int64), np.stack(frame["embedding"].to_numpy()).astype(np.float32)


def daily_files(versions: list[DatasetVersion], paths: list[Path]) -> list[DailyFile]:
    """Registered daily versions as the recipe's input files."""
    return [DailyFile(tag_date(v), p) for v, p in zip(versions, paths)]


def embedding_arrays(embeddings: Embeddings, excluded: pd.DataFrame, k: int) -> dict[str, np.ndarray]:
    """The arrays the MLflow model artifact carries: factors, the pairs it must never recommend, and K."""
    return {"user_ids": embeddings.user_ids, "user_factors": embeddings.user_factors,
            "source_ids": embeddings.source_ids, "source_factors": embeddings.source_factors,
            "excluded_user_ids": excluded["user_id"].to_numpy(np.int64),
            "excluded_source_ids": excluded["source_id"].to_numpy(np.int64), "k": np.array(k)}


def champion_rescorer(config: RecommendationAlsConfig):
    """Re-scores the champion's logged model on the challenger's holdout, unless the champion trained on those days."""
    dataset, holdout_days, k = config.datasets.interactions.dataset_name, config.evaluation.holdout_days, config.evaluation.k

    def rescore(mlflow: MlflowResource, champion: ModelVersionFacts, challenger: ModelVersionFacts, evaluation: dict) -> Rescoring:
        seen, holdout = trained_dataset_tags(champion, dataset), holdout_tags(trained_dataset_tags(challenger, dataset), holdout_days)
        if not holdout or (seen and seen[-1] >= holdout[0]):
            return Rescoring(None, f"its data (through {seen[-1] if seen else '?'}) covers the challenger's holdout "
                                   f"(from {holdout[0] if holdout else '?'}), so re-scoring it there would flatter it")
        split: HoldoutSplit = HoldoutSplit.from_frame(evaluation["holdout_split"])
        users = pd.DataFrame({"user_id": np.unique(split.train_features["user_id"].to_numpy())})
        lists = mlflow.load_model(champion.name, champion.version).predict(users)
        excluded = evaluation_exclusions(split, evaluation["subscribed_pairs"], config.exclusions)
        metrics = rescore_lists(lists, split.train_features, split.holdout_pairs, excluded, k)
        return Rescoring(metrics, f"trained through {seen[-1]}, scored on the holdout from {holdout[0]}")

    return rescore


def log_recommender(
    mlflow: MlflowResource, config: RecommendationAlsConfig, metrics: dict[str, float], origin: TrainingOrigin,
    embeddings: Embeddings, excluded: pd.DataFrame, chosen: ChosenModel | None = None,
):
    """Track a training in MLflow (a search's trials as child runs) and register its pyfunc recommender as the `challenger`."""
    from ok_ml_assets.pipeline_types.recommendation_als.model import RecommenderModel

    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "embeddings.npz"
        np.savez(weights, **embedding_arrays(embeddings, excluded, config.recommendations.top_k))
        model = LoggedModel(RecommenderModel(), {"embeddings": weights}, ("ok-ml-assets", "numpy", "pandas", "scipy"))
        chosen = chosen or ChosenModel(config.model)
        return log_training_run(mlflow, config, metrics, origin, model, chosen_params=chosen.params(),
                                trials=[(f"trial {t.number}", t.params, t.metrics) for t in chosen.trials])


def table_counts(table, *columns: str) -> dict[str, int]:
    """Rows and distinct values of `columns` of a table in either engine's form (Spark counts on the executors)."""
    if isinstance(table, pd.DataFrame):
        return {"rows": len(table), **{column: int(table[column].nunique()) for column in columns}}
    from pyspark.sql import functions as F

    row = table.agg(F.count(F.lit(1)), *[F.countDistinct(column) for column in columns]).first()
    return {"rows": int(row[0]), **{column: int(value) for column, value in zip(columns, row[1:])}}


def mean_list_length(table, column: str) -> float:
    """The mean length of a list column, in either engine's form."""
    if isinstance(table, pd.DataFrame):
        return float(table[column].map(len).mean())
    from pyspark.sql import functions as F

    return float(table.agg(F.avg(F.size(column))).first()[0] or 0.0)


def build_scores_finite_check(key) -> dg.AssetChecksDefinition:
    """The structural check no rule expresses: every published score is a number."""

    @dg.asset_check(asset=key("recommendations"), blocking=True, name="all_scores_finite")
    def all_scores_finite(recommendations: pd.DataFrame) -> dg.AssetCheckResult:
        """Every score is a finite number."""
        measured = quality.non_finite_scores(recommendations)
        return dg.AssetCheckResult(
            passed=measured.passed,
            description=f"{measured.failing} of {measured.total} scores are not finite",
            metadata={"failing": measured.failing, "total": measured.total,
                      "examples": dg.MetadataValue.json(measured.examples), "threshold": 0},
        )

    return all_scores_finite


def build_recommendation_als(config: RecommendationAlsConfig) -> dg.Definitions:
    """Every asset, check, job and schedule of one recommendation experiment."""
    exp = config.experiment_name
    key = lambda name: dg.AssetKey([exp, name])  # noqa: E731
    interactions_window, subscriptions_window = config.datasets.interactions, config.datasets.subscriptions
    common = {"key_prefix": [exp], "group_name": exp}
    engine_kind = "spark" if config.engine == "spark" else "duckdb"

    interactions = build_dataset_asset(exp, "interactions", interactions_window)
    subscriptions = build_dataset_asset(exp, "subscriptions", subscriptions_window)

    @dg.asset(**common, deps=[interactions.key], kinds={engine_kind, "parquet"})
    def user_source_features(registry: RegistryResource, spark: dg.ResourceParam[Any]) -> dg.Output[Any]:
        """Per (user, source): time-decayed event weight, event count and days since the last event over the window."""
        versions, paths = read_window(registry.client(), interactions_window)
        values = {"interactions": daily_files(versions, paths), "engine": engine_for(config, spark)}
        features = STAGE["user_source_features"].run(config, values)
        counts = table_counts(features, "user_id", "source_id")
        return dg.Output(features, metadata={
            "dataset_versions": dg.MetadataValue.json(lineage(versions)),
            "as_of": versions[-1].tag,
            "engine": config.engine,
            "rows": dg.MetadataValue.int(counts["rows"]),
            "users": dg.MetadataValue.int(counts["user_id"]),
            "sources": dg.MetadataValue.int(counts["source_id"]),
            **statistics_metadata(config, "user_source_features", features),
        })

    @dg.asset(**common, deps=[subscriptions.key], kinds={engine_kind, "parquet"})
    def subscribed_pairs(registry: RegistryResource, spark: dg.ResourceParam[Any]) -> dg.Output[Any]:
        """Every registered (user, source) follow (within the window, if the config sets one): never recommended."""
        versions, paths = read_window(registry.client(), subscriptions_window)
        values = {"subscriptions": daily_files(versions, paths), "engine": engine_for(config, spark)}
        pairs = STAGE["subscribed_pairs"].run(config, values)
        return dg.Output(pairs, metadata={
            "dataset_versions": dg.MetadataValue.json(lineage(versions)),
            "rows": dg.MetadataValue.int(table_counts(pairs)["rows"]),
        })

    @dg.asset(**common, deps=[interactions.key], kinds={engine_kind, "parquet"})
    def holdout_split(registry: RegistryResource, spark: dg.ResourceParam[Any]) -> dg.Output[Any]:
        """The evaluation split: features of the days before the holdout (`split=train`), pairs engaged with in it (`split=holdout`)."""
        versions, paths = read_window(registry.client(), interactions_window)
        values = {"interactions": daily_files(versions, paths), "engine": engine_for(config, spark)}
        split = STAGE["holdout_split"].run(config, values)
        holdout_from = split.holdout_from.isoformat()
        return dg.Output(split.to_frame(), metadata={
            "dataset_versions": dg.MetadataValue.json(lineage(versions)),
            "train_until": max(v.tag for v in versions if v.tag < holdout_from),
            "holdout_from": holdout_from,
            "train_rows": dg.MetadataValue.int(table_counts(split.train_features)["rows"]),
            "holdout_pairs": dg.MetadataValue.int(table_counts(split.holdout_pairs)["rows"]),
        })

    @dg.multi_asset(
        outs={
            "user_embeddings": dg.AssetOut(
                key=key("user_embeddings"), description="ALS user factors, one vector per user.", kinds={"implicit"}),
            "source_embeddings": dg.AssetOut(
                key=key("source_embeddings"), description="ALS source factors, one vector per source.", kinds={"implicit"}),
            "trained_model": dg.AssetOut(
                key=key("trained_model"), description="The MLflow run and `challenger` model version with its holdout metrics.",
                kinds={"mlflow"}),
        },
        group_name=exp,
        name=f"{exp}_train_als",
        # A search validates on the raw days before the holdout.
        deps=[interactions.key] if config.search else [],
        ins={name: dg.AssetIn(key(name), dagster_type=EngineTable)
             for name in ("user_source_features", "subscribed_pairs", "holdout_split")},
    )
    def train_als(
        context: dg.AssetExecutionContext,
        user_source_features,
        subscribed_pairs,
        holdout_split,
        registry: RegistryResource,
        mlflow: MlflowResource,
        spark: dg.ResourceParam[Any],
    ):
        """Evaluate ALS on the holdout split, fit it on the whole window, track it and register a challenger."""
        client = registry.client()
        # Exactly the versions the features and subscriptions were built from, even if newer ones arrived since.
        versions = recorded_versions(context.instance, client, key("user_source_features"))
        sub_versions = recorded_versions(context.instance, client, key("subscribed_pairs"))
        # A search reads the window's days again, to validate on the days just before the holdout.
        days = daily_files(versions, [client.path(v.name, v.tag) for v in versions]) if config.search else []
        engine = engine_for(config, spark)
        values = {"user_source_features": user_source_features, "subscribed_pairs": subscribed_pairs,
                  "holdout_split": HoldoutSplit.from_frame(holdout_split), "interactions": days, "engine": engine}
        values = run_recipe(config, values, targets=("chosen_model", "holdout_report", "embeddings"))
        chosen: ChosenModel = values["chosen_model"]
        metrics = {**values["holdout_report"].as_metrics(), **chosen.metrics()}
        embeddings: Embeddings = values["embeddings"]
        # The model artifact carries its exclusions, so the driver holds them whatever the engine.
        excluded = engine.to_pandas(engine.excluded_pairs(config.exclusions.serving, subscribed_pairs, user_source_features))
        registered = log_recommender(mlflow, config, metrics, training_origin(context, config, versions + sub_versions),
                                     embeddings, excluded, chosen)
        factors = chosen.model.factors
        yield dg.Output(embeddings_frame(embeddings.user_ids, embeddings.user_factors, "user_id"), "user_embeddings",
                        metadata={"users": dg.MetadataValue.int(len(embeddings.user_ids)), "factors": factors})
        yield dg.Output(embeddings_frame(embeddings.source_ids, embeddings.source_factors, "source_id"), "source_embeddings",
                        metadata={"sources": dg.MetadataValue.int(len(embeddings.source_ids)), "factors": factors})
        yield trained_model_output(registered, metrics, versions[-1].tag, mlflow)

    model_promotion = build_model_promotion(config, ("holdout_split", "subscribed_pairs"), rescore=champion_rescorer(config))

    @dg.asset(**common, kinds={engine_kind if config.engine == "spark" else "numpy", "parquet"},
              ins={name: dg.AssetIn(key(name), dagster_type=EngineTable) for name in ("subscribed_pairs", "user_source_features")})
    def recommendations(
        user_embeddings: pd.DataFrame,
        source_embeddings: pd.DataFrame,
        subscribed_pairs,
        user_source_features,
        trained_model: TrainedModel,
        mlflow: MlflowResource,
        spark: dg.ResourceParam[Any],
    ) -> dg.Output[Any]:
        """Per user, the top-K sources they neither follow nor engaged with in the window (unless the YAML allows repeats), best first."""
        user_ids, user_factors = frame_factors(user_embeddings, "user_id")
        source_ids, source_factors = frame_factors(source_embeddings, "source_id")
        embeddings = Embeddings(user_ids, user_factors, source_ids, source_factors)
        engine = engine_for(config, spark)
        table = STAGE["recommendations"].run(config, {"embeddings": embeddings, "subscribed_pairs": subscribed_pairs,
                                                      "user_source_features": user_source_features, "engine": engine})
        mlflow.log_predictions(trained_model.run_id, table)
        return dg.Output(table, metadata={
            "users": dg.MetadataValue.int(table_counts(table)["rows"]),
            "mean_list_length": dg.MetadataValue.float(mean_list_length(table, "source_ids")),
            "model": f"{trained_model.model_name} v{trained_model.model_version}",
            "engine": config.engine,
            **statistics_metadata(config, "recommendations", table),
        })

    checks = [*build_experiment_checks(config, key), build_scores_finite_check(key)]
    gates = blocking_check_keys(checks)

    @dg.asset(**common, kinds={"kafka"}, automation_condition=PUBLISH_WHEN_GATES_PASS, dagster_type=EngineTable,
              ins={"recommendations": dg.AssetIn(key("recommendations"), dagster_type=EngineTable)})
    def published_recommendations(
        context: dg.AssetExecutionContext,
        recommendations,
        trained_model: TrainedModel,
        model_promotion: PromotionOutcome,
        kafka: KafkaResource,
        mlflow: MlflowResource,
        monitoring: MonitoringResource,
    ) -> dg.Output:
        """Rollout users' champion lists in a Kafka topic keyed by user id; automation publishes once upstream is new and checks pass."""
        # `recommendations` is pandas, or a Spark DataFrame when Spark stored it: then it is streamed, never collected.
        sent = publish_champion(context, config, gates, recommendations, trained_model, model_promotion, kafka, mlflow)
        record_published_lists(monitoring.store(), exp, "recommendations", sent.rollout, ("user_id", "source_ids"))
        return dg.Output(sent.arms, metadata=publication_metadata(sent.report, config, table_rows(recommendations), trained_model))

    @dg.asset(**common, kinds={"duckdb"})
    def online_metrics(published_recommendations: pd.DataFrame, registry: RegistryResource) -> dg.Output[pd.DataFrame]:
        """precision@k, recall@k and hit rate of the last published lists on the following days' clicks and likes, per A/B arm."""
        as_of = str(published_recommendations["as_of"].iloc[0])
        client = registry.client()
        later = [v for v in client.versions(interactions_window.dataset_name) if v.tag > as_of][: config.evaluation.online_days]
        engaged = engaged_pairs(read_events([client.path(v.name, v.tag) for v in later]))
        table = online_metrics_per_arm(published_recommendations, engaged, config.evaluation.k)
        return dg.Output(table, metadata={
            "published_as_of": as_of, "days_observed": dg.MetadataValue.int(len(later)),
            **{f"{row.arm}_{name}": dg.MetadataValue.float(float(getattr(row, name)))
               for row in table.itertuples() for name in table.columns if name != "arm"},
        })

    refresh = [user_source_features, subscribed_pairs, holdout_split, train_als, model_promotion, recommendations,
               published_recommendations]
    assets = dg.Definitions(
        assets=[interactions, subscriptions, *refresh, online_metrics], asset_checks=checks,
    )
    return dg.Definitions.merge(assets, build_automation(config, refresh, published_recommendations, [online_metrics]))
