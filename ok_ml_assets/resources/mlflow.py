"""MLflow: training runs with params, metrics, artifacts and lineage tags, and the Model Registry's aliases."""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd

from ok_ml_assets.engines import is_spark_frame

CHALLENGER, CHAMPION = "challenger", "champion"
PREDICTIONS_ARTIFACT = "predictions/predictions.parquet"
# Every dataset version a run trained on (a tag would be cut at MLflow's 8,000 characters on long windows).
DATASETS_ARTIFACT = "lineage/datasets.json"
# Opens the experiment on its training runs, not on MLflow 3's GenAI overview.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


@dataclass(frozen=True)
class RegisteredModel:
    """A model version in the MLflow Model Registry and the run that trained it."""

    name: str
    version: str
    run_id: str
    experiment_id: str = ""


@dataclass(frozen=True)
class LoggedModel:
    """What a pipeline type logs as its model: a pyfunc, the files it loads and its pip requirements."""

    python_model: object
    files: dict[str, Path]
    pip_requirements: tuple[str, ...] = ("ok-ml-assets", "numpy", "pandas")


@dataclass(frozen=True)
class TrainingDataset:
    """One registered dataset a run trained on, as an MLflow dataset input: its versions' span, source and digest."""

    name: str
    source: str
    digest: str
    versions: int
    rows: int


@dataclass(frozen=True)
class ModelVersionFacts:
    """What the registry knows of one version: its tags, its run's metrics, its aliases and the dataset versions it used."""

    name: str
    version: str
    run_id: str | None
    tags: dict[str, str]
    metrics: dict[str, float]
    aliases: list[str]
    datasets: list[dict] = field(default_factory=list)


class MlflowResource(dg.ConfigurableResource):
    """An MLflow tracking store and model registry: local sqlite by default, a tracking server by URI."""

    tracking_uri: str
    artifact_root: str = ""
    # Where the MLflow and Dagster UIs are served, for links between them (empty: no links).
    ui_url: str = ""
    dagster_ui_url: str = ""

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """The MLflow UI page of a run."""
        return f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}"

    def model_version_url(self, name: str, version: str) -> str:
        """The MLflow UI page of a registered model version."""
        return f"{self.ui_url}/#/models/{name}/versions/{version}"

    def dagster_run_url(self, run_id: str) -> str:
        """The Dagster UI page of a run."""
        return f"{self.dagster_ui_url}/runs/{run_id}"

    def client(self):
        """An MlflowClient bound to this store (and the fluent API pointed at it too)."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return mlflow.MlflowClient(self.tracking_uri, self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        """The MLflow experiment of an ok-ml experiment, created with the configured artifact root."""
        client = self.client()
        found = client.get_experiment_by_name(name)
        if found is not None:
            if not found.tags.get("mlflow.experimentKind"):
                client.set_experiment_tag(found.experiment_id, *next(iter(EXPERIMENT_KIND.items())))
            return found.experiment_id
        location = f"{self.artifact_root.rstrip('/')}/{name}" if self.artifact_root else None
        return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)

    def log_training(
        self,
        experiment: str,
        params: dict[str, object],
        metrics: dict[str, float],
        tags: dict[str, str],
        artifacts: dict[str, str],
        model: LoggedModel,
        run_name: str | None = None,
        description: str = "",
        datasets: tuple[TrainingDataset, ...] = (),
        trials: Sequence[tuple[str, dict, dict[str, float]]] = (),
    ) -> RegisteredModel:
        """Record one training run (each search trial, as (name, params, metrics), a child run of it) and register its
        model as the experiment's new `challenger` version."""
        import mlflow

        client = self.client()
        experiment_id = self.experiment_id(experiment)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags, description=description or None) as run:
            mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
            mlflow.log_metrics(metrics)
            log_dataset_inputs(datasets)
            for trial_name, trial_params, trial_metrics in trials:
                with mlflow.start_run(experiment_id=experiment_id, run_name=trial_name, nested=True):
                    mlflow.log_params(trial_params)
                    mlflow.log_metrics(trial_metrics)
            for name, text in artifacts.items():
                mlflow.log_text(text, name)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=model.python_model,
                artifacts={name: str(path) for name, path in model.files.items()},
                pip_requirements=list(model.pip_requirements),
                registered_model_name=experiment,
            )
        version = str(info.registered_model_version)
        if description:
            client.update_model_version(experiment, version, description=description)
        for key, value in tags.items():
            client.set_model_version_tag(experiment, version, key, value)
        client.set_registered_model_alias(experiment, CHALLENGER, version)
        return RegisteredModel(name=experiment, version=version, run_id=run.info.run_id, experiment_id=experiment_id)

    def load_model(self, name: str, version: str):
        """A registered version's model as an MLflow pyfunc."""
        import mlflow.pyfunc

        self.client()
        return mlflow.pyfunc.load_model(f"models:/{name}/{version}")

    def facts(self, name: str, version: str) -> ModelVersionFacts:
        """Tags, run metrics and aliases of a model version; a LookupError names a version that does not exist."""
        from mlflow.exceptions import MlflowException

        client = self.client()
        try:
            mv = client.get_model_version(name, version)
        except MlflowException:
            raise LookupError(f"model {name!r} has no version {version!r} in {self.tracking_uri}") from None
        metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
        tags = dict(mv.tags)
        return ModelVersionFacts(name, str(mv.version), mv.run_id, tags, dict(metrics), list(mv.aliases),
                                 self._trained_datasets(mv.run_id, tags))

    def _trained_datasets(self, run_id: str | None, tags: dict[str, str]) -> list[dict]:
        """The dataset versions a run recorded; versions trained before the artifact existed kept them in a tag."""
        from mlflow.exceptions import MlflowException

        if run_id is None:
            return []
        try:
            return json.loads(self.load_text(run_id, DATASETS_ARTIFACT))
        except (MlflowException, OSError):
            return json.loads(tags["datasets"]) if tags.get("datasets", "").startswith("[") else []

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version an alias points to, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client().get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def record_decision(self, name: str, version: str, promoted: bool, reason: str, previous: str | None) -> None:
        """Write the gate's decision on the version; `champion` moves only when its predictions are published."""
        client = self.client()
        client.set_model_version_tag(name, version, "promotion_decision", "promoted" if promoted else "rejected")
        client.set_model_version_tag(name, version, "promotion_reason", reason[:5000])
        if promoted:
            client.set_model_version_tag(name, version, "previous_champion", previous or "")

    def open_training_runs(self, experiment: str) -> dict[str, str]:
        """Training runs of an experiment still marked RUNNING, each with the Dagster run that started it."""
        found = self.client().get_experiment_by_name(experiment)
        if found is None:
            return {}
        runs = self.client().search_runs([found.experiment_id], "attributes.status = 'RUNNING'")
        return {run.info.run_id: run.data.tags["dagster_run_id"] for run in runs if run.data.tags.get("dagster_run_id")}

    def training_runs_of(self, experiment: str, dagster_run_id: str) -> list[str]:
        """The MLflow runs a Dagster run started, whatever their status."""
        found = self.client().get_experiment_by_name(experiment)
        if found is None:
            return []
        return [run.info.run_id for run in self.client().search_runs([found.experiment_id], f"tags.dagster_run_id = '{dagster_run_id}'")]

    def undecided_versions(self, name: str, run_ids: list[str]) -> list[ModelVersionFacts]:
        """The versions these runs registered that the promotion gate never decided on, oldest first."""
        client = self.client()
        found = [mv for run_id in run_ids for mv in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")]
        undecided = sorted({int(mv.version) for mv in found if "promotion_decision" not in mv.tags})
        return [self.facts(name, str(version)) for version in undecided]

    def abandon_version(self, name: str, version: str, reason: str) -> bool:
        """Record that the gate will never decide on a version and take `challenger` off it; say whether it had it."""
        client = self.client()
        client.set_model_version_tag(name, version, "promotion_decision", "abandoned")
        client.set_model_version_tag(name, version, "promotion_reason", reason[:5000])
        if self.alias_version(name, CHALLENGER) != version:
            return False
        client.delete_registered_model_alias(name, CHALLENGER)
        return True

    def fail_run(self, run_id: str, reason: str) -> None:
        """Mark a run that will never end by itself FAILED, saying why."""
        client = self.client()
        client.set_tag(run_id, "failure_reason", reason[:5000])
        client.set_terminated(run_id, "FAILED")

    def set_champion(self, name: str, version: str) -> None:
        """Point `champion` at a promoted version whose predictions were just published."""
        self.client().set_registered_model_alias(name, CHAMPION, version)

    def move_champion(self, name: str, version: str, reason: str) -> None:
        """Point `champion` at an earlier version (rollback), recording why on it."""
        client = self.client()
        client.get_model_version(name, version)
        client.set_model_version_tag(name, version, "rollback_reason", reason[:5000])
        client.set_registered_model_alias(name, CHAMPION, version)

    def log_predictions(self, run_id: str, table: pd.DataFrame) -> None:
        """Keep a version's predictions with its run, so it can be re-published on rollback (a Spark table as the folder
        of parquet parts its executors write)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(PREDICTIONS_ARTIFACT).name
            if is_spark_frame(table):
                table.write.parquet(str(path))
                # Spark's markers and checksums are no part of the table.
                for marker in [*path.glob("_*"), *path.glob(".*")]:
                    marker.unlink()
                self.client().log_artifacts(run_id, str(path), PREDICTIONS_ARTIFACT)
                return
            table.to_parquet(path, index=False)
            self.client().log_artifact(run_id, str(path), str(Path(PREDICTIONS_ARTIFACT).parent))

    def load_predictions(self, run_id: str) -> pd.DataFrame:
        """The predictions recorded with a run, as pandas (a single parquet file, or the parts of a Spark table in order)."""
        with tempfile.TemporaryDirectory() as tmp:
            return pd.read_parquet(self.client().download_artifacts(run_id, PREDICTIONS_ARTIFACT, tmp))

    def load_text(self, run_id: str, artifact: str) -> str:
        """A text artifact of a run, e.g. the exact config it trained with."""
        with tempfile.TemporaryDirectory() as tmp:
            return Path(self.client().download_artifacts(run_id, artifact, tmp)).read_text()


def log_dataset_inputs(datasets: tuple[TrainingDataset, ...]) -> None:
    """Log each training dataset as an input of the active run (shown in the run's Datasets panel)."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    for dataset in datasets:
        with warnings.catch_warnings():
            # MLflow registers its local source for two URI schemes and warns that a path matches both.
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(dataset.source)
        meta = MetaDataset(source, name=dataset.name, digest=dataset.digest)
        mlflow.log_input(meta, context="training", tags={"versions": str(dataset.versions), "rows": str(dataset.rows)})


def metrics_json(metrics: dict[str, float]) -> str:
    """Metrics as stable JSON text, for artifacts."""
    return json.dumps(metrics, indent=1, sort_keys=True)
