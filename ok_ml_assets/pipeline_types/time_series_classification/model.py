"""The MLflow pyfunc flavour of a trained anomaly detector (imported only when logging or loading a model)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import pandas as pd

from ok_ml_assets.pipeline_types.time_series_classification.recipe import Detector, latest_predictions


class DetectorModel(mlflow.pyfunc.PythonModel):
    """Scores windows it is given (a `series_windows` table): anomaly score and alert flag per row."""

    def load_context(self, context) -> None:
        spec = json.loads(Path(context.artifacts["spec"]).read_text())
        self.detector = Detector(Path(context.artifacts["booster"]).read_text(), spec["best_iteration"], spec["threshold"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """One row per input window, in order."""
        return latest_predictions(self.detector, model_input.reset_index(drop=True))


def model_files(detector: Detector, folder: Path) -> dict[str, Path]:
    """The files the pyfunc loads: the LightGBM booster and its threshold."""
    booster, spec = folder / "booster.txt", folder / "spec.json"
    booster.write_text(detector.booster_text)
    spec.write_text(json.dumps({"best_iteration": detector.best_iteration, "threshold": detector.threshold}))
    return {"booster": booster, "spec": spec}
