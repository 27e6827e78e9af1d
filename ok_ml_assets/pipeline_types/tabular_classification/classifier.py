"""The trained classifier and the driver-side LightGBM fit both engines share (Spark prepares the rows, the driver trains).

Training is local on either engine: the prepared train and validation rows, in the labelled table's row order, go to
one LightGBM process, so equal rows give an equal booster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ok_ml_assets.pipeline_types.tabular_classification.config import Features, Model
from ok_ml_assets.pipeline_types.tabular_classification.preparation import Preparation, prepare


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


def label_codes(labels: pd.Series, classes: list[str]) -> np.ndarray:
    """Each label's index in `classes`; an unknown label is an error naming it."""
    codes = pd.Categorical(labels.astype(str), categories=classes).codes
    if (codes < 0).any():
        unknown = sorted(set(labels.astype(str)) - set(classes))
        raise ValueError(f"labels {unknown[:5]} are not among the declared classes {classes}")
    return codes.astype(np.int64)


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


def fit_classifier(train: pd.DataFrame, val: pd.DataFrame, preparation: Preparation, features: Features, classes: list[str],
                   model: Model) -> Classifier:
    """LightGBM fit on the prepared train rows with early stopping on the validation rows (threshold 0.5 until evaluated)."""
    import lightgbm as lgb

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
