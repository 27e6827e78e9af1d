"""The recipe of `tabular_classification`, its stages named as in the talk's config.

dataset_download (the registered versions, oldest first) -> concat_datasets -> split_dataset -> train_model
(prepare_features on the train split, LightGBM with early stopping on validation) -> evaluate (operating threshold
on validation, metrics on test, against the prior-rate baseline) -> predict (the entities of the newest version).

Each stage asks the experiment's engine (`engine.py`, `spark.py`) for the tables; LightGBM, the threshold and the
metrics run here, on the driver, on rows the engine hands over in the same order whatever the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ok_ml_assets import recipes
from ok_ml_assets.pipeline_types.tabular_classification.classifier import (
    Classifier,
    fit_classifier,
    label_codes,
    prediction_table,
)
from ok_ml_assets.pipeline_types.tabular_classification.config import (
    ConcatDatasets,
    Evaluation,
    Features,
    Model,
    SplitDataset,
    TabularClassificationConfig,
)
from ok_ml_assets.pipeline_types.tabular_classification.engine import (
    LABEL_INDEX,
    SPLIT_COLUMN,
    TEST,
    TRAIN,
    VALIDATION,
    VERSION_COLUMN,
    TabularEngine,
    engine_for,
    entities_to_score,
    part,
    split_dataset,
)
from ok_ml_assets.pipeline_types.tabular_classification.metrics import (
    binary_metrics,
    multiclass_metrics,
    threshold_for_precision,
)
from ok_ml_assets.recipes import Stage, VersionFile, stage_index

# A table in the engine's form: pandas (local) or a Spark DataFrame (spark).
Table = Any

__all__ = ["LABEL_INDEX", "SPLIT_COLUMN", "TEST", "TRAIN", "VALIDATION", "VERSION_COLUMN", "Classifier", "VersionFile",
           "entities_to_score", "label_codes", "part", "prediction_table", "split_dataset"]


@dataclass(frozen=True)
class EvaluationReport:
    """Test-split metrics of the model and of the prior-rate baseline, with the operating threshold."""

    model: dict[str, float]
    baseline: dict[str, float]
    threshold: float

    def as_metrics(self) -> dict[str, float]:
        """Flat metric names for tracking: model metrics as is, baseline ones prefixed, plus the threshold."""
        return {**self.model, **{f"baseline_{k}": v for k, v in self.baseline.items()}, "threshold": self.threshold}


def concat_datasets(examples: list[VersionFile], engine: TabularEngine, concat: ConcatDatasets, features: Features,
                    classes: list[str]) -> Table:
    """labelled_examples: every downloaded version in one table, with its version and the label's class index.

    Newest rows win duplicates. The class index (`label_index`; for two classes, 1 marks the positive one) lets
    monitoring bound the label rate.
    """
    return engine.concat(examples, concat.deduplicate_on, features.label_column, classes)


def split_examples(examples: Table, engine: TabularEngine, split: SplitDataset, features: Features) -> Table:
    """dataset_split: each row's split; by time the oldest rows train and the newest test, else stratified at random."""
    return engine.split(examples, split, features)


def model_columns(features: Features) -> list[str]:
    """The columns training and evaluation read on the driver: the label and the feature columns."""
    return [features.label_column, *[c.name for c in features.columns]]


def train_model(split_frame: Table, engine: TabularEngine, features: Features, classes: list[str], model: Model) -> Classifier:
    """classifier: preparation learned on train (by the engine), LightGBM fit on the driver with early stopping on validation."""
    train = engine.part(split_frame, TRAIN)
    preparation = engine.fit_preparation(train, features)
    columns = model_columns(features)
    return fit_classifier(engine.collect(train, columns), engine.collect(engine.part(split_frame, VALIDATION), columns),
                          preparation, features, classes, model)


def score_split(classifier: Classifier, frame: pd.DataFrame, features: Features) -> tuple[np.ndarray, np.ndarray]:
    """(label codes, probabilities) of a split's rows."""
    return label_codes(frame[features.label_column], classifier.classes), classifier.probabilities(frame)


def metrics_of(labels: np.ndarray, probabilities: np.ndarray, classes: list[str], threshold: float, bins: int) -> dict[str, float]:
    """The type's metrics for binary or multiclass probabilities."""
    if len(classes) == 2:
        return binary_metrics(labels, probabilities[:, 1], threshold, bins)
    return multiclass_metrics(labels, probabilities, classes, bins)


def evaluate(classifier: Classifier, split_frame: Table, engine: TabularEngine, features: Features,
             evaluation: Evaluation) -> EvaluationReport:
    """evaluation: the threshold for the target precision on validation, then the model and the prior rate on test."""
    classes, columns = classifier.classes, model_columns(features)
    threshold = 0.5
    if len(classes) == 2:
        validation = engine.collect(engine.part(split_frame, VALIDATION), columns)
        val_labels, val_probabilities = score_split(classifier, validation, features)
        threshold = threshold_for_precision(val_labels, val_probabilities[:, 1], evaluation.target_precision)
    labels, probabilities = score_split(classifier, engine.collect(engine.part(split_frame, TEST), columns), features)
    train_counts = engine.class_counts(engine.part(split_frame, TRAIN), len(classes))
    prior = train_counts / train_counts.sum()
    # The baseline scores every entity with the train prior; a constant needs a threshold at or below it to flag anyone.
    baseline = metrics_of(labels, np.tile(prior, (len(labels), 1)), classes, float(prior[-1]), evaluation.calibration_bins)
    model = metrics_of(labels, probabilities, classes, threshold, evaluation.calibration_bins)
    return EvaluationReport(model=model, baseline=baseline, threshold=threshold)


def with_threshold(classifier: Classifier, report: EvaluationReport) -> Classifier:
    """classifier_at_threshold: the classifier carrying the operating threshold chosen in evaluation."""
    return Classifier(classifier.booster_text, classifier.preparation, classifier.classes, report.threshold,
                      classifier.best_iteration, classifier.importance)


def predict(classifier: Classifier, examples: Table, engine: TabularEngine, features: Features) -> Table:
    """predictions: per entity of the newest version, the predicted class and its score (binary: the positive one)."""
    return engine.score(classifier, engine.entities_to_score(examples, features), features.id_column)


# Recipe inputs: `examples`, a list of VersionFile (the registered versions, oldest first), and `engine`, the experiment's
# engine (engine_for), which run_recipe supplies when the caller does not.
STAGES: tuple[Stage, ...] = (
    Stage("labelled_examples", concat_datasets, ("examples", "engine"), ("concat_datasets", "features", "classes")),
    Stage("dataset_split", split_examples, ("labelled_examples", "engine"), ("split_dataset", "features")),
    Stage("classifier", train_model, ("dataset_split", "engine"), ("features", "classes", "model")),
    Stage("evaluation_report", evaluate, ("classifier", "dataset_split", "engine"), ("features", "evaluation")),
    Stage("classifier_at_threshold", with_threshold, ("classifier", "evaluation_report")),
    Stage("predictions", predict, ("classifier_at_threshold", "labelled_examples", "engine"), ("features",)),
)


def run_recipe(
    config: TabularClassificationConfig, values: Mapping[str, object], targets: Iterable[str] = ("predictions",)
) -> dict[str, object]:
    """Compute `targets` (the predictions by default) from the given values with this type's stages, on the experiment's
    engine unless `values` names one."""
    values = dict(values)
    if "engine" not in values:
        values["engine"] = engine_for(config)
    return recipes.run_recipe(STAGES, config, values, targets)


STAGE = stage_index(STAGES)
