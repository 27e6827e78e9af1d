"""Monitoring gates on the real graph: an incident is caught before Kafka, also under declarative automation."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from ok_ml_assets.cli import main
from ok_ml_assets.configs import load_experiment_config
from ok_ml_assets.definitions import build_definitions
from ok_ml_assets.monitoring import ReferenceStore
from ok_ml_assets.orchestration import materialize_refresh
from ok_ml_assets.pipeline_types.recommendation_als.synthetic import register_world
from ok_ml_assets.registry import registry_client
from ok_ml_assets.synthetic import generate_world
from ok_ml_assets.synthetic.faults import remap_ids
from ok_ml_assets.synthetic.world import SyntheticWorld
from tests.conftest import relaxed_config, write_config
from tests.kafka_utils import read_topic

pytestmark = pytest.mark.integration
NAME = "prod_discovery"
KEY = lambda name: dg.AssetKey([NAME, name])  # noqa: E731
UPSTREAM_OF_PUBLICATION = ["user_source_features", "subscribed_pairs", "holdout_split", "user_embeddings", "source_embeddings",
                           "trained_model", "model_promotion", "recommendations"]


class WorldWithFault(SyntheticWorld):
    """A tiny world whose last day's source ids moved to a new id space, as after a botched migration."""

    def days(self):
        days = list(super().days())
        last = days[-1]
        yield from days[:-1]
        yield type(last)(last.date, remap_ids(last.interactions), last.subscriptions)


def replace_registry(home, settings, world) -> None:
    """Point the test's registry at a fresh repository holding `world`."""
    settings.registry_repo.rename(home / "registry-seeded")
    register_world(registry_client(settings), world)


def test_a_source_id_migration_is_caught_before_it_ships(home, settings, instance):
    clean = generate_world("tiny", seed=5, days=15)
    replace_registry(home, settings, WorldWithFault(clean.preset, clean.seed, clean.start))
    pinned = relaxed_config()
    pinned["datasets"]["interactions"]["tag"] = "2026-11-14"
    config = write_config(home, pinned)
    assert materialize_refresh(build_definitions(settings), instance, NAME).success
    topic = config["publication"]["topic"]
    published_before = read_topic(settings.kafka_bootstrap_servers, topic)
    accepted_before = ReferenceStore(settings.monitoring_dir).load(NAME, "user_source_features").accepted_run_id

    del pinned["datasets"]["interactions"]["tag"]
    pinned["publication"] = config["publication"]
    (home / "configs" / f"{NAME}.yml").write_text(yaml.safe_dump(pinned))
    result = materialize_refresh(build_definitions(settings), instance, NAME)

    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert not result.success and "source_id_psi_within" in failed
    assert read_topic(settings.kafka_bootstrap_servers, topic) == published_before
    after = ReferenceStore(settings.monitoring_dir).load(NAME, "user_source_features")
    assert after.accepted_run_id == accepted_before

    # Once the migration is known to be intended, an operator accepts the new statistics and the gate opens.
    accepted = CliRunner().invoke(main, ["monitoring", "accept", NAME, "user_source_features", "--reason", "id migration"])
    assert accepted.exit_code == 0, accepted.output
    rerun = materialize_refresh(build_definitions(settings), instance, NAME)
    evaluations = {e.check_name: e.passed for e in rerun.get_asset_check_evaluations()}
    assert evaluations["source_id_psi_within"] and evaluations["source_id_ks_within"]


def materialize_upstream_of_publication(settings, instance) -> dg.ExecuteInProcessResult:
    """Everything up to the recommendations and their checks, but not the publication."""
    defs = build_definitions(settings)
    return dg.materialize(
        [*defs.assets, *defs.asset_checks], selection=[KEY(name) for name in UPSTREAM_OF_PUBLICATION],
        instance=instance, resources=defs.resources, raise_on_error=False,
    )


def automation_tick(settings, instance, cursor=None):
    """One tick of declarative automation over the publication asset, as the daemon's sensor evaluates it."""
    return dg.evaluate_automation_conditions(
        defs=build_definitions(settings), instance=instance, cursor=cursor,
        asset_selection=dg.AssetSelection.assets(KEY("published_recommendations")),
    )


def test_automation_publishes_after_passing_checks(settings, instance):
    before = automation_tick(settings, instance)
    assert materialize_upstream_of_publication(settings, instance).success
    assert automation_tick(settings, instance, before.cursor).get_num_requested(KEY("published_recommendations")) == 1


def test_automation_never_publishes_past_a_failed_blocking_check(home, settings, instance):
    replace_registry(home, settings, generate_world("tiny", seed=3, sources=12))
    write_config(home, relaxed_config())
    before = automation_tick(settings, instance)
    result = materialize_upstream_of_publication(settings, instance)
    assert {e.check_name for e in result.get_asset_check_evaluations() if not e.passed} >= {"list_length_between"}
    assert automation_tick(settings, instance, before.cursor).get_num_requested(KEY("published_recommendations")) == 0


def test_online_metrics_score_the_published_lists_per_arm(home, settings, instance):
    pinned = relaxed_config()
    pinned["datasets"]["interactions"]["tag"] = "2026-11-10"
    write_config(home, pinned)
    defs = build_definitions(settings)
    assert materialize_refresh(defs, instance, NAME).success
    result = defs.resolve_job_def(f"{NAME}_online_metrics").execute_in_process(instance=instance)
    assert result.success
    meta = instance.fetch_materializations(KEY("online_metrics"), limit=1).records[0].asset_materialization.metadata
    assert meta["days_observed"].value == 4 and meta["published_as_of"].value == "2026-11-10"
    config = load_experiment_config(settings.configs_dir / f"{NAME}.yml")
    k = config.evaluation.k
    for arm in ("rollout", "control"):
        assert meta[f"{arm}_users"].value > 100
        assert 0 < meta[f"{arm}_precision_at_{k}"].value < 1 and 0 < meta[f"{arm}_hit_rate"].value <= 1
