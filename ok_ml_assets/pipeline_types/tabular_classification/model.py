"""The MLflow pyfunc flavour of a trained classifier (imported only when logging or loading a model)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import pandas as pd

from ok_ml_assets.pipeline_types.tabular_classification.classifier import Classifier, prediction_table
from ok_ml_assets.pipeline_types.tabular_classification.preparation import Preparation


class ClassifierModel(mlflow.pyfunc.PythonModel):
    """Scores the entities it is given (a table with the id and feature columns): label, score, flag, probabilities."""

    def load_context(self, context) -> None:
        spec = json.loads(Path(context.artifacts["spec"]).read_text())
        self.id_column = spec["id_column"]
        self.classifier = Classifier(
            booster_text=Path(context.artifacts["booster"]).read_text(),
            preparation=Preparation.from_dict(spec["preparation"]),
            classes=spec["classes"], threshold=spec["threshold"], best_iteration=spec["best_iteration"],
            importance=pd.DataFrame(),
        )

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """One row per input row, in order."""
        return prediction_table(self.classifier, model_input.reset_index(drop=True), self.id_column)


def model_files(classifier: Classifier, id_column: str, folder: Path) -> dict[str, Path]:
    """The files the pyfunc loads: the LightGBM booster and a JSON spec of its preparation, classes and threshold."""
    booster, spec = folder / "booster.txt", folder / "spec.json"
    booster.write_text(classifier.booster_text)
    spec.write_text(json.dumps({"id_column": id_column, "preparation": classifier.preparation.to_dict(),
                                "classes": classifier.classes, "threshold": classifier.threshold,
                                "best_iteration": classifier.best_iteration}))
    return {"booster": booster, "spec": spec}
