"""MLflow: training runs with params, metrics, artifacts and lineage tags, and registered model versions."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np


@dataclass(frozen=True)
class RegisteredModel:
    """A model version in the MLflow Model Registry and the run that trained it."""

    name: str
    version: str
    run_id: str
    experiment_id: str


class MlflowResource(dg.ConfigurableResource):
    """An MLflow tracking store and model registry: local sqlite by default, a tracking server by URI."""

    tracking_uri: str
    artifact_root: str = ""

    def _client(self):
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return mlflow.MlflowClient(self.tracking_uri, self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        """The MLflow experiment of an ok-ml experiment, created with the configured artifact root."""
        client = self._client()
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = f"{self.artifact_root.rstrip('/')}/{name}" if self.artifact_root else None
        return client.create_experiment(name, artifact_location=location)

    def log_training(
        self,
        experiment: str,
        params: dict[str, object],
        metrics: dict[str, float],
        tags: dict[str, str],
        artifacts: dict[str, str],
        embeddings: dict[str, np.ndarray],
    ) -> RegisteredModel:
        """Record one training run and register its model as a new version named after the experiment."""
        import mlflow

        from ok_ml_assets.resources.mlflow_model import RecommenderModel

        self._client()
        experiment_id = self.experiment_id(experiment)
        with mlflow.start_run(experiment_id=experiment_id, tags=tags) as run, tempfile.TemporaryDirectory() as tmp:
            mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
            mlflow.log_metrics(metrics)
            for name, text in artifacts.items():
                mlflow.log_text(text, name)
            weights = Path(tmp) / "embeddings.npz"
            np.savez(weights, **embeddings)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=RecommenderModel(),
                artifacts={"embeddings": str(weights)},
                pip_requirements=["ok-ml-assets", "numpy", "pandas", "scipy"],
                registered_model_name=experiment,
            )
            version = str(info.registered_model_version)
        client = self._client()
        for key, value in tags.items():
            client.set_model_version_tag(experiment, version, key, value)
        client.set_model_version_tag(experiment, version, "metrics", json.dumps(metrics, sort_keys=True))
        return RegisteredModel(name=experiment, version=version, run_id=run.info.run_id, experiment_id=experiment_id)
