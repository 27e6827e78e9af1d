"""The recipe of `tabular_classification`, its stages named as in the talk's config.

dataset_download (the registered versions, oldest first) -> concat_datasets -> split_dataset -> train_model
(prepare_features on the train split, LightGBM with early stopping on validation) -> evaluate (operating threshold
on validation, metrics on test, against the prior-rate baseline) -> predict (the entities of the newest version).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ok_ml_assets import recipes
from ok_ml_assets.pipeline_types.tabular_classification.config import (
    ConcatDatasets,
    Evaluation,
    Features,
    Model,
    SplitDataset,
    TabularClassificationConfig,
)
from ok_ml_assets.pipeline_types.tabular_classification.metrics import (
    binary_metrics,
    multiclass_metrics,
    threshold_for_precision,
)
from ok_ml_assets.pipeline_types.tabular_classification.preparation import Preparation, fit_preparation, prepare
from ok_ml_assets.recipes import Stage, VersionFile, stage_index

VERSION_COLUMN = "dataset_version"
LABEL_INDEX = "label_index"
SPLIT_COLUMN = "split"
TRAIN, VALIDATION, TEST = "train", "validation", "test"


@dataclass(frozen=True)
class Classifier:
    """A trained model with everything scoring needs: the booster, the preparation, the classes, the threshold."""

    booster_text: str
    preparation: Preparation
    classes: list[str]
    threshold: float
    best_iteration: int
    importance: pd.DataFrame

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows x classes probabilities of a table holding the feature columns."""
        import lightgbm as lgb

        raw = lgb.Booster(model_str=self.booster_text).predict(prepare(frame, self.preparation), num_iteration=self.best_iteration)
        return np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw


@dataclass(frozen=True)
class EvaluationReport:
    """Test-split metrics of the model and of the prior-rate baseline, with the operating threshold."""

    model: dict[str, float]
    baseline: dict[str, float]
    threshold: float

    def as_metrics(self) -> dict[str, float]:
        """Flat metric names for tracking: model metrics as is, baseline ones prefixed, plus the threshold."""
        return {**self.model, **{f"baseline_{k}": v for k, v in self.baseline.items()}, "threshold": self.threshold}


def concat_datasets(examples: list[VersionFile], concat: ConcatDatasets, features: Features, classes: list[str]) -> pd.DataFrame:
    """labelled_examples: every downloaded version in one table, with its version and the label's class index.

    Newest rows win duplicates. The class index (`label_index`; for two classes, 1 marks the positive one) lets
    monitoring bound the label rate.
    """
    if not examples:
        raise ValueError("no registered version of the labelled dataset in the window")
    table = pd.concat([pd.read_parquet(f.path).assign(**{VERSION_COLUMN: f.tag}) for f in examples], ignore_index=True)
    if concat.deduplicate_on:
        table = table.drop_duplicates(concat.deduplicate_on, keep="last")
    table = table.reset_index(drop=True)
    return table.assign(**{LABEL_INDEX: label_codes(table[features.label_column], classes)})


def label_codes(labels: pd.Series, classes: list[str]) -> np.ndarray:
    """Each label's index in `classes`; an unknown label is an error naming it."""
    codes = pd.Categorical(labels.astype(str), categories=classes).codes
    if (codes < 0).any():
        unknown = sorted(set(labels.astype(str)) - set(classes))
        raise ValueError(f"labels {unknown[:5]} are not among the declared classes {classes}")
    return codes.astype(np.int64)


def split_dataset(examples: pd.DataFrame, split: SplitDataset, features: Features) -> pd.DataFrame:
    """dataset_split: each row's split; by time the oldest rows train and the newest test, else stratified at random."""
    n = len(examples)
    n_train, n_val = int(round(n * split.train_size)), int(round(n * split.val_size))
    if split.method == "time":
        order = np.argsort(examples[VERSION_COLUMN].to_numpy(), kind="stable")
    else:
        from sklearn.model_selection import train_test_split

        labels = examples[features.label_column].astype(str).to_numpy()
        positions = np.arange(n)
        train, rest = train_test_split(positions, train_size=n_train, stratify=labels, random_state=split.seed)
        val, test = train_test_split(rest, train_size=n_val, stratify=labels[rest], random_state=split.seed)
        order = np.concatenate([train, val, test])
    parts = np.empty(n, dtype=object)
    parts[order[:n_train]], parts[order[n_train:n_train + n_val]], parts[order[n_train + n_val:]] = TRAIN, VALIDATION, TEST
    result = examples.assign(**{SPLIT_COLUMN: parts})
    for part in (TRAIN, VALIDATION, TEST):
        if not (result[SPLIT_COLUMN] == part).any():
            raise ValueError(f"split_dataset left the {part} split empty ({n} rows)")
    return result


def part(split_frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows of one split."""
    return split_frame[split_frame[SPLIT_COLUMN] == name]


def class_weights(codes: np.ndarray, n_classes: int, policy: str) -> np.ndarray:
    """Per-row weights: "balanced" gives every class the same total weight, so rare positives count."""
    if policy == "none":
        return np.ones(len(codes))
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    return (len(codes) / (n_classes * np.maximum(counts, 1)))[codes]


def lightgbm_params(model: Model, n_classes: int) -> dict:
    """LightGBM's parameters for a binary or multiclass objective, deterministic for a seed."""
    objective = {"objective": "binary"} if n_classes == 2 else {"objective": "multiclass", "num_class": n_classes}
    return {**objective, "num_leaves": model.num_leaves, "learning_rate": model.learning_rate,
            "min_child_samples": model.min_child_samples, "feature_fraction": model.feature_fraction,
            "seed": model.seed, "deterministic": True, "force_row_wise": True, "verbosity": -1}


def train_model(split_frame: pd.DataFrame, features: Features, classes: list[str], model: Model) -> Classifier:
    """classifier: preparation learned on train, LightGBM fit on train with early stopping on validation."""
    import lightgbm as lgb

    train, val = part(split_frame, TRAIN), part(split_frame, VALIDATION)
    preparation = fit_preparation(train, features)
    train_codes, val_codes = label_codes(train[features.label_column], classes), label_codes(val[features.label_column], classes)
    categorical = preparation.categorical_positions
    train_set = lgb.Dataset(prepare(train, preparation), train_codes, categorical_feature=categorical, free_raw_data=False,
                            weight=class_weights(train_codes, len(classes), model.class_weight))
    val_set = lgb.Dataset(prepare(val, preparation), val_codes, categorical_feature=categorical, reference=train_set,
                          weight=class_weights(val_codes, len(classes), model.class_weight))
    booster = lgb.train(lightgbm_params(model, len(classes)), train_set, num_boost_round=model.n_estimators,
                        valid_sets=[val_set], callbacks=[lgb.early_stopping(model.early_stopping_rounds, verbose=False)])
    importance = pd.DataFrame({"feature": preparation.order,
                               "gain": booster.feature_importance("gain", iteration=booster.best_iteration),
                               "splits": booster.feature_importance("split", iteration=booster.best_iteration)})
    return Classifier(booster.model_to_string(), preparation, list(classes), 0.5, int(booster.best_iteration or 0),
                      importance.sort_values("gain", ascending=False, ignore_index=True))


def score_split(classifier: Classifier, frame: pd.DataFrame, features: Features) -> tuple[np.ndarray, np.ndarray]:
    """(label codes, probabilities) of a split."""
    return label_codes(frame[features.label_column], classifier.classes), classifier.probabilities(frame)


def metrics_of(labels: np.ndarray, probabilities: np.ndarray, classes: list[str], threshold: float, bins: int) -> dict[str, float]:
    """The type's metrics for binary or multiclass probabilities."""
    if len(classes) == 2:
        return binary_metrics(labels, probabilities[:, 1], threshold, bins)
    return multiclass_metrics(labels, probabilities, classes, bins)


def evaluate(classifier: Classifier, split_frame: pd.DataFrame, features: Features, evaluation: Evaluation) -> EvaluationReport:
    """evaluation: the threshold for the target precision on validation, then the model and the prior rate on test."""
    classes = classifier.classes
    threshold = 0.5
    if len(classes) == 2:
        val_labels, val_probabilities = score_split(classifier, part(split_frame, VALIDATION), features)
        threshold = threshold_for_precision(val_labels, val_probabilities[:, 1], evaluation.target_precision)
    labels, probabilities = score_split(classifier, part(split_frame, TEST), features)
    train_labels = label_codes(part(split_frame, TRAIN)[features.label_column], classes)
    prior = np.bincount(train_labels, minlength=len(classes)) / len(train_labels)
    # The baseline scores every entity with the train prior; a constant needs a threshold at or below it to flag anyone.
    baseline = metrics_of(labels, np.tile(prior, (len(labels), 1)), classes, float(prior[-1]), evaluation.calibration_bins)
    model = metrics_of(labels, probabilities, classes, threshold, evaluation.calibration_bins)
    return EvaluationReport(model=model, baseline=baseline, threshold=threshold)


def with_threshold(classifier: Classifier, report: EvaluationReport) -> Classifier:
    """classifier_at_threshold: the classifier carrying the operating threshold chosen in evaluation."""
    return Classifier(classifier.booster_text, classifier.preparation, classifier.classes, report.threshold,
                      classifier.best_iteration, classifier.importance)


def entities_to_score(examples: pd.DataFrame, features: Features) -> pd.DataFrame:
    """The entities of the newest version, one row each."""
    newest = examples[examples[VERSION_COLUMN] == examples[VERSION_COLUMN].max()]
    return newest.drop_duplicates(features.id_column, keep="last").reset_index(drop=True)


def predict(classifier: Classifier, examples: pd.DataFrame, features: Features) -> pd.DataFrame:
    """predictions: per entity of the newest version, the predicted class and its score (binary: the positive one)."""
    entities = entities_to_score(examples, features)
    return prediction_table(classifier, entities, features.id_column)


def prediction_table(classifier: Classifier, entities: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """Per entity: `label`, `score`, `flagged` (binary: score at or above the threshold) and every class's probability."""
    probabilities = classifier.probabilities(entities)
    classes = np.asarray(classifier.classes)
    if len(classes) == 2:
        score = probabilities[:, 1]
        flagged = score >= classifier.threshold
        label = np.where(flagged, classes[1], classes[0])
    else:
        best = probabilities.argmax(axis=1)
        score, label, flagged = probabilities.max(axis=1), classes[best], best != 0
    return pd.DataFrame({
        id_column: entities[id_column].to_numpy(),
        "label": label,
        "score": score.astype(np.float64),
        "flagged": flagged.astype(np.int64),
        "probabilities": [row.tolist() for row in probabilities],
    })


STAGES: tuple[Stage, ...] = (
    Stage("labelled_examples", concat_datasets, ("examples",), ("concat_datasets", "features", "classes")),
    Stage("dataset_split", split_dataset, ("labelled_examples",), ("split_dataset", "features")),
    Stage("classifier", train_model, ("dataset_split",), ("features", "classes", "model")),
    Stage("evaluation_report", evaluate, ("classifier", "dataset_split"), ("features", "evaluation")),
    Stage("classifier_at_threshold", with_threshold, ("classifier", "evaluation_report")),
    Stage("predictions", predict, ("classifier_at_threshold", "labelled_examples"), ("features",)),
)


def run_recipe(
    config: TabularClassificationConfig, values: Mapping[str, object], targets: Iterable[str] = ("predictions",)
) -> dict[str, object]:
    """Compute `targets` (the predictions by default) from the given values with this type's stages."""
    return recipes.run_recipe(STAGES, config, values, targets)


STAGE = stage_index(STAGES)
