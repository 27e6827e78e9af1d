"""Model lifecycle outside a run: roll the champion back and reproduce a registered version."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from dataclasses import dataclass, field

from ok_ml_assets.configs import ConfigError, ExperimentConfig, parse_experiment_text
from ok_ml_assets.pipelines.features import read_pairs
from ok_ml_assets.pipelines.lineage import config_hash
from ok_ml_assets.pipelines.promotion import Decision, PromotionPolicy, decide_promotion
from ok_ml_assets.pipelines.publication import (
    ROLLOUT,
    Provenance,
    publish_rollout,
    with_arms,
)
from ok_ml_assets.pipelines.recommender import (
    DailyFile,
    list_overlap,
    recommend,
    train_recommender,
    window_features,
)
from ok_ml_assets.registry import DataRegistry
from ok_ml_assets.resources.kafka import KafkaResource, PublicationReport
from ok_ml_assets.resources.mlflow import CHAMPION, MlflowResource
from ok_ml_assets.settings import PROJECT_ROOT

METRIC_TOLERANCE = 0.02
MIN_LIST_OVERLAP = 0.9


class LifecycleError(ValueError):
    """A lifecycle command that cannot proceed, with the reason."""


def promote_challenger(mlflow: MlflowResource, name: str, version: str, policy: PromotionPolicy) -> tuple[Decision, str | None]:
    """Run the promotion gate on a version, record the decision on it, and return it with the previous champion."""
    previous = mlflow.alias_version(name, CHAMPION)
    if previous == version:
        return Decision(True, f"v{version} already is the champion"), mlflow.facts(name, version).tags.get("previous_champion") or None
    candidate = mlflow.facts(name, version)
    champion_metrics = mlflow.facts(name, previous).metrics if previous else None
    decision = decide_promotion(candidate.tags, candidate.metrics, champion_metrics, policy)
    mlflow.record_decision(name, version, decision.promote, decision.reason, previous)
    return decision, previous


def rollback(mlflow: MlflowResource, kafka: KafkaResource, experiment: str, version: str | None = None) -> tuple[str, PublicationReport]:
    """Move `champion` back (to `version`, or to the one it replaced) and re-publish that version's recommendations."""
    current = mlflow.alias_version(experiment, CHAMPION)
    if current is None:
        raise LifecycleError(f"{experiment} has no champion to roll back")
    target = version or mlflow.facts(experiment, current).tags.get("previous_champion")
    if not target:
        raise LifecycleError(f"{experiment} v{current} replaced no earlier champion; name the VERSION to roll back to")
    facts = mlflow.facts(experiment, target)
    if facts.tags.get("promotion_decision") != "promoted":
        raise LifecycleError(f"{experiment} v{target} never passed the promotion gate, so it cannot become champion")
    config = parse_experiment_text(mlflow.load_text(facts.run_id, "config.yml"), f"{experiment} v{target} config.yml")
    recommendations = mlflow.load_recommendations(facts.run_id)
    provenance = Provenance(experiment, experiment, target, facts.run_id)
    rollout = with_arms(recommendations, config.publication, "")
    # Publish first: the transaction either lands whole or not at all, and only then does the alias move.
    report = publish_rollout(kafka, config.publication, rollout[rollout["arm"] == ROLLOUT], provenance)
    mlflow.move_champion(experiment, target, f"rollback from v{current} at {provenance.generated_at}")
    return target, report


@dataclass
class Reproduction:
    """How a retraining compares with what was recorded."""

    experiment: str
    version: str
    metrics: dict[str, tuple[float, float]] = field(default_factory=dict)
    list_overlap: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        """Metrics within tolerance and lists overlapping enough."""
        close = all(abs(new - old) <= METRIC_TOLERANCE * max(abs(old), 1e-9) for old, new in self.metrics.values())
        return close and self.list_overlap >= MIN_LIST_OVERLAP and bool(self.metrics)

    def verdict(self) -> str:
        """A human-readable report ending with the verdict."""
        lines = [f"reproduction of {self.experiment} v{self.version}:"]
        lines += [f"  {name:28} recorded {old:.5f}  reproduced {new:.5f}" for name, (old, new) in sorted(self.metrics.items())]
        lines.append(f"  top-K list overlap with the recorded recommendations: {self.list_overlap:.4f} (need {MIN_LIST_OVERLAP})")
        lines += [f"  note: {note}" for note in self.notes]
        lines.append("verdict: REPRODUCED" if self.reproduced else "verdict: NOT REPRODUCED")
        return "\n".join(lines)


def recorded_config(mlflow: MlflowResource, experiment: str, tags: dict[str, str], run_id: str) -> tuple[ExperimentConfig, list[str]]:
    """The config at the recorded commit (falling back to the logged copy), checked against the recorded hash."""
    notes, commit = [], tags.get("git_commit", "unknown")
    shown = subprocess.run(
        ["git", "show", f"{commit}:asset_configs/{experiment}.yml"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    if shown.returncode == 0:
        try:
            config = parse_experiment_text(shown.stdout, f"{commit[:12]}:asset_configs/{experiment}.yml")
            if config_hash(config) == tags.get("config_hash"):
                return config, notes
        except ConfigError:
            pass
        notes.append(f"the config at commit {commit[:12]} differs from the one trained (dirty tree or another configs folder)")
    else:
        notes.append(f"commit {commit[:12]} is not in this checkout")
    config = parse_experiment_text(mlflow.load_text(run_id, "config.yml"), f"run {run_id} config.yml")
    if config_hash(config) != tags.get("config_hash"):
        raise LifecycleError(f"{experiment}: neither the commit's nor the logged config matches the recorded config_hash")
    notes.append("used the exact config logged with the run, whose hash matches the record")
    return config, notes


def reproduce(mlflow: MlflowResource, registry: DataRegistry, experiment: str, version: str) -> Reproduction:
    """Retrain a registered version from its recorded commit, config, dataset versions and seed, and compare."""
    facts = mlflow.facts(experiment, version)
    if "datasets" not in facts.tags:
        raise LifecycleError(f"{experiment} v{version} has no recorded datasets: it was not trained by the pipeline")
    config, notes = recorded_config(mlflow, experiment, facts.tags, facts.run_id)
    recorded = json.loads(facts.tags["datasets"])
    files = {name: [] for name in ("interactions", "subscriptions")}
    for entry in recorded:
        stored = registry.version(entry["dataset"], entry["tag"])
        if stored.md5 != entry["md5"]:
            raise LifecycleError(f"{stored.ref}: registered md5 {stored.md5} differs from the recorded {entry['md5']}")
        role = "interactions" if entry["dataset"] == config.datasets.interactions.dataset_name else "subscriptions"
        files[role].append(DailyFile(dt.date.fromisoformat(entry["tag"]), registry.path(entry["dataset"], entry["tag"])))
    interactions = sorted(files["interactions"], key=lambda f: f.day)
    subscribed = read_pairs([f.path for f in files["subscriptions"]])
    outcome = train_recommender(interactions, window_features(interactions, config), subscribed, config)
    result = Reproduction(experiment, version, notes=notes)
    for name, value in outcome.report.as_metrics().items():
        if name in facts.metrics:
            result.metrics[name] = (facts.metrics[name], value)
    fresh = recommend(outcome.embeddings, subscribed, config.recommendations.top_k)
    result.list_overlap = list_overlap(mlflow.load_recommendations(facts.run_id), fresh)
    return result
