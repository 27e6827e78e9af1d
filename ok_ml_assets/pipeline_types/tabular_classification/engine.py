"""The heavy stages of `tabular_classification` behind one interface, with the local implementation (pandas).

The recipe asks an engine for everything that reads the labelled window or scales with it: the concatenated examples,
the split, the preparation's statistics on the train split, the rows training and evaluation hold, and the scores of the
newest version's entities. `spark.SparkEngine` implements the same methods on Spark; LightGBM trains on the driver on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from ok_ml_assets.pipeline_types.tabular_classification.classifier import Classifier, label_codes, prediction_table
from ok_ml_assets.pipeline_types.tabular_classification.config import Features, SplitDataset, TabularClassificationConfig
from ok_ml_assets.pipeline_types.tabular_classification.preparation import Preparation, fit_preparation
from ok_ml_assets.recipes import VersionFile

VERSION_COLUMN = "dataset_version"
LABEL_INDEX = "label_index"
SPLIT_COLUMN = "split"
TRAIN, VALIDATION, TEST = "train", "validation", "test"
# The Spark engine's tables carry each row's position in the local engine's table (Spark keeps no row order of its own).
ROW_ID = "row_id"


class TabularEngine(Protocol):
    """What the recipe asks of an engine; tables are pandas (local) or Spark DataFrames (spark), in the same row order."""

    name: str

    def concat(self, examples: Sequence[VersionFile], deduplicate_on: Sequence[str], label_column: str, classes: list[str]): ...
    def split(self, examples, split: SplitDataset, features: Features): ...
    def part(self, split_frame, name: str): ...
    def fit_preparation(self, train, features: Features) -> Preparation: ...
    def collect(self, table, columns: Sequence[str]) -> pd.DataFrame: ...
    def class_counts(self, table, n_classes: int) -> np.ndarray: ...
    def entities_to_score(self, examples, features: Features): ...
    def score(self, classifier: Classifier, entities, id_column: str): ...
    def to_pandas(self, table) -> pd.DataFrame: ...


def concat_versions(examples: Sequence[VersionFile], deduplicate_on: Sequence[str], label_column: str, classes: list[str]) -> pd.DataFrame:
    """Every version in one table, oldest first, with its version and the label's class index; newest rows win duplicates."""
    if not examples:
        raise ValueError("no registered version of the labelled dataset in the window")
    table = pd.concat([pd.read_parquet(f.path).assign(**{VERSION_COLUMN: f.tag}) for f in examples], ignore_index=True)
    if deduplicate_on:
        table = table.drop_duplicates(list(deduplicate_on), keep="last")
    table = table.reset_index(drop=True)
    return table.assign(**{LABEL_INDEX: label_codes(table[label_column], classes)})


def split_sizes(n: int, split: SplitDataset) -> tuple[int, int]:
    """Rows of the train and validation splits for `n` rows (the test split takes the rest)."""
    return int(round(n * split.train_size)), int(round(n * split.val_size))


def require_every_split(n: int, n_train: int, n_val: int) -> None:
    """Refuse a split that leaves a part empty, naming it."""
    sizes = {TRAIN: min(n_train, n), VALIDATION: min(n_val, max(n - n_train, 0)), TEST: max(n - n_train - n_val, 0)}
    for name, size in sizes.items():
        if size <= 0:
            raise ValueError(f"split_dataset left the {name} split empty ({n} rows)")


def stratified_order(labels: np.ndarray, n_train: int, n_val: int, seed: int) -> np.ndarray:
    """Row positions in split order (train, validation, test): scikit-learn's stratified shuffles, seeded."""
    from sklearn.model_selection import train_test_split

    train, rest = train_test_split(np.arange(len(labels)), train_size=n_train, stratify=labels, random_state=seed)
    val, test = train_test_split(rest, train_size=n_val, stratify=labels[rest], random_state=seed)
    return np.concatenate([train, val, test])


def split_parts(order: np.ndarray, n_train: int, n_val: int) -> np.ndarray:
    """Each position's split, given the positions in split order."""
    parts = np.empty(len(order), dtype=object)
    parts[order[:n_train]], parts[order[n_train:n_train + n_val]], parts[order[n_train + n_val:]] = TRAIN, VALIDATION, TEST
    return parts


def split_dataset(examples: pd.DataFrame, split: SplitDataset, features: Features) -> pd.DataFrame:
    """Each row's split: by time the oldest rows train and the newest test, else stratified at random."""
    n = len(examples)
    n_train, n_val = split_sizes(n, split)
    if split.method == "time":
        order = np.argsort(examples[VERSION_COLUMN].to_numpy(), kind="stable")
    else:
        order = stratified_order(examples[features.label_column].astype(str).to_numpy(), n_train, n_val, split.seed)
    require_every_split(n, n_train, n_val)
    return examples.assign(**{SPLIT_COLUMN: split_parts(order, n_train, n_val)})


def part(split_frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows of one split."""
    return split_frame[split_frame[SPLIT_COLUMN] == name]


def entities_to_score(examples: pd.DataFrame, features: Features) -> pd.DataFrame:
    """The entities of the newest version, one row each (the last row of an entity listed twice)."""
    newest = examples[examples[VERSION_COLUMN] == examples[VERSION_COLUMN].max()]
    return newest.drop_duplicates(features.id_column, keep="last").reset_index(drop=True)


class LocalEngine:
    """This machine: pandas over the version files, scikit-learn's stratified split, LightGBM scoring in process."""

    name = "local"

    def concat(self, examples: Sequence[VersionFile], deduplicate_on: Sequence[str], label_column: str,
               classes: list[str]) -> pd.DataFrame:
        """The window's versions in one table (see `concat_versions`)."""
        return concat_versions(examples, deduplicate_on, label_column, classes)

    def split(self, examples: pd.DataFrame, split: SplitDataset, features: Features) -> pd.DataFrame:
        """The examples with each row's split."""
        return split_dataset(examples, split, features)

    def part(self, split_frame: pd.DataFrame, name: str) -> pd.DataFrame:
        """The rows of one split, in table order."""
        return part(split_frame, name)

    def fit_preparation(self, train: pd.DataFrame, features: Features) -> Preparation:
        """Fill values and category levels learned on the train rows."""
        return fit_preparation(train, features)

    def collect(self, table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
        """The columns a driver-side step reads, in table order."""
        return table[list(columns)]

    def class_counts(self, table: pd.DataFrame, n_classes: int) -> np.ndarray:
        """Rows per class index."""
        return np.bincount(table[LABEL_INDEX].to_numpy(np.int64), minlength=n_classes)

    def entities_to_score(self, examples: pd.DataFrame, features: Features) -> pd.DataFrame:
        """The newest version's entities, one row each."""
        return entities_to_score(examples, features)

    def score(self, classifier: Classifier, entities: pd.DataFrame, id_column: str) -> pd.DataFrame:
        """Every entity's prediction row."""
        return prediction_table(classifier, entities, id_column)

    def to_pandas(self, table: pd.DataFrame) -> pd.DataFrame:
        """Already pandas."""
        return table


def engine_for(config: TabularClassificationConfig, spark=None) -> TabularEngine:
    """The experiment's engine; `spark` is the run's Spark resource (the process's session when not given)."""
    if config.engine == "local":
        return LocalEngine()
    from ok_ml_assets.pipeline_types.tabular_classification.spark import SparkEngine

    return SparkEngine.from_resource(spark)
