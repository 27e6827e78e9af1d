"""Closing the loop: whether the online store serves what each experiment last published, as observations in Dagster."""

from __future__ import annotations

import json
import time

import dagster as dg

from ok_ml_assets.configs import ExperimentConfig
from ok_ml_assets.pipeline_types import pipeline_type

# Serving should hold a publication this soon after it; later, the observation says serving lags.
SERVING_BOUND_SECONDS = 120


def serving_state(published: dg.EventLogRecord, served, now: float) -> tuple[str, dict]:
    """(status, metadata) of serving against the latest publication: serving, pending (within bound) or lagging."""
    metadata = published.asset_materialization.metadata
    wanted = metadata["generation_id"].value if "generation_id" in metadata else ""
    age = now - published.timestamp
    holds = served is not None and served.generation_id == wanted
    status = "serving" if holds else ("pending" if age <= SERVING_BOUND_SECONDS else "lagging")
    facts = {
        "published_generation": wanted, "published_model": metadata["model"].value if "model" in metadata else "",
        "served_generation": served.generation_id if served else "none",
        "served_model_version": served.model_version if served else "none",
        "serving_holds_published": holds, "seconds_since_publication": dg.MetadataValue.float(round(age, 1)),
    }
    if holds:
        facts["seconds_to_serve"] = dg.MetadataValue.float(round(max(served.served_since - published.timestamp, 0.0), 1))
    return status, facts


def describe(status: str, facts: dict) -> str:
    """The observation's one line."""
    if status == "serving":
        return f"serving holds the published {facts['published_model']} ({facts['seconds_to_serve'].value} s after publication)"
    return (f"serving lags: it serves {facts['served_model_version']} ({facts['served_generation']}), "
            f"{facts['published_model']} was published {facts['seconds_since_publication'].value:.0f} s ago")


def build_serving_sensor(configs: list[ExperimentConfig]) -> dg.SensorDefinition:
    """A sensor observing, per experiment, whether the online store serves its latest publication within the bound."""
    keys = {c.experiment_name: dg.AssetKey([c.experiment_name, pipeline_type(c.pipeline_type).published_asset]) for c in configs}

    @dg.sensor(name="serving_sensor", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Observes on each publication asset whether serving holds it within {SERVING_BOUND_SECONDS} s.")
    def serving_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        from ok_ml_assets.serving.store import current_generation
        from ok_ml_assets.serving.stores import existing_store_from_env
        from ok_ml_assets.settings import load_settings

        store = existing_store_from_env(load_settings().home)
        if store is None:
            return dg.SkipReason("no online store yet (start serving with `make serve`)")
        reported = json.loads(context.cursor or "{}")
        events = []
        try:
            for experiment, key in keys.items():
                records = context.instance.fetch_materializations(key, limit=1).records
                if not records:
                    continue
                status, facts = serving_state(records[0], current_generation(store, experiment), time.time())
                if status != "pending" and reported.get(experiment) != [facts["published_generation"], status]:
                    reported[experiment] = [facts["published_generation"], status]
                    events.append(dg.AssetObservation(asset_key=key, description=describe(status, facts), metadata=facts))
        finally:
            store.close()
        return dg.SensorResult(asset_events=events, cursor=json.dumps(reported))

    return serving_sensor
