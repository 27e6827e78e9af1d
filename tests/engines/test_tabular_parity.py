"""`engine: spark` gives what `engine: local` gives for tabular_classification, on the committed experiments' synthetic worlds.

Both committed experiments run (antispam_bots: binary, time split, dedupe on the id; clickbait_posts: multiclass,
stratified split), each on the tiny world of its `synthetic` section over its window. Tolerances, and why:
- labelled_examples, dataset_split and predictions: equal row for row in the local row order (Spark orders by `row_id`,
  the local position), every value exact; predictions are the local preparation and booster run in executor batches.
- Preparation: fill values within 1e-12 relative (Spark and pandas sum in different orders; Spark's exact percentile
  interpolates the two middle values as 0.5a + 0.5b where numpy takes (a + b) / 2); levels, missing levels, order equal.
- Training is local on both engines on the same rows in the same order: the booster text and every metric are equal
  exactly (the fill values came out bit-equal here; a last-bit difference could move a bin edge, and this test would say).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from ok_ml_assets.configs import load_experiment_config
from ok_ml_assets.pipeline_types.tabular_classification.config import Column
from ok_ml_assets.pipeline_types.tabular_classification.engine import LocalEngine
from ok_ml_assets.pipeline_types.tabular_classification.recipe import VersionFile, run_recipe
from ok_ml_assets.pipeline_types.tabular_classification.spark import ROW_ID, SparkEngine
from ok_ml_assets.pipeline_types.tabular_classification.synthetic import synthetic_days
from ok_ml_assets.settings import PROJECT_ROOT

pytestmark = pytest.mark.spark
EXPERIMENTS = sorted(path.stem for path in (PROJECT_ROOT / "asset_configs").glob("*.yml")
                     if yaml.safe_load(path.read_text()).get("pipeline_type") == "tabular_classification")
TABLES = ("labelled_examples", "dataset_split", "predictions")
FILL_TOLERANCE = 1e-12


def write_window(config, folder, fault=None) -> list[VersionFile]:
    """The experiment's tiny synthetic world as version files, the last `window_days` of them, oldest first."""
    days = list(synthetic_days(config.synthetic.generator, "tiny", config.synthetic.seed))[-config.datasets.examples.window_days:]
    files = []
    for tag, frame in days:
        path = folder / f"{tag}.parquet"
        (fault(frame) if fault else frame).to_parquet(path, index=False)
        files.append(VersionFile(tag, path))
    return files


@pytest.fixture(scope="module")
def runs(tmp_path_factory, spark) -> dict[str, dict]:
    """Per experiment: its config, its files, and the recipe's values on each engine (Spark tables as pandas)."""
    results = {}
    for name in EXPERIMENTS:
        config = load_experiment_config(PROJECT_ROOT / "asset_configs" / f"{name}.yml")
        files = write_window(config, tmp_path_factory.mktemp(name))
        local = run_recipe(config, {"examples": files, "engine": LocalEngine()}, targets=("evaluation_report", "predictions"))
        engine = SparkEngine(spark)
        found = run_recipe(config.model_copy(update={"engine": "spark"}), {"examples": files, "engine": engine},
                           targets=("evaluation_report", "predictions"))
        row_ids = [found[table].select(ROW_ID).toPandas()[ROW_ID].tolist() for table in TABLES[:2]]
        found = {key: engine.to_pandas(value) if key in TABLES else value for key, value in found.items()}
        results[name] = {"config": config, "files": files, "local": local, "spark": found, "row_ids": row_ids}
    return results


def test_both_committed_experiments_are_covered():
    assert {"antispam_bots", "clickbait_posts"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
@pytest.mark.parametrize("table", TABLES)
def test_tables_are_equal_row_for_row(runs, name, table):
    local, spark = runs[name]["local"][table], runs[name]["spark"][table]
    assert len(local) > 1000
    pd.testing.assert_frame_equal(spark, local)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_row_ids_are_the_local_positions(runs, name):
    for row_ids in runs[name]["row_ids"]:
        assert row_ids == list(range(len(runs[name]["local"]["labelled_examples"])))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_preparation_is_equal(runs, name):
    local, spark = runs[name]["local"]["classifier"].preparation, runs[name]["spark"]["classifier"].preparation
    assert (spark.categorical, spark.missing_level, spark.order) == (local.categorical, local.missing_level, local.order)
    assert spark.numeric.keys() == local.numeric.keys()
    for column, fill in local.numeric.items():
        assert (spark.numeric[column] is None) == (fill is None), column
        if fill is not None:
            assert spark.numeric[column] == pytest.approx(fill, rel=FILL_TOLERANCE, abs=0), column
    assert any(fill not in (None, 0.0) for fill in local.numeric.values())  # a median was learned, not only defaults


@pytest.mark.parametrize("policy", ["mean", "median", "zero", "keep"])
def test_every_fill_policy_is_equal(runs, spark, policy):
    """Every numeric policy on the bot world's train split, whose session minutes have gaps."""
    run = runs["antispam_bots"]
    features = run["config"].features
    features = features.model_copy(update={"columns": [
        Column(name=c.name, kind=c.kind, missing=policy if c.kind == "numeric" else c.missing) for c in features.columns]})
    split = run["local"]["dataset_split"]
    local = LocalEngine().fit_preparation(split[split["split"] == "train"], features)
    spark_split = spark.createDataFrame(split)
    found = SparkEngine(spark).fit_preparation(spark_split.where("split = 'train'"), features)
    assert found.categorical == local.categorical and found.numeric.keys() == local.numeric.keys()
    for column, fill in local.numeric.items():
        assert found.numeric[column] == (None if fill is None else pytest.approx(fill, rel=FILL_TOLERANCE, abs=0)), column


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_training_and_metrics_are_equal(runs, name):
    local, spark = runs[name]["local"], runs[name]["spark"]
    assert spark["classifier"].booster_text == local["classifier"].booster_text
    assert spark["classifier"].best_iteration == local["classifier"].best_iteration > 0
    assert spark["evaluation_report"].as_metrics() == local["evaluation_report"].as_metrics()
    pd.testing.assert_frame_equal(spark["classifier"].importance, local["classifier"].importance)


def test_newest_rows_win_duplicates_within_and_across_versions(runs, spark, tmp_path):
    """Ids repeated across days and within a day: both engines keep the same (newest, last) rows in the same order."""
    config = runs["antispam_bots"]["config"]

    def repeat_ids(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(account_id=1_000_000 + np.arange(len(frame)) % 600)

    files = write_window(config.model_copy(update={"datasets": config.datasets.model_copy(update={
        "examples": config.datasets.examples.model_copy(update={"window_days": 4})})}), tmp_path, fault=repeat_ids)
    values = {"examples": files}
    local = run_recipe(config, {**values, "engine": LocalEngine()}, targets=("dataset_split",))
    engine = SparkEngine(spark)
    found = run_recipe(config, {**values, "engine": engine}, targets=("dataset_split",))
    assert len(local["labelled_examples"]) == 600
    for table in ("labelled_examples", "dataset_split"):
        pd.testing.assert_frame_equal(engine.to_pandas(found[table]), local[table])
    entities = engine.to_pandas(engine.entities_to_score(found["labelled_examples"], config.features))
    pd.testing.assert_frame_equal(entities, LocalEngine().entities_to_score(local["labelled_examples"], config.features))


def test_an_undeclared_label_is_named_on_spark(runs, spark, tmp_path):
    config = runs["antispam_bots"]["config"]
    spammers = lambda frame: frame.assign(label=np.where(frame.index % 7 == 0, "spammer", frame["label"]))  # noqa: E731
    files = write_window(config, tmp_path, fault=spammers)
    with pytest.raises(ValueError, match=r"labels \['spammer'\] are not among the declared classes \['human', 'bot'\]"):
        SparkEngine(spark).concat(files[:2], ["account_id"], "label", config.classes)
