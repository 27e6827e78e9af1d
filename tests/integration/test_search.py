"""Hyperparameter search from the YAML: trials as MLflow child runs, the best one trained, registered and reproducible."""

from __future__ import annotations

import dagster as dg
import pytest

from ok_ml_assets.definitions import build_definitions, build_resources
from ok_ml_assets.orchestration import materialize_refresh
from tests.conftest import relaxed_config, write_config

pytestmark = pytest.mark.integration
NAME = "prod_discovery"
SPACE = {"factors": {"low": 8, "high": 48, "log": True}, "regularization": {"low": 0.01, "high": 5.0, "log": True}}


def test_a_search_logs_each_trial_as_a_child_run_and_trains_the_best(settings, instance, home):
    write_config(home, relaxed_config(search={"trials": 3, "seed": 1, "space": SPACE}))
    result = materialize_refresh(build_definitions(settings), instance, NAME)
    assert result.success
    mlflow = build_resources(settings)["mlflow"]
    facts = mlflow.facts(NAME, "1")
    client = mlflow.client()
    parent = client.get_run(facts.run_id)
    children = client.search_runs([parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{facts.run_id}'")
    assert sorted(c.info.run_name for c in children) == ["trial 0", "trial 1", "trial 2"]
    best = max(children, key=lambda c: c.data.metrics["ndcg_at_10"])
    assert parent.data.params["chosen.factors"] == best.data.params["factors"]
    assert float(parent.data.params["chosen.regularization"]) == pytest.approx(float(best.data.params["regularization"]))
    assert facts.metrics["search_trials"] == 3
    assert facts.metrics["search_best_validation_ndcg_at_10"] == pytest.approx(best.data.metrics["ndcg_at_10"])
    # The holdout scores the chosen model; the trials never saw it (they validate on the days before it).
    assert "ndcg_at_10" in facts.metrics and facts.metrics["ndcg_at_10"] != best.data.metrics["ndcg_at_10"]
    embeddings = instance.fetch_materializations(dg.AssetKey([NAME, "user_embeddings"]), limit=1).records[0]
    assert embeddings.asset_materialization.metadata["factors"].value == int(best.data.params["factors"])
