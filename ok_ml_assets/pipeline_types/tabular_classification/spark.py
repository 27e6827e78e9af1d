"""The heavy stages of `tabular_classification` on Spark: the window's examples, the split, the preparation's statistics
and the newest version's scores, with the same rows in the same order as the local engine; LightGBM trains on the driver.

Every table carries `row_id`, the row's position in the local engine's table (versions oldest first, each file in its own
row order, newest rows winning duplicates), so the time split, the rows collected for training and the stored tables
follow exactly the local order. A stratified split is scikit-learn's seeded permutation of the whole label column: it
is computed on the driver from the collected labels (one column) with the local function and joined back by `row_id`.
Scores are computed on the executors (`mapInPandas` with the classifier shipped to each task): the same local
preparation and booster per batch, so they equal the local scores whatever the batching.

The examples, the split and the scores are checkpointed on the executors (memory, then disk) when made: every later
step reads them several times (counts, statistics, the rows training needs, the stored copy), never recomputing the
window's reads, deduplication and row numbering.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import reduce

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ok_ml_assets.engines import spark as spark_engine
from ok_ml_assets.pipeline_types.tabular_classification.classifier import Classifier, prediction_table
from ok_ml_assets.pipeline_types.tabular_classification.config import Features, SplitDataset
from ok_ml_assets.pipeline_types.tabular_classification.engine import (
    LABEL_INDEX,
    ROW_ID,
    SPLIT_COLUMN,
    TEST,
    TRAIN,
    VALIDATION,
    VERSION_COLUMN,
    require_every_split,
    split_parts,
    split_sizes,
    stratified_order,
)
from ok_ml_assets.pipeline_types.tabular_classification.preparation import FIXED_FILLS, Preparation, statistic_fill
from ok_ml_assets.recipes import VersionFile

# Working columns of the concatenation: the file's place in the window and the row's place in its file.
FILE_INDEX, FILE_ROW = "_ok_ml_file", "_ok_ml_file_row"
RANK = "_ok_ml_rank"
FLOATING = (T.DoubleType, T.FloatType)


def without_nan(column: Column, data_type: T.DataType) -> Column:
    """A column whose NaNs are nulls, as pandas treats them (Spark's aggregates would otherwise propagate NaN)."""
    return F.when(~F.isnan(column), column) if isinstance(data_type, FLOATING) else column


def first_per(table: DataFrame, keys: Sequence[str], *order: Column) -> DataFrame:
    """One row per `keys`: the first by `order`."""
    return (table.withColumn(RANK, F.row_number().over(Window.partitionBy(*keys).orderBy(*order)))
            .where(F.col(RANK) == 1).drop(RANK))


def class_index(label: Column, classes: list[str]) -> Column:
    """The label's index in `classes` (-1 when it is not one of them, null when missing)."""
    return (F.array_position(F.array(*[F.lit(c) for c in classes]), label.cast("string")) - 1).cast("bigint")


class SparkEngine:
    """`tabular_classification` on a Spark session: `local[*]` by default, any cluster by OK_ML_SPARK_MASTER."""

    name = "spark"

    def __init__(self, spark: SparkSession):
        self.spark = spark

    @classmethod
    def from_resource(cls, resource) -> SparkEngine:
        """The engine on the run's Spark resource (dagster-pyspark's), or on the process's session outside a run."""
        session = getattr(resource, "spark_session", None) if resource is not None else None
        return cls(session or spark_engine.session())

    def _version(self, index: int, file: VersionFile) -> DataFrame:
        """One version file with its tag, its place in the window and each row's place in the file."""
        frame = spark_engine.read_parquet(self.spark, [file.path])
        return frame.withColumns({FILE_ROW: F.col("_metadata.row_index"), FILE_INDEX: F.lit(index),
                                  VERSION_COLUMN: F.lit(file.tag)})

    def concat(self, examples: Sequence[VersionFile], deduplicate_on: Sequence[str], label_column: str,
               classes: list[str]) -> DataFrame:
        """The window's versions in one table, in the local row order, with version, class index and `row_id`."""
        if not examples:
            raise ValueError("no registered version of the labelled dataset in the window")
        table = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True),
                       [self._version(i, f) for i, f in enumerate(examples)])
        if deduplicate_on:
            table = first_per(table, deduplicate_on, F.desc(FILE_INDEX), F.desc(FILE_ROW))
        table = table.withColumn(LABEL_INDEX, class_index(F.col(label_column), classes))
        # One pass counts each file's rows and the undeclared labels; only a failure looks the labels up by name.
        unknown = F.col(LABEL_INDEX).isNull() | (F.col(LABEL_INDEX) < 0)
        counts = table.groupBy(FILE_INDEX).agg(F.count(F.lit(1)), F.count(F.when(unknown, 1))).collect()
        if any(row[2] for row in counts):
            raise ValueError(f"labels {undeclared_labels(table, label_column)} are not among the declared classes {classes}")
        table = with_row_ids(table, [dict((row[0], row[1]) for row in counts).get(i, 0) for i in range(len(examples))],
                             renumber=bool(deduplicate_on))
        columns = [c for c in table.columns if c not in (FILE_INDEX, FILE_ROW, ROW_ID)]
        return table.select(*columns, ROW_ID).orderBy(ROW_ID).localCheckpoint()

    def split(self, examples: DataFrame, split: SplitDataset, features: Features) -> DataFrame:
        """The examples with each row's split, exactly the local engine's assignment."""
        if split.method == "time":
            result = self._time_split(examples, split)
        else:
            result = self._stratified_split(examples, split, features.label_column)
        return result.orderBy(ROW_ID).localCheckpoint()

    def _time_split(self, examples: DataFrame, split: SplitDataset) -> DataFrame:
        """By time: rows ranked by version (oldest first), then by row order within a version, cut at the split sizes."""
        counts = sorted((row[0], row[1]) for row in examples.groupBy(VERSION_COLUMN).count().collect())
        n = sum(count for _, count in counts)
        n_train, n_val = split_sizes(n, split)
        require_every_split(n, n_train, n_val)
        starts = np.concatenate([[0], np.cumsum([count for _, count in counts])[:-1]]).astype(np.int64)
        start = F.create_map(*[F.lit(x) for (tag, _), s in zip(counts, starts) for x in (tag, int(s))])[F.col(VERSION_COLUMN)]
        position = start.cast("bigint") + F.row_number().over(Window.partitionBy(VERSION_COLUMN).orderBy(ROW_ID)) - 1
        part = F.when(position < n_train, TRAIN).when(position < n_train + n_val, VALIDATION).otherwise(TEST)
        return examples.withColumn(SPLIT_COLUMN, part)

    def _stratified_split(self, examples: DataFrame, split: SplitDataset, label_column: str) -> DataFrame:
        """Stratified: the local seeded permutation of the label column (collected alone), joined back by row id."""
        labels = examples.select(ROW_ID, label_column).orderBy(ROW_ID).toPandas()
        n_train, n_val = split_sizes(len(labels), split)
        order = stratified_order(labels[label_column].astype(str).to_numpy(), n_train, n_val, split.seed)
        require_every_split(len(labels), n_train, n_val)
        parts = split_parts(order, n_train, n_val).astype(str)
        assignment = self.spark.createDataFrame(pd.DataFrame({ROW_ID: labels[ROW_ID].to_numpy(np.int64), SPLIT_COLUMN: parts}))
        return examples.join(assignment, ROW_ID).select(*examples.columns, SPLIT_COLUMN)

    def part(self, split_frame: DataFrame, name: str) -> DataFrame:
        """The rows of one split."""
        return split_frame.where(F.col(SPLIT_COLUMN) == name)

    def fit_preparation(self, train: DataFrame, features: Features) -> Preparation:
        """Fill values (mean, median) and category levels from one Spark aggregation over the train rows."""
        missing = [c.name for c in features.columns if c.name not in train.columns]
        if missing:
            raise ValueError(f"feature columns {missing} are not in the dataset; it has {sorted(train.columns)}")
        types = {field.name: field.dataType for field in train.schema.fields}
        aggregates = []
        for column in features.columns:
            values = without_nan(F.col(column.name), types[column.name])
            if column.kind == "categorical":
                aggregates.append(F.collect_set(values.cast("string")).alias(column.name))
            elif column.missing not in FIXED_FILLS:
                number = without_nan(values.cast("double"), T.DoubleType())
                statistic = F.avg(number) if column.missing == "mean" else F.percentile(number, 0.5)
                aggregates.append(statistic.alias(column.name))
        row = train.agg(*aggregates).first().asDict() if aggregates else {}
        numeric, categorical, missing_level = {}, {}, {}
        for column in features.columns:
            if column.kind == "categorical":
                categorical[column.name] = sorted(row[column.name])
                missing_level[column.name] = column.missing == "category"
            elif column.missing in FIXED_FILLS:
                numeric[column.name] = FIXED_FILLS[column.missing]
            else:
                numeric[column.name] = statistic_fill(row[column.name])
        return Preparation(numeric, categorical, missing_level, [c.name for c in features.columns])

    def collect(self, table: DataFrame, columns: Sequence[str]) -> pd.DataFrame:
        """The columns a driver-side step reads, in the local row order."""
        return table.select(ROW_ID, *columns).orderBy(ROW_ID).toPandas().drop(columns=ROW_ID)

    def class_counts(self, table: DataFrame, n_classes: int) -> np.ndarray:
        """Rows per class index, counted on the executors."""
        counts = dict(table.groupBy(LABEL_INDEX).count().collect())
        return np.array([counts.get(code, 0) for code in range(n_classes)], dtype=np.int64)

    def entities_to_score(self, examples: DataFrame, features: Features) -> DataFrame:
        """The entities of the newest version, one row each (the last row of an entity listed twice)."""
        newest = examples.agg(F.max(VERSION_COLUMN)).first()[0]
        return first_per(examples.where(F.col(VERSION_COLUMN) == newest), [features.id_column], F.desc(ROW_ID))

    def score(self, classifier: Classifier, entities: DataFrame, id_column: str) -> DataFrame:
        """Every entity's prediction row, scored on the executors in batches, in the local row order."""
        schema = T.StructType([
            T.StructField(ROW_ID, T.LongType()), T.StructField(id_column, entities.schema[id_column].dataType),
            T.StructField("label", T.StringType()), T.StructField("score", T.DoubleType()),
            T.StructField("flagged", T.LongType()), T.StructField("probabilities", T.ArrayType(T.DoubleType())),
        ])

        def scored(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                yield prediction_table(classifier, batch, id_column).assign(**{ROW_ID: batch[ROW_ID].to_numpy()})[schema.names]

        scores = entities.select(ROW_ID, id_column, *classifier.preparation.order).mapInPandas(scored, schema)
        return scores.orderBy(ROW_ID).drop(ROW_ID).localCheckpoint()

    def to_pandas(self, table: DataFrame | pd.DataFrame) -> pd.DataFrame:
        """A table on the driver as the local engine holds it: in row order, without the row id."""
        if isinstance(table, DataFrame) and ROW_ID in table.columns:
            return table.orderBy(ROW_ID).toPandas().drop(columns=ROW_ID)
        return spark_engine.to_pandas(table)


def with_row_ids(table: DataFrame, file_rows: list[int], renumber: bool) -> DataFrame:
    """`row_id`: the row's position in the concatenated table, files in window order, rows in file order.

    `file_rows` are each file's (kept) rows; after deduplication the kept rows of a file are renumbered in file order.
    """
    offsets = np.concatenate([[0], np.cumsum(file_rows)[:-1]]).astype(np.int64)
    offset = F.element_at(F.array(*[F.lit(int(o)).cast("bigint") for o in offsets]), F.col(FILE_INDEX) + 1)
    in_file = F.row_number().over(Window.partitionBy(FILE_INDEX).orderBy(FILE_ROW)) - 1 if renumber else F.col(FILE_ROW)
    return table.withColumn(ROW_ID, offset + in_file)


def undeclared_labels(table: DataFrame, label_column: str) -> list[str]:
    """Up to five labels (in order) that are not declared classes."""
    label = F.coalesce(F.col(label_column).cast("string"), F.lit("None")).alias("label")
    unknown = F.col(LABEL_INDEX).isNull() | (F.col(LABEL_INDEX) < 0)
    return [row[0] for row in table.where(unknown).select(label).distinct().orderBy("label").limit(5).collect()]
