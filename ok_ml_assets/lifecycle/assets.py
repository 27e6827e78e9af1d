"""The Dagster side of the lifecycle every pipeline type shares: records, tracking tags, promotion, gates, automation."""

import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import BaseModel, ConfigDict

from ok_ml_assets.configs import DatasetWindow, ExperimentConfig
from ok_ml_assets.engines import is_spark_frame
from ok_ml_assets.lifecycle.gates import require_open_gates
from ok_ml_assets.lifecycle.lineage import config_hash, flatten, git_state
from ok_ml_assets.lifecycle.locks import EXPERIMENT_TAG
from ok_ml_assets.lifecycle.operations import Published, Rescoring, promote_challenger, publish_rollout
from ok_ml_assets.lifecycle.promotion import TRAINED_BY, PromotionPolicy
from ok_ml_assets.lifecycle.publication import Provenance
from ok_ml_assets.monitoring import summarize
from ok_ml_assets.monitoring.daily import window_frame
from ok_ml_assets.monitoring.reference import ReferenceStore
from ok_ml_assets.registry import DataRegistry, DatasetVersion
from ok_ml_assets.resources.kafka import KafkaResource, PublicationReport
from ok_ml_assets.resources.mlflow import (
    CHAMPION,
    DATASETS_ARTIFACT,
    LoggedModel,
    MlflowResource,
    ModelVersionFacts,
    RegisteredModel,
    TrainingDataset,
    metrics_json,
)
from ok_ml_assets.settings import PROJECT_ROOT, load_settings

# The instance limits runs carrying this tag to one per experiment (ok_ml_assets/instance/dagster.yaml).
# Without all_deps_blocking_checks_passed, automation would publish past a failed blocking check.
PUBLISH_WHEN_GATES_PASS = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()

# (MLflow, champion, challenger, evaluation values by asset name) -> the champion's metrics on the challenger's data.
Rescorer = Callable[[MlflowResource, ModelVersionFacts, ModelVersionFacts, dict[str, object]], Rescoring]


class Record(BaseModel):
    """A small typed value passed between assets (stored as JSON by the IO manager)."""

    model_config = ConfigDict(frozen=True)


class TrainedModel(Record):
    """A training's MLflow run and `challenger` model version, with its evaluation metrics."""

    model_name: str
    model_version: str
    run_id: str
    metrics: dict[str, float]
    as_of: str


class PromotionOutcome(Record):
    """The promotion gate's decision on a challenger, and what it was compared with."""

    promoted: bool
    reason: str
    model_version: str
    champion_version: str | None
    comparison: str
    champion_recorded: dict[str, float] = {}
    champion_rescored: dict[str, float] = {}
    # The champion the gate compared with: publication moves `champion` only if it still points there.
    replaces: str | None = None


class PromotionRefused(RuntimeError):
    """The trained model is not the champion, so its predictions are not published."""


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


def recorded_versions(instance: dg.DagsterInstance, client: DataRegistry, asset_key: dg.AssetKey) -> list[DatasetVersion]:
    """The dataset versions recorded on an asset's latest materialization."""
    records = instance.fetch_materializations(asset_key, limit=1).records
    if not records:
        raise ValueError(f"{asset_key.to_user_string()} has not been materialized yet")
    entries = records[0].asset_materialization.metadata["dataset_versions"].value
    return [client.version(entry["dataset"], entry["tag"]) for entry in entries]


def built_from(instance: dg.DagsterInstance, client: DataRegistry, asset_key: dg.AssetKey, window: DatasetWindow) -> list[DatasetVersion]:
    """The versions of the window's dataset an asset's latest materialization recorded, else the window as it is now."""
    records = instance.fetch_materializations(asset_key, limit=1).records
    entries = records[0].asset_materialization.metadata.get("dataset_versions") if records else None
    recorded = [e for e in (entries.value if entries is not None else []) if e["dataset"] == window.dataset_name]
    if recorded:
        return [client.version(e["dataset"], e["tag"]) for e in recorded]
    return client.window(window.dataset_name, window.window_days, window.tag)


def read_daily_window(
    instance: dg.DagsterInstance, client: DataRegistry, asset_key: dg.AssetKey, window: DatasetWindow, columns: list[str],
    engine: str = "local",
):
    """The daily versions an asset was built from as one table of `columns`, each row tagged with its day.

    On `engine: spark` a window of more than COLLECT_ROWS_AT_MOST registered rows stays a Spark table, which the daily
    rules aggregate on the executors; a smaller one is read by pandas, faster than any Spark job at that size.
    """
    versions = built_from(instance, client, asset_key, window)
    if engine == "spark" and sum(v.rows for v in versions) > COLLECT_ROWS_AT_MOST:
        from ok_ml_assets.engines.spark import session
        from ok_ml_assets.monitoring.spark_daily import read_window

        return read_window(session(), [(v.tag, client.path(v.name, v.tag)) for v in versions], columns)
    return window_frame((v.tag, pd.read_parquet(client.path(v.name, v.tag), columns=columns or None)) for v in versions)


@dataclass(frozen=True)
class TrainingOrigin:
    """Where a training came from: its lineage tags (code, config, trigger) and every registered dataset version it read."""

    tags: dict[str, str]
    versions: list[DatasetVersion]


def training_origin(context: dg.AssetExecutionContext, config: ExperimentConfig, versions: list[DatasetVersion]) -> TrainingOrigin:
    """The lineage of a training run: code, config, data and the Dagster run that trained it."""
    commit, dirty = git_state(PROJECT_ROOT)
    tags = {
        "git_commit": commit,
        "git_dirty": str(dirty).lower(),
        "config_hash": config_hash(config),
        "pipeline_type": config.pipeline_type,
        "datasets": datasets_summary(versions),
        "dagster_run_id": context.run.run_id,
        "dagster_asset_key": dg.AssetKey([config.experiment_name, "trained_model"]).to_user_string(),
        "trained_by": TRAINED_BY,
        "trigger": run_trigger(context.run.tags),
    }
    return TrainingOrigin(tags, versions)


def versions_by_dataset(versions: Iterable[DatasetVersion]) -> dict[str, list[DatasetVersion]]:
    """Versions grouped by dataset, each group oldest first."""
    grouped: dict[str, list[DatasetVersion]] = {}
    for version in sorted(versions, key=lambda v: (v.name, v.tag)):
        grouped.setdefault(version.name, []).append(version)
    return grouped


def datasets_summary(versions: list[DatasetVersion]) -> str:
    """The dataset versions in a line people can read (the full list is the run's lineage artifact)."""
    return "; ".join(f"{name} {vs[0].tag}..{vs[-1].tag} ({len(vs)} versions)" for name, vs in versions_by_dataset(versions).items())


def training_datasets(versions: list[DatasetVersion], registry_root: Path) -> tuple[TrainingDataset, ...]:
    """Each dataset a training read, as an MLflow dataset input: the span of its tags, its DVC folder and a digest."""
    return tuple(
        TrainingDataset(
            name=f"{name}@{vs[0].tag}..{vs[-1].tag}",
            source=str(registry_root / "datasets" / name),
            digest=hashlib.md5("".join(v.md5 for v in vs).encode()).hexdigest(),
            versions=len(vs),
            rows=sum(v.rows for v in vs),
        )
        for name, vs in versions_by_dataset(versions).items()
    )


def run_trigger(run_tags: dict[str, str]) -> str:
    """What started a Dagster run, in words: its schedule, its sensor, a backfill or a person."""
    if run_tags.get("dagster/schedule_name"):
        return f"schedule {run_tags['dagster/schedule_name']}"
    if run_tags.get("dagster/sensor_name"):
        return f"sensor {run_tags['dagster/sensor_name']}"
    if run_tags.get("dagster/backfill"):
        return "backfill"
    return "manual run"


def run_presentation(config: ExperimentConfig, origin: TrainingOrigin) -> tuple[str, str]:
    """The MLflow run's name (experiment, data date, trigger) and its description."""
    tags, versions = origin.tags, origin.versions
    last = max((v.tag for v in versions), default="?")
    trigger = tags.get("trigger", "manual run")
    dagster_run = tags.get("dagster_run_id", "?")
    if tags.get("dagster_run_url"):
        dagster_run = f"[{dagster_run}]({tags['dagster_run_url']})"
    description = (f"{config.description} Trained by Dagster run {dagster_run} ({trigger}) on "
                   f"{len(versions)} registered dataset versions up to {last}, commit {tags.get('git_commit', '?')[:12]}.")
    return f"{config.experiment_name} · data to {last} · {trigger}", description.strip()


# Up to this many rows a Spark table's summarized columns are collected and summarized by numpy (fast on small tables);
# a longer table is summarized by Spark, so the driver never holds the whole of it.
COLLECT_ROWS_AT_MOST = 2_000_000


def statistics_metadata(config: ExperimentConfig, asset: str, frame) -> dict[str, dg.MetadataValue]:
    """The monitored statistics of a value as numeric metadata, which the Dagster UI plots over time."""
    rules = config.monitoring.get(asset, [])
    if not rules:
        return {}
    if is_spark_frame(frame) and frame.count() <= COLLECT_ROWS_AT_MOST:
        frame = summarized_columns_in_driver(rules, frame)
    return {name: dg.MetadataValue.float(value) for name, value in summarize(rules, frame).metadata().items()}


def summarized_columns_in_driver(rules: Sequence, frame) -> pd.DataFrame:
    """The columns of a Spark table that `summarize` reads (numeric non-id ones, and those a drift rule names), as pandas."""
    from pyspark.sql import types as T

    from ok_ml_assets.engines.spark import to_pandas
    from ok_ml_assets.monitoring.evaluate import drift_columns

    named = set(drift_columns(rules))
    kept = [f.name for f in frame.schema.fields
            if f.name in named or (isinstance(f.dataType, T.NumericType) and not f.name.endswith("_id"))]
    return to_pandas(frame.select(*kept))


def promotion_policy(config: ExperimentConfig) -> PromotionPolicy:
    """The promotion gate's thresholds from the experiment YAML."""
    return PromotionPolicy(**config.promotion.model_dump())


def trained_model_output(
    registered: RegisteredModel, metrics: dict[str, float], as_of: str, mlflow: MlflowResource, output_name: str = "trained_model"
) -> dg.Output[TrainedModel]:
    """The `trained_model` value of a training, with its run, version, metrics and links to the MLflow UI as metadata.

    `output_name` is the output's name in a multi-asset; a single asset's output is called "result".
    """
    record = TrainedModel(model_name=registered.name, model_version=registered.version, run_id=registered.run_id,
                          metrics=metrics, as_of=as_of)
    links = {}
    if mlflow.ui_url:
        links = {"mlflow_run": dg.MetadataValue.url(mlflow.run_url(registered.experiment_id, registered.run_id)),
                 "mlflow_model_version": dg.MetadataValue.url(mlflow.model_version_url(registered.name, registered.version))}
    return dg.Output(record, output_name, metadata={
        "model": f"{registered.name} v{registered.version}", "mlflow_run_id": registered.run_id, **links,
        **{name: dg.MetadataValue.float(value) for name, value in metrics.items()},
    })


def build_model_promotion(config: ExperimentConfig, evaluation_inputs: Sequence[str], rescore: Rescorer) -> dg.AssetsDefinition:
    """The `model_promotion` asset: the gate re-scores the champion on the challenger's evaluation data, then decides."""
    exp = config.experiment_name
    ins = {name: dg.AssetIn(dg.AssetKey([exp, name])) for name in ("trained_model", *evaluation_inputs)}

    @dg.asset(key=[exp, "model_promotion"], group_name=exp, kinds={"mlflow"}, ins=ins)
    def model_promotion(
        context: dg.AssetExecutionContext, trained_model: TrainedModel, mlflow: MlflowResource, **evaluation: object
    ) -> dg.Output[PromotionOutcome]:
        """The promotion gate's decision on the challenger: whether it became the `champion`, and why."""
        name, version = trained_model.model_name, trained_model.model_version
        result = promote_challenger(
            mlflow, name, version, promotion_policy(config), lambda champion, challenger: rescore(mlflow, champion, challenger, evaluation)
        )
        decision = result.decision
        (context.log.info if decision.promote else context.log.warning)(f"{name} v{version}: {decision.reason}")
        champion = version if decision.promote else result.previous
        outcome = PromotionOutcome(
            promoted=decision.promote, reason=decision.reason, model_version=version, champion_version=champion,
            comparison=result.comparison, champion_recorded=result.champion_recorded, champion_rescored=result.champion_rescored,
            replaces=result.previous,
        )
        return dg.Output(outcome, metadata={
            "decision": "promoted" if decision.promote else "rejected", "reason": decision.reason,
            "challenger": f"v{version}", "champion": f"v{champion}" if champion else "none", "compared_with": result.comparison,
            **{f"champion_recorded_{k}": dg.MetadataValue.float(v) for k, v in result.champion_recorded.items()},
            **{f"champion_rescored_{k}": dg.MetadataValue.float(v) for k, v in result.champion_rescored.items()},
        })

    return model_promotion


def require_champion(mlflow: MlflowResource, trained_model: TrainedModel, promotion: PromotionOutcome) -> None:
    """Refuse publication unless this run's model was promoted and `champion` is still the one the gate compared with."""
    name, version = trained_model.model_name, trained_model.model_version
    if not promotion.promoted:
        raise PromotionRefused(f"{name} v{version} was not promoted, nothing published: {promotion.reason}")
    current = mlflow.alias_version(name, CHAMPION)
    if current not in (version, promotion.replaces):
        raise PromotionRefused(f"{name}: champion moved to v{current} since the gate compared v{version} with "
                               f"{'v' + promotion.replaces if promotion.replaces else 'no champion'}; nothing published")


def trained_dataset_tags(facts: ModelVersionFacts, dataset: str) -> list[str]:
    """The tags of one dataset a model version was trained on, oldest first (from its recorded lineage)."""
    return sorted(entry["tag"] for entry in facts.datasets if entry["dataset"] == dataset)


def seen_in_training(champion: ModelVersionFacts, dataset: str, tags: Iterable[str], what: str) -> Rescoring | None:
    """Why re-scoring the champion on data of these tags would flatter it (it trained on some), or None when it is fair."""
    overlap = sorted(set(trained_dataset_tags(champion, dataset)) & set(tags))
    if not overlap:
        return None
    return Rescoring(None, f"it was trained on {len(overlap)} of the {what} in the challenger's test split "
                           f"({overlap[0]}..{overlap[-1]}), so re-scoring it there would flatter it")


def log_training_run(
    mlflow: MlflowResource, config: ExperimentConfig, metrics: dict[str, float], origin: TrainingOrigin, model: LoggedModel,
    artifacts: dict[str, str] | None = None, chosen_params: dict[str, object] | None = None,
    trials: Sequence[tuple[str, dict, dict[str, float]]] = (),
) -> RegisteredModel:
    """Track a training (every YAML parameter and the values a search chose as `chosen.*`, metrics, the exact config,
    its dataset versions as inputs and lineage artifact, extra artifacts, a search's trials as child runs) and register
    it as `challenger`.

    The run links back to the Dagster run that trained it when the Dagster UI's address is known.
    """
    if mlflow.dagster_ui_url and origin.tags.get("dagster_run_id"):
        origin = replace(origin, tags={**origin.tags, "dagster_run_url": mlflow.dagster_run_url(origin.tags["dagster_run_id"])})
    name, description = run_presentation(config, origin)
    recorded = {"config.yml": config.source_text, "metrics.json": metrics_json(metrics),
                DATASETS_ARTIFACT: json.dumps(lineage(origin.versions), indent=1)}
    return mlflow.log_training(
        experiment=config.experiment_name,
        run_name=name,
        description=description,
        params={**flatten(config.model_dump(mode="json")), **{f"chosen.{k}": v for k, v in (chosen_params or {}).items()}},
        metrics=metrics,
        trials=trials,
        tags=origin.tags,
        artifacts={**recorded, **(artifacts or {})},
        model=model,
        datasets=training_datasets(origin.versions, load_settings().registry_repo),
    )


def publish_champion(
    context: dg.AssetExecutionContext, config: ExperimentConfig, gates: Sequence[dg.AssetCheckKey], predictions: pd.DataFrame,
    trained_model: TrainedModel, promotion: PromotionOutcome, kafka: KafkaResource, mlflow: MlflowResource,
) -> Published:
    """Publish the rollout's predictions, all or nothing, only when every blocking check passed and the model is champion
    (a Spark DataFrame is streamed from the executors, never collected)."""
    require_open_gates(context, gates)
    require_champion(mlflow, trained_model, promotion)
    provenance = Provenance(config.experiment_name, trained_model.model_name, trained_model.model_version, trained_model.run_id)
    published = publish_rollout(kafka, config, predictions, provenance, trained_model.as_of)
    # Only now, with the transaction committed, does the registry say what the topic says.
    mlflow.set_champion(trained_model.model_name, trained_model.model_version)
    report = published.report
    context.log.info(f"published {report.messages} messages to {config.publication.topic} at {report.messages_per_second:,.0f}/s")
    return published


def table_rows(table) -> int:
    """The rows of a pandas or Spark table (counted by the executors, never collected)."""
    return int(table.count()) if is_spark_frame(table) else len(table)


def record_published_lists(store: ReferenceStore, experiment: str, asset: str, rollout, columns: tuple[str, str]) -> None:
    """Keep the published (entity, list) columns for the next run's novelty; a Spark table is written by its executors."""
    if not is_spark_frame(rollout):
        store.record_published(experiment, asset, rollout, *columns)
        return
    # The store reads one parquet file (its `published.parquet`): the executors write it as one part, moved into place.
    target = store.folder(experiment, asset) / "published.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        written = Path(tmp) / "lists"
        rollout.select(*columns).coalesce(1).write.parquet(str(written))
        [part] = written.glob("part-*.parquet")
        os.replace(part, target)


def publication_metadata(report: PublicationReport, config: ExperimentConfig, eligible: int, model: TrainedModel) -> dict:
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
        "model": f"{model.model_name} v{model.model_version}",
        "generation_id": report.generation_id,
    }


def build_automation(
    config: ExperimentConfig, refresh: Sequence[dg.AssetsDefinition], published: dg.AssetsDefinition,
    online: Sequence[dg.AssetsDefinition] = (),
) -> dg.Definitions:
    """The refresh job on the publication cron, the daily online-metrics job and publication's automation sensor."""
    exp = config.experiment_name
    refresh_job = dg.define_asset_job(
        name=refresh_job_name(exp), tags={EXPERIMENT_TAG: exp}, selection=dg.AssetSelection.assets(*refresh),
        description=f"Retrain {exp} on the latest registered data and publish its predictions.",
    )
    weekly = dg.ScheduleDefinition(
        name=f"{exp}_weekly", job=refresh_job, cron_schedule=config.publication.cron,
        default_status=dg.DefaultScheduleStatus.RUNNING, execution_timezone="UTC",
    )
    jobs, schedules = [refresh_job], [weekly]
    if online:
        online_job = dg.define_asset_job(
            name=f"{exp}_online_metrics", selection=dg.AssetSelection.assets(*online), tags={EXPERIMENT_TAG: exp},
            description=f"Score {exp}'s last published predictions against the days registered since.",
        )
        jobs.append(online_job)
        schedules.append(dg.ScheduleDefinition(
            name=f"{exp}_online_metrics_daily", job=online_job, cron_schedule="0 6 * * *",
            default_status=dg.DefaultScheduleStatus.RUNNING, execution_timezone="UTC",
        ))
    # Declarative automation runs only under a running sensor; publication's condition waits for its gates.
    automation = dg.AutomationConditionSensorDefinition(
        f"{exp}_automation", target=dg.AssetSelection.assets(published), default_status=dg.DefaultSensorStatus.RUNNING,
    )
    return dg.Definitions(jobs=jobs, schedules=schedules, sensors=[automation])
