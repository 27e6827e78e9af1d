"""The serving sensor: observations on a publication asset say whether the online store serves what was published."""

from __future__ import annotations

import dagster as dg

from ok_ml_assets.sensors import serving_sensor as module
from ok_ml_assets.sensors.serving_sensor import build_serving_sensor
from ok_ml_assets.serving.lmdb_store import LmdbStore
from ok_ml_assets.serving.store import CURRENT, Generation
from tests.integration.test_tabular_classification_graph import antispam_config

KEY = dg.AssetKey(["antispam_bots", "published_predictions"])


def serve(home, generation_id: str, version: str) -> None:
    """Make the embedded store serve a generation of antispam_bots."""
    store = LmdbStore(home / "serving" / "store.lmdb")
    generation = Generation("antispam_bots", generation_id, "antispam_bots", version, "run", "2026-11-30T10:00:00+00:00",
                            "t", 1.0, "s", 10, {}, served_since=0.0)
    store.commit([], {CURRENT + "antispam_bots": generation.to_bytes()}, {})
    store.close()


def evaluate(sensor, instance, cursor=None) -> tuple[list, str]:
    """The sensor's observations and cursor on one tick."""
    result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
    if isinstance(result, dg.SkipReason):
        return [], cursor
    return list(result.asset_events), result.cursor


def test_the_sensor_observes_when_serving_holds_the_publication_and_when_it_lags(tmp_path, monkeypatch):
    from ok_ml_assets.configs import parse_experiment_config

    monkeypatch.setenv("OK_ML_HOME", str(tmp_path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    sensor = build_serving_sensor([parse_experiment_config(antispam_config(), "antispam_bots.yml")])
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(dg.AssetMaterialization(KEY, metadata={"generation_id": "v2-b", "model": "antispam_bots v2"}))
    assert evaluate(sensor, instance) == ([], None), "no store yet: nothing to say"

    serve(tmp_path, "v1-a", "1")
    assert evaluate(sensor, instance)[0] == [], "within the bound, serving may still be catching up"
    monkeypatch.setattr(module.time, "time", lambda: 10**10)
    events, cursor = evaluate(sensor, instance)
    assert events[0].asset_key == KEY and events[0].metadata["serving_holds_published"].value is False
    assert events[0].description.startswith("serving lags: it serves 1 (v1-a), antispam_bots v2 was published")
    assert evaluate(sensor, instance, cursor)[0] == [], "the same state is observed once"

    serve(tmp_path, "v2-b", "2")
    events, _ = evaluate(sensor, instance, cursor)
    assert events[0].metadata["serving_holds_published"].value is True and events[0].description.startswith("serving holds")
