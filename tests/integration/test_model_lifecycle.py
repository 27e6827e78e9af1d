"""MLflow tracking, the promotion gate, rollback and reproduction, on tiny data with the real broker."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import dagster as dg
import mlflow as mlflow_lib
import pandas as pd
import pytest

from ok_ml_assets.configs import load_experiment_config
from ok_ml_assets.definitions import build_definitions, build_resources
from ok_ml_assets.lifecycle import (
    LifecycleError,
    promote_challenger,
    reproduce,
    rollback,
)
from ok_ml_assets.lifecycle.assets import promotion_policy
from ok_ml_assets.lifecycle.promotion import REQUIRED_LINEAGE_TAGS
from ok_ml_assets.orchestration import materialize_refresh
from ok_ml_assets.registry import registry_client
from ok_ml_assets.settings import load_settings
from tests.conftest import relaxed_config, write_config
from tests.kafka_utils import read_topic

pytestmark = pytest.mark.integration
NAME = "prod_discovery"


def refresh(settings, instance):
    return materialize_refresh(build_definitions(settings), instance, NAME)


def test_training_is_tracked_with_lineage_and_becomes_champion(settings, instance):
    assert refresh(settings, instance).success
    mlflow = build_resources(settings)["mlflow"]
    facts = mlflow.facts(NAME, "1")
    assert set(facts.aliases) == {"champion", "challenger"}
    assert all(facts.tags.get(tag) for tag in REQUIRED_LINEAGE_TAGS)
    assert facts.tags["promotion_decision"] == "promoted"
    datasets = facts.datasets
    assert {d["dataset"] for d in datasets} == {"interactions", "subscriptions"}
    assert all(d["md5"] == registry_client(settings).version(d["dataset"], d["tag"]).md5 for d in datasets)
    assert facts.tags["datasets"].startswith("interactions 2026-11-") and len(facts.tags["datasets"]) < 200
    run = mlflow.client().get_run(facts.run_id)
    inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    spans = {name: sorted(d["tag"] for d in datasets if d["dataset"] == name) for name in ("interactions", "subscriptions")}
    assert set(inputs) == {f"{name}@{tags[0]}..{tags[-1]}" for name, tags in spans.items()}
    assert all(tag.value == "training" for i in inputs.values() for tag in i.tags if tag.key == "mlflow.data.context")
    experiment = mlflow.client().get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    for metric in ("precision_at_10", "recall_at_10", "map_at_10", "ndcg_at_10"):
        assert 0 < facts.metrics[metric] <= 1 and f"baseline_{metric}" in facts.metrics
    assert run.data.params["model.factors"] == "64" and run.data.params["publication.rollout_fraction"] == "0.5"
    config_text = mlflow.load_text(facts.run_id, "config.yml")
    assert config_text == (settings.configs_dir / f"{NAME}.yml").read_text()
    assert run.data.tags["dagster_run_url"] == f"{settings.dagster_ui_url}/runs/{facts.tags['dagster_run_id']}"
    assert run.info.run_name == f"{NAME} · data to 2026-11-14 · manual run"
    link = f"[{facts.tags['dagster_run_id']}]({run.data.tags['dagster_run_url']})"
    assert f"Trained by Dagster run {link} (manual run)" in run.data.tags["mlflow.note.content"]
    assert link in mlflow.client().get_model_version(NAME, "1").description
    meta = instance.fetch_materializations(dg.AssetKey([NAME, "trained_model"]), limit=1).records[0].asset_materialization.metadata
    assert meta["mlflow_run"].value == f"{settings.mlflow_ui_url}/#/experiments/{run.info.experiment_id}/runs/{facts.run_id}"
    assert meta["mlflow_model_version"].value == f"{settings.mlflow_ui_url}/#/models/{NAME}/versions/1"

    model = mlflow_lib.pyfunc.load_model(f"models:/{NAME}@champion")
    recommendations = pd.read_parquet(settings.assets_dir / NAME / "recommendations.parquet").head(50)
    served = model.predict(pd.DataFrame({"user_id": recommendations["user_id"][::-1]}))
    assert served["user_id"].tolist() == recommendations["user_id"].tolist()
    assert served["source_ids"].map(list).tolist() == recommendations["source_ids"].map(list).tolist()


def test_a_model_failing_the_gate_is_not_promoted_and_publishes_nothing(home, settings, instance):
    assert refresh(settings, instance).success
    topic = load_experiment_config(settings.configs_dir / f"{NAME}.yml").publication.topic
    before = read_topic(settings.kafka_bootstrap_servers, topic)

    stricter = relaxed_config()
    stricter["promotion"]["min_metrics"] = {"ndcg_at_10": 0.99}
    stricter["publication"] = {**stricter["publication"], "topic": topic}
    (home / "configs" / f"{NAME}.yml").write_text(json.dumps(stricter))
    result = refresh(settings, instance)

    assert not result.success
    mlflow = build_resources(settings)["mlflow"]
    facts = mlflow.facts(NAME, "2")
    assert facts.tags["promotion_decision"] == "rejected"
    assert "is below the minimum 0.99" in facts.tags["promotion_reason"]
    assert mlflow.alias_version(NAME, "champion") == "1" and mlflow.alias_version(NAME, "challenger") == "2"
    error = str(result.get_step_failure_events()[0].step_failure_data.error)
    assert "v2 was not promoted, nothing published" in error and "below the minimum" in error
    assert read_topic(settings.kafka_bootstrap_servers, topic) == before


def test_a_hand_registered_version_never_becomes_champion(settings, instance):
    mlflow = build_resources(settings)["mlflow"]
    client = mlflow.client()
    experiment_id = mlflow.experiment_id(NAME)
    with mlflow_lib.start_run(experiment_id=experiment_id) as run:
        mlflow_lib.log_metrics({"precision_at_10": 0.9, "recall_at_10": 0.9, "ndcg_at_10": 0.9, "map_at_10": 0.9,
                                "baseline_ndcg_at_10": 0.1})
        mlflow_lib.log_text("hand made", "note.txt")
    client.create_registered_model(NAME)
    version = client.create_model_version(NAME, f"runs:/{run.info.run_id}/note.txt", run.info.run_id).version

    config = load_experiment_config(settings.configs_dir / f"{NAME}.yml")
    decision = promote_challenger(mlflow, NAME, str(version), promotion_policy(config)).decision
    assert not decision.promote and "lineage tag 'git_commit' is missing" in decision.reason
    assert mlflow.alias_version(NAME, "champion") is None
    with pytest.raises(LifecycleError, match="no champion"):
        rollback(mlflow, build_resources(settings)["kafka"], NAME, str(version))
    client.set_registered_model_alias(NAME, "champion", str(version))
    with pytest.raises(LifecycleError, match="never passed the promotion gate"):
        rollback(mlflow, build_resources(settings)["kafka"], NAME, str(version))


def test_rollback_moves_the_champion_back_and_republishes_its_lists(settings, instance):
    assert refresh(settings, instance).success and refresh(settings, instance).success
    resources = build_resources(settings)
    mlflow, kafka = resources["mlflow"], resources["kafka"]
    assert mlflow.alias_version(NAME, "champion") == "2"

    target, report = rollback(mlflow, kafka, NAME)

    assert target == "1" and mlflow.alias_version(NAME, "champion") == "1"
    topic = load_experiment_config(settings.configs_dir / f"{NAME}.yml").publication.topic
    latest = {user: values[-1] for user, values in read_topic(settings.kafka_bootstrap_servers, topic).items()}
    assert report.messages == len(latest) > 0
    assert {v["model"]["version"] for v in latest.values()} == {"1"}
    recorded = mlflow.load_predictions(mlflow.facts(NAME, "1").run_id).set_index("user_id")
    for user, value in list(latest.items())[:50]:
        assert [i["source_id"] for i in value["items"]] == list(recorded.loc[int(user), "source_ids"])
    assert_serving_follows_the_rollback(settings, kafka, topic, latest, recorded)


def assert_serving_follows_the_rollback(settings, kafka, topic: str, latest: dict, recorded) -> None:
    """Ingested into the online store, the topic serves the rolled-back version, and the batch's fallback to control users."""
    import threading

    from starlette.testclient import TestClient

    from ok_ml_assets.serving.api import build_app
    from ok_ml_assets.serving.ingest import Ingester
    from ok_ml_assets.serving.lmdb_store import LmdbStore

    store = LmdbStore(settings.home / "serving" / "store.lmdb")
    with Ingester(store, kafka.client_config(), [topic]) as ingester:
        ingester.run(threading.Event(), idle_stop_after=3)
    client = TestClient(build_app(store, [NAME]))
    body = client.post(f"/v1/{NAME}/batch", json={"keys": [int(u) for u in list(latest)[:20]]}).json()
    assert body["model"]["version"] == "1" and all(r["arm"] == "rollout" and not r["fallback"] for r in body["results"])
    control = next(u for u in recorded.index if str(u) not in latest)
    answer = client.get(f"/v1/{NAME}/{control}").json()
    assert answer["fallback"] and answer["arm"] == "control" and answer["value"]["items"]
    store.close()


def test_reproduce_matches_the_recorded_model(settings, instance):
    assert refresh(settings, instance).success
    result = reproduce(build_resources(settings)["mlflow"], registry_client(settings), NAME, "1")
    assert result.reproduced, result.verdict()
    assert {"precision_at_10", "ndcg_at_10", "baseline_ndcg_at_10"} <= set(result.metrics)
    assert result.list_overlap > 0.9

    cli = subprocess.run([sys.executable, "-m", "ok_ml_assets.cli", "reproduce", NAME, "1"], capture_output=True, text=True)
    assert cli.returncode == 0 and "verdict: REPRODUCED" in cli.stdout, cli.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination", str(tmp_path / "artifacts"),
         "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(30)


def test_training_against_a_real_tracking_server(monkeypatch, mlflow_server, instance, home):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("OK_ML_MLFLOW_ARTIFACT_ROOT", "")
    settings = load_settings()
    assert refresh(settings, instance).success
    client = mlflow_lib.MlflowClient(mlflow_server, mlflow_server)
    version = client.get_model_version_by_alias(NAME, "champion")
    assert version.version == "1" and version.tags["promotion_decision"] == "promoted"
    assert "config.yml" in {a.path for a in client.list_artifacts(version.run_id)}


def promotion_metadata(instance) -> dict:
    """The metadata of the latest model_promotion materialization."""
    record = instance.fetch_materializations(dg.AssetKey([NAME, "model_promotion"]), limit=1).records[0]
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def test_promotion_rescores_the_champion_on_the_challengers_holdout(home, settings, instance):
    pinned = relaxed_config()
    pinned["datasets"]["interactions"]["tag"] = "2026-11-11"
    write_config(home, pinned)
    assert refresh(settings, instance).success
    write_config(home, relaxed_config())
    assert refresh(settings, instance).success

    meta = promotion_metadata(instance)
    assert "re-scored on the challenger's evaluation data" in meta["compared_with"]
    assert "trained through 2026-11-11, scored on the holdout from 2026-11-13" in meta["compared_with"]
    rescored, recorded = meta["champion_rescored_ndcg_at_10"], meta["champion_recorded_ndcg_at_10"]
    assert 0 < rescored < 1 and rescored != recorded
    facts = build_resources(settings)["mlflow"].facts(NAME, "2")
    assert "re-scored" in facts.tags["promotion_reason"]


def test_promotion_keeps_recorded_metrics_when_the_champion_saw_the_holdout(settings, instance):
    assert refresh(settings, instance).success
    assert refresh(settings, instance).success
    meta = promotion_metadata(instance)
    assert "as recorded" in meta["compared_with"] and "covers the challenger's holdout" in meta["compared_with"]
    assert "champion_rescored_ndcg_at_10" not in meta


def test_the_rollback_command_tells_the_dagster_instance(settings, instance):
    from click.testing import CliRunner

    from ok_ml_assets.cli import main
    from ok_ml_assets.orchestration import dagster_instance

    assert refresh(settings, instance).success and refresh(settings, instance).success
    result = CliRunner().invoke(main, ["model", "rollback", NAME])
    assert result.exit_code == 0, result.output
    assert "champion of prod_discovery is now v1" in result.output
    assert "observation of prod_discovery/published_recommendations" in result.output
    records = dagster_instance(settings.home).fetch_observations(dg.AssetKey([NAME, "published_recommendations"]), limit=1).records
    observation = records[0].asset_observation
    assert observation.metadata["rolled_back_to"].value == "v1" and "rollback" in observation.description
