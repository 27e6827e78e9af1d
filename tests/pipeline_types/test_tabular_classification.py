"""tabular_classification's stages on small generated data: split, preparation, training, metrics, payload, pyfunc."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from ok_ml_assets.configs import load_experiment_config
from ok_ml_assets.lifecycle.publication import Provenance
from ok_ml_assets.monitoring.daily import window_frame
from ok_ml_assets.pipeline_types.tabular_classification import recipe
from ok_ml_assets.pipeline_types.tabular_classification.config import Column, Features, SplitDataset
from ok_ml_assets.pipeline_types.tabular_classification.metrics import binary_metrics, threshold_for_precision
from ok_ml_assets.pipeline_types.tabular_classification.payload import message_value
from ok_ml_assets.pipeline_types.tabular_classification.preparation import fit_preparation, prepare
from ok_ml_assets.pipeline_types.tabular_classification.synthetic import change_unit, drop_category, flip_labels, synthetic_days
from ok_ml_assets.settings import PROJECT_ROOT

CONFIGS = PROJECT_ROOT / "asset_configs"


def version_files(folder: Path, generator: str, days: int = 14, seed: int = 3, fault=None) -> list[recipe.VersionFile]:
    """A tiny synthetic world of `generator` written as version files, optionally faulted."""
    files = []
    for tag, frame in list(synthetic_days(generator, "tiny", seed))[:days]:
        path = folder / f"{generator}-{tag}.parquet"
        (fault(frame) if fault else frame).to_parquet(path, index=False)
        files.append(recipe.VersionFile(tag, path))
    return files


def daily(files: list[recipe.VersionFile]) -> dict[str, pd.DataFrame]:
    """The version files as the daily rules on the `examples` dataset read them."""
    return {"examples": window_frame((f.tag, pd.read_parquet(f.path)) for f in files)}


@pytest.fixture(scope="module")
def bots(tmp_path_factory) -> dict:
    """antispam_bots's recipe run to its predictions on the tiny bot world."""
    config = load_experiment_config(CONFIGS / "antispam_bots.yml")
    files = version_files(tmp_path_factory.mktemp("bots"), "bot_accounts")
    return {"config": config, **recipe.run_recipe(config, {"examples": files}, targets=["predictions", "evaluation_report"])}


def test_time_split_trains_on_the_oldest_versions_and_tests_on_the_newest(bots):
    split = bots["dataset_split"]
    newest_train = split.loc[split["split"] == "train", "dataset_version"].max()
    oldest_test = split.loc[split["split"] == "test", "dataset_version"].min()
    assert newest_train <= oldest_test
    shares = split["split"].value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.7, abs=0.01) and shares["test"] == pytest.approx(0.15, abs=0.01)


def test_stratified_split_keeps_the_label_rate_in_every_part():
    rng = np.random.default_rng(0)
    examples = pd.DataFrame({"id": range(2000), "label": np.where(rng.random(2000) < 0.1, "b", "a"),
                             "dataset_version": "2026-11-01"})
    features = Features(id_column="id", label_column="label", columns=[Column(name="x", kind="numeric")])
    split = recipe.split_dataset(examples, SplitDataset(method="stratified", train_size=0.6, val_size=0.2, test_size=0.2), features)
    rates = split.groupby("split")["label"].apply(lambda s: (s == "b").mean())
    assert rates.max() - rates.min() < 0.01


def test_sizes_must_add_up_to_one():
    with pytest.raises(ValueError, match="must be 1"):
        SplitDataset(train_size=0.7, val_size=0.2, test_size=0.2)


def test_preparation_fills_gaps_by_policy_and_learns_categories_on_train_only():
    features = Features(id_column="id", label_column="y", columns=[
        Column(name="a", kind="numeric", missing="median"), Column(name="b", kind="numeric", missing="keep"),
        Column(name="c", kind="categorical", missing="category"), Column(name="d", kind="categorical")])
    train = pd.DataFrame({"a": [1.0, 3.0, None], "b": [1.0, None, 2.0], "c": ["x", "y", None], "d": ["p", "q", "p"]})
    preparation = fit_preparation(train, features)
    later = pd.DataFrame({"a": [None], "b": [None], "c": [None], "d": ["never seen"]})
    row = prepare(later, preparation)[0]
    assert row[0] == 2.0 and np.isnan(row[1]) and row[2] == 2 and np.isnan(row[3])
    assert preparation.categorical_positions == [2, 3]


def test_a_missing_feature_column_is_named():
    features = Features(id_column="id", label_column="y", columns=[Column(name="absent", kind="numeric")])
    with pytest.raises(ValueError, match=r"feature columns \['absent'\] are not in the dataset"):
        fit_preparation(pd.DataFrame({"id": [1], "y": ["a"]}), features)


def test_an_undeclared_label_is_named(tmp_path):
    config = load_experiment_config(CONFIGS / "antispam_bots.yml")
    files = version_files(tmp_path, "bot_accounts", days=2, fault=lambda f: f.assign(label="spammer"))
    with pytest.raises(ValueError, match=r"labels \['spammer'\] are not among the declared classes \['human', 'bot'\]"):
        recipe.run_recipe(config, {"examples": files}, targets=["labelled_examples"])


def test_the_threshold_reaches_the_target_precision_on_the_data_it_was_chosen_on():
    rng = np.random.default_rng(1)
    labels = (rng.random(5000) < 0.05).astype(int)
    scores = np.clip(labels * 0.4 + rng.random(5000) * 0.6, 0, 1)
    threshold = threshold_for_precision(labels, scores, 0.8)
    assert binary_metrics(labels, scores, threshold, 10)["precision_at_threshold"] >= 0.8


def test_the_model_finds_the_bots_that_no_single_feature_separates(bots):
    metrics = bots["evaluation_report"].as_metrics()
    assert metrics["roc_auc"] > 0.9 and metrics["pr_auc"] > 5 * metrics["baseline_pr_auc"]
    assert metrics["baseline_roc_auc"] == 0.5 and metrics["precision_at_threshold"] > 0
    test = recipe.part(bots["dataset_split"], "test")
    labels = (test["label"] == "bot").to_numpy()
    single = max(average_precision_score(labels, sign * test[c].fillna(0)) for c in
                 ("posts_per_day", "friend_requests_per_day", "session_minutes_mean", "link_share", "account_age_days")
                 for sign in (1, -1))
    assert metrics["pr_auc"] > 1.5 * single


def test_predictions_score_each_entity_of_the_newest_version_once(bots):
    predictions, examples = bots["predictions"], bots["labelled_examples"]
    newest = examples[examples["dataset_version"] == examples["dataset_version"].max()]
    assert sorted(predictions["account_id"]) == sorted(newest["account_id"].unique())
    assert predictions["score"].between(0, 1).all() and set(predictions["label"]) <= {"human", "bot"}
    threshold = bots["classifier_at_threshold"].threshold
    assert ((predictions["score"] >= threshold) == predictions["flagged"].astype(bool)).all()


def test_multiclass_clickbait_reports_macro_f1_and_per_class_recall(tmp_path):
    config = load_experiment_config(CONFIGS / "clickbait_posts.yml")
    files = version_files(tmp_path, "clickbait_posts", days=4, seed=5)
    values = recipe.run_recipe(config, {"examples": files}, targets=["evaluation_report", "predictions"])
    metrics = values["evaluation_report"].as_metrics()
    assert metrics["macro_f1"] > metrics["baseline_macro_f1"] and {"recall_borderline", "recall_clickbait"} <= set(metrics)
    assert config.recorded_metrics() >= {"macro_f1", "recall_normal"}
    assert (values["predictions"]["probabilities"].map(len) == 3).all()


def test_faults_change_what_monitoring_looks_at():
    frame = next(synthetic_days("bot_accounts", "tiny", 1))[1]
    assert (flip_labels(frame, share=0.5)["label"] == "bot").mean() > 0.2
    assert change_unit(frame, "session_minutes_mean")["session_minutes_mean"].median() > 50 * frame["session_minutes_mean"].median()
    assert "vn" not in set(drop_category(frame, "country", "vn")["country"].dropna())


def test_message_is_versioned_json_keyed_by_entity():
    provenance = Provenance("antispam_bots", "antispam_bots", "2", "run-1", "2026-11-29T00:00:00+00:00")
    value = json.loads(message_value(42, "bot", 0.91, 1, ["human", "bot"], [0.09, 0.91], provenance))
    assert value == {"schema": "ok_ml.classification", "version": 1, "entity_id": 42, "label": "bot", "score": 0.91,
                     "flagged": True, "probabilities": {"human": 0.09, "bot": 0.91}, "experiment": "antispam_bots",
                     "model": {"name": "antispam_bots", "version": "2"}, "run_id": "run-1",
                     "generated_at": "2026-11-29T00:00:00+00:00"}


def test_the_logged_pyfunc_scores_like_the_recipe(bots, tmp_path, monkeypatch):
    import mlflow

    from ok_ml_assets.pipeline_types.tabular_classification.model import ClassifierModel, model_files

    classifier = bots["classifier_at_threshold"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("pyfunc", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.pyfunc.log_model(name="model", python_model=ClassifierModel(),
                                       artifacts={k: str(v) for k, v in model_files(classifier, "account_id", tmp_path).items()})
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    entities = recipe.entities_to_score(bots["labelled_examples"], bots["config"].features)
    served = loaded.predict(entities)
    pd.testing.assert_frame_equal(served.drop(columns="probabilities"), bots["predictions"].drop(columns="probabilities"))


@pytest.mark.parametrize(("fault", "check"), [
    (lambda f: flip_labels(f, share=0.5), "label_index_mean_between"),
    (lambda f: drop_category(f, "country", "vn"), "country_categories_present"),
])
def test_monitoring_catches_each_injected_fault_in_the_labelled_examples(tmp_path, fault, check):
    from ok_ml_assets.monitoring.evaluate import evaluate

    config = load_experiment_config(CONFIGS / "antispam_bots.yml")
    files = version_files(tmp_path, "bot_accounts", days=3, fault=fault)
    examples = recipe.run_recipe(config, {"examples": files}, targets=["labelled_examples"])["labelled_examples"]
    rules = config.monitoring["labelled_examples"]
    failed = {o.check_name for o in evaluate("labelled_examples", rules, examples, context_data=daily(files)) if o.blocking}
    assert check in failed
    clean_files = version_files(tmp_path, "bot_accounts", days=3)
    clean = recipe.run_recipe(config, {"examples": clean_files}, targets=["labelled_examples"])
    assert not [o for o in evaluate("labelled_examples", rules, clean["labelled_examples"], context_data=daily(clean_files)) if o.blocking]
