"""Pipeline type `recommendation_als`: registered events -> features -> ALS -> top-K -> Kafka."""


import datetime as dt
import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from ok_ml_assets.configs import DatasetWindow, ExperimentConfig
from ok_ml_assets.factories.datasets import build_dataset_asset
from ok_ml_assets.factories.gates import require_open_gates
from ok_ml_assets.factories.monitoring_checks import (
    blocking_check_keys,
    build_experiment_checks,
)
from ok_ml_assets.lifecycle import promote_challenger
from ok_ml_assets.monitoring import summarize
from ok_ml_assets.pipelines.features import read_events, read_pairs
from ok_ml_assets.pipelines.lineage import config_hash, flatten, git_state
from ok_ml_assets.pipelines.online import engaged_pairs
from ok_ml_assets.pipelines.online import online_metrics as online_metrics_per_arm
from ok_ml_assets.pipelines.promotion import TRAINED_BY, PromotionPolicy
from ok_ml_assets.pipelines.publication import (
    ROLLOUT,
    Provenance,
    publish_rollout,
    with_arms,
)
from ok_ml_assets.pipelines.recommender import (
    DailyFile,
    als_params,
    recommend,
    train_recommender,
    window_features,
)
from ok_ml_assets.pipelines.training import Embeddings
from ok_ml_assets.registry import DataRegistry, DatasetVersion
from ok_ml_assets.resources.kafka import KafkaResource, PublicationReport
from ok_ml_assets.resources.mlflow import CHAMPION, MlflowResource, metrics_json
from ok_ml_assets.resources.monitoring import MonitoringResource
from ok_ml_assets.resources.registry import RegistryResource
from ok_ml_assets.settings import PROJECT_ROOT


def refresh_job_name(experiment: str) -> str:
    """The job that retrains and publishes an experiment from its latest registered data."""
    return f"{experiment}_refresh"


def read_window(client: DataRegistry, window: DatasetWindow) -> tuple[list[DatasetVersion], list[Path]]:
    """The registered versions of a dataset window and local paths to exactly their bytes."""
    versions = client.window(window.dataset_name, window.window_days, window.tag)
    return versions, [client.path(v.name, v.tag) for v in versions]


def tag_date(version: DatasetVersion) -> dt.date:
    """The day a daily version covers, from its ISO-date tag."""
    try:
        return dt.date.fromisoformat(version.tag)
    except ValueError:
        raise ValueError(f"{version.ref}: a daily dataset's tag must be an ISO date (YYYY-MM-DD)") from None


def lineage(versions: list[DatasetVersion]) -> list[dict[str, object]]:
    """JSON-ready description of the dataset versions a value was computed from."""
    return [{"dataset": v.name, "tag": v.tag, "md5": v.md5, "rows": v.rows} for v in versions]


def embeddings_frame(ids: np.ndarray, factors: np.ndarray, id_column: str) -> pd.DataFrame:
    """Ids with their factor vectors, as a table."""
    return pd.DataFrame({id_column: ids, "embedding": list(factors)})


def frame_factors(frame: pd.DataFrame, id_column: str) -> tuple[np.ndarray, np.ndarray]:
    """Ids and the stacked factor matrix of an embeddings table."""
    return frame[id_column].to_numpy(np.int64), np.stack(frame["embedding"].to_numpy()).astype(np.float32)


def build_recommendation_als(config: ExperimentConfig) -> dg.Definitions:
    """Every asset, check, job and schedule of one recommendation experiment."""
    exp = config.experiment_name
    key = lambda name: dg.AssetKey([exp, name])  # noqa: E731
    interactions_window, subscriptions_window = config.datasets.interactions, config.datasets.subscriptions
    params = als_params(config)
    common = {"key_prefix": [exp], "group_name": exp}

    interactions = build_dataset_asset(exp, "interactions", interactions_window)
    subscriptions = build_dataset_asset(exp, "subscriptions", subscriptions_window)

    @dg.asset(**common, deps=[interactions.key], kinds={"duckdb", "parquet"})
    def user_source_features(registry: RegistryResource) -> dg.Output[pd.DataFrame]:
        """Per (user, source): time-decayed event weight, event count and days since the last event over the window."""
        versions, paths = read_window(registry.client(), interactions_window)
        features = window_features([DailyFile(tag_date(v), p) for v, p in zip(versions, paths)], config)
        return dg.Output(features, metadata={
            "dataset_versions": dg.MetadataValue.json(lineage(versions)),
            "as_of": versions[-1].tag,
            "rows": dg.MetadataValue.int(len(features)),
            "users": dg.MetadataValue.int(int(features["user_id"].nunique())),
            "sources": dg.MetadataValue.int(int(features["source_id"].nunique())),
            **statistics_metadata(config, "user_source_features", features),
        })

    @dg.asset(**common, deps=[subscriptions.key], kinds={"duckdb", "parquet"})
    def subscribed_pairs(registry: RegistryResource) -> dg.Output[pd.DataFrame]:
        """Every registered (user, source) follow (within the window, if the config sets one): never recommended."""
        versions, paths = read_window(registry.client(), subscriptions_window)
        pairs = read_pairs(paths)
        return dg.Output(pairs, metadata={
            "dataset_versions": dg.MetadataValue.json(lineage(versions)),
            "rows": dg.MetadataValue.int(len(pairs)),
        })

    @dg.multi_asset(
        outs={
            "user_embeddings": dg.AssetOut(key=key("user_embeddings"), description="ALS user factors, one vector per user.", kinds={"implicit"}),
            "source_embeddings": dg.AssetOut(key=key("source_embeddings"), description="ALS source factors, one vector per source.", kinds={"implicit"}),
            "trained_model": dg.AssetOut(key=key("trained_model"), description="The MLflow run and `challenger` model version with its holdout metrics.", kinds={"mlflow"}),
        },
        group_name=exp,
        name=f"{exp}_train_als",
    )
    def train_als(
        context: dg.AssetExecutionContext,
        user_source_features: pd.DataFrame,
        subscribed_pairs: pd.DataFrame,
        registry: RegistryResource,
        mlflow: MlflowResource,
    ):
        """Evaluate ALS on a time-based holdout, fit it on the whole window, track it and register a challenger."""
        client = registry.client()
        # Exactly the versions the features and subscriptions were built from, even if newer ones arrived since.
        versions = recorded_versions(context.instance, client, key("user_source_features"))
        sub_versions = recorded_versions(context.instance, client, key("subscribed_pairs"))
        daily = [DailyFile(tag_date(v), client.path(v.name, v.tag)) for v in versions]
        outcome = train_recommender(daily, user_source_features, subscribed_pairs, config)
        metrics = outcome.report.as_metrics()
        registered = mlflow.log_training(
            experiment=exp,
            params=flatten(config.model_dump(mode="json")),
            metrics=metrics,
            tags=training_tags(context, config, versions + sub_versions),
            artifacts={"config.yml": config.source_text, "metrics.json": metrics_json(metrics)},
            embeddings=embedding_arrays(outcome.embeddings, subscribed_pairs, config.recommendations.top_k),
        )
        embeddings = outcome.embeddings
        yield dg.Output(embeddings_frame(embeddings.user_ids, embeddings.user_factors, "user_id"), "user_embeddings",
                        metadata={"users": dg.MetadataValue.int(len(embeddings.user_ids)), "factors": params.factors})
        yield dg.Output(embeddings_frame(embeddings.source_ids, embeddings.source_factors, "source_id"), "source_embeddings",
                        metadata={"sources": dg.MetadataValue.int(len(embeddings.source_ids)), "factors": params.factors})
        yield dg.Output(
            {"model_name": registered.name, "model_version": registered.version, "run_id": registered.run_id,
             "metrics": metrics, "as_of": versions[-1].tag},
            "trained_model",
            metadata={"model": f"{registered.name} v{registered.version}", "mlflow_run_id": registered.run_id,
                      **{name: dg.MetadataValue.float(value) for name, value in metrics.items()}},
        )

    @dg.asset(**common, kinds={"mlflow"})
    def model_promotion(context: dg.AssetExecutionContext, trained_model: dict, mlflow: MlflowResource) -> dg.Output[dict]:
        """The promotion gate's decision on the challenger: whether it became the `champion`, and why."""
        name, version = trained_model["model_name"], trained_model["model_version"]
        decision, previous = promote_challenger(mlflow, name, version, promotion_policy(config))
        (context.log.info if decision.promote else context.log.warning)(f"{name} v{version}: {decision.reason}")
        champion = version if decision.promote else previous
        return dg.Output(
            {"promoted": decision.promote, "reason": decision.reason, "model_version": version, "champion_version": champion},
            metadata={"decision": "promoted" if decision.promote else "rejected", "reason": decision.reason,
                      "challenger": f"v{version}", "champion": f"v{champion}" if champion else "none"},
        )

    @dg.asset(**common, kinds={"numpy", "parquet"})
    def recommendations(
        context: dg.AssetExecutionContext,
        user_embeddings: pd.DataFrame,
        source_embeddings: pd.DataFrame,
        subscribed_pairs: pd.DataFrame,
        trained_model: dict,
        mlflow: MlflowResource,
    ) -> dg.Output[pd.DataFrame]:
        """Per user, the top-K sources they are not subscribed to, best first, with scores."""
        user_ids, user_factors = frame_factors(user_embeddings, "user_id")
        source_ids, source_factors = frame_factors(source_embeddings, "source_id")
        embeddings = Embeddings(user_ids, user_factors, source_ids, source_factors)
        table = recommend(embeddings, subscribed_pairs, config.recommendations.top_k)
        mlflow.log_recommendations(trained_model["run_id"], table)
        return dg.Output(table, metadata={
            "users": dg.MetadataValue.int(len(table)),
            "mean_list_length": dg.MetadataValue.float(float(table["source_ids"].map(len).mean())),
            "model": f"{trained_model['model_name']} v{trained_model['model_version']}",
            **statistics_metadata(config, "recommendations", table),
        })

    checks = build_experiment_checks(config, key)
    gates = blocking_check_keys(checks)

    # Without all_deps_blocking_checks_passed, automation would publish past a failed blocking check.
    @dg.asset(**common, kinds={"kafka"}, automation_condition=PUBLISH_WHEN_GATES_PASS)
    def published_recommendations(
        context: dg.AssetExecutionContext,
        recommendations: pd.DataFrame,
        trained_model: dict,
        model_promotion: dict,
        kafka: KafkaResource,
        mlflow: MlflowResource,
        monitoring: MonitoringResource,
    ) -> dg.Output[pd.DataFrame]:
        """The rollout users' lists from the champion model in a compacted Kafka topic keyed by user id (arms kept for online metrics)."""
        require_open_gates(context, gates)
        require_champion(mlflow, trained_model, model_promotion)
        provenance = Provenance(
            experiment=exp, model_name=trained_model["model_name"], model_version=trained_model["model_version"],
            run_id=trained_model["run_id"],
        )
        lists = with_arms(recommendations, config.publication, trained_model["as_of"])
        rollout = lists[lists["arm"] == ROLLOUT]
        report = publish_rollout(kafka, config.publication, rollout, provenance)
        monitoring.store().record_published(exp, "recommendations", rollout)
        context.log.info(f"published {report.messages} messages to {config.publication.topic} at {report.messages_per_second:,.0f}/s")
        return dg.Output(lists, metadata=publication_metadata(report, config, len(recommendations), provenance))

    @dg.asset(**common, kinds={"duckdb"})
    def online_metrics(
        context: dg.AssetExecutionContext, published_recommendations: pd.DataFrame, registry: RegistryResource
    ) -> dg.Output[pd.DataFrame]:
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

    refresh = dg.define_asset_job(
        name=refresh_job_name(exp),
        tags={EXPERIMENT_TAG: exp},
        selection=dg.AssetSelection.assets(
            user_source_features, subscribed_pairs, train_als, model_promotion, recommendations, published_recommendations
        ),
        description=f"Retrain {exp} on the latest registered data and publish its recommendations.",
    )
    online = dg.define_asset_job(
        name=f"{exp}_online_metrics", selection=dg.AssetSelection.assets(online_metrics), tags={EXPERIMENT_TAG: exp},
        description=f"Score {exp}'s last published lists against the days registered since.",
    )
    daily = dg.ScheduleDefinition(
        name=f"{exp}_online_metrics_daily", job=online, cron_schedule="0 6 * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING, execution_timezone="UTC",
    )
    weekly = dg.ScheduleDefinition(
        name=f"{exp}_weekly", job=refresh, cron_schedule=config.publication.cron,
        default_status=dg.DefaultScheduleStatus.RUNNING, execution_timezone="UTC",
    )
    # Declarative automation runs only under a running sensor; publication's condition waits for its gates.
    automation = dg.AutomationConditionSensorDefinition(
        f"{exp}_automation", target=dg.AssetSelection.assets(published_recommendations),
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    return dg.Definitions(
        sensors=[automation],
        assets=[interactions, subscriptions, user_source_features, subscribed_pairs, train_als, model_promotion,
                recommendations, published_recommendations, online_metrics],
        asset_checks=checks,
        jobs=[refresh, online],
        schedules=[weekly, daily],
    )


# The instance limits runs carrying this tag to one per experiment (ok_ml_assets/instance/dagster.yaml).
EXPERIMENT_TAG = "ok_ml/experiment"
PUBLISH_WHEN_GATES_PASS = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()


class PromotionRefused(RuntimeError):
    """The trained model is not the champion, so its recommendations are not published."""


def require_champion(mlflow: MlflowResource, trained_model: dict, promotion: dict) -> None:
    """Refuse publication unless this run's model was promoted and `champion` still points at it."""
    name, version = trained_model["model_name"], trained_model["model_version"]
    if not promotion["promoted"]:
        raise PromotionRefused(f"{name} v{version} was not promoted, nothing published: {promotion['reason']}")
    current = mlflow.alias_version(name, CHAMPION)
    if current != version:
        raise PromotionRefused(f"{name} v{version} is no longer the champion (champion is v{current}); nothing published")


def statistics_metadata(config: ExperimentConfig, asset: str, frame: pd.DataFrame) -> dict[str, dg.MetadataValue]:
    """The monitored statistics of a value as numeric metadata, which the Dagster UI plots over time."""
    rules = config.monitoring.get(asset, [])
    return {name: dg.MetadataValue.float(value) for name, value in summarize(rules, frame).metadata().items()} if rules else {}


def promotion_policy(config: ExperimentConfig) -> PromotionPolicy:
    """The promotion gate's thresholds from the experiment YAML."""
    return PromotionPolicy(**config.promotion.model_dump())


def publication_metadata(report: PublicationReport, config: ExperimentConfig, eligible: int, provenance: Provenance) -> dict:
    """Materialization metadata of a publication: volume, placement and throughput."""
    return {
        "topic": config.publication.topic,
        "messages": dg.MetadataValue.int(report.messages),
        "bytes": dg.MetadataValue.int(report.bytes),
        "partitions": dg.MetadataValue.int(len(report.offsets)),
        "offsets": dg.MetadataValue.json({str(p): list(r) for p, r in sorted(report.offsets.items())}),
        "seconds": dg.MetadataValue.float(report.seconds),
        "messages_per_second": dg.MetadataValue.float(report.messages_per_second),
        "rollout_fraction": config.publication.rollout_fraction,
        "eligible_users": dg.MetadataValue.int(eligible),
        "model": f"{provenance.model_name} v{provenance.model_version}",
    }


def embedding_arrays(embeddings: Embeddings, subscribed: pd.DataFrame, k: int) -> dict[str, np.ndarray]:
    """The arrays the MLflow model artifact carries: factors, the subscriptions it must not recommend, and K."""
    return {"user_ids": embeddings.user_ids, "user_factors": embeddings.user_factors,
            "source_ids": embeddings.source_ids, "source_factors": embeddings.source_factors,
            "subscribed_user_ids": subscribed["user_id"].to_numpy(np.int64),
            "subscribed_source_ids": subscribed["source_id"].to_numpy(np.int64), "k": np.array(k)}


def recorded_versions(instance: dg.DagsterInstance, client: DataRegistry, asset_key: dg.AssetKey) -> list[DatasetVersion]:
    """The dataset versions recorded on an asset's latest materialization."""
    records = instance.fetch_materializations(asset_key, limit=1).records
    if not records:
        raise ValueError(f"{asset_key.to_user_string()} has not been materialized yet")
    entries = records[0].asset_materialization.metadata["dataset_versions"].value
    return [client.version(entry["dataset"], entry["tag"]) for entry in entries]


def training_tags(context: dg.AssetExecutionContext, config: ExperimentConfig, versions: list[DatasetVersion]) -> dict[str, str]:
    """Lineage tags of a training run: code, config, data and the Dagster run that trained it."""
    commit, dirty = git_state(PROJECT_ROOT)
    return {
        "git_commit": commit,
        "git_dirty": str(dirty).lower(),
        "config_hash": config_hash(config),
        "pipeline_type": config.pipeline_type,
        "datasets": json.dumps(lineage(versions)),
        "dagster_run_id": context.run.run_id,
        "dagster_asset_key": dg.AssetKey([config.experiment_name, "trained_model"]).to_user_string(),
        "trained_by": TRAINED_BY,
    }
