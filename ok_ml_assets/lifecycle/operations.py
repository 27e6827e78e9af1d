"""Model lifecycle for every pipeline type: the promotion gate, rollback and reproduction of registered versions."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import pandas as pd

from ok_ml_assets.configs import ConfigError, ExperimentConfig, parse_experiment_text
from ok_ml_assets.engines import is_spark_frame
from ok_ml_assets.lifecycle.lineage import config_hash
from ok_ml_assets.lifecycle.promotion import Decision, PromotionPolicy, decide_promotion
from ok_ml_assets.lifecycle.publication import (
    ROLLOUT,
    BatchEnd,
    HeldRows,
    Provenance,
    encoded_chunks,
    publish_messages,
    spark_rollout,
    spark_with_arms,
    streamed_messages,
    with_arms,
)
from ok_ml_assets.pipeline_types import pipeline_type
from ok_ml_assets.pipeline_types.base import PipelineType
from ok_ml_assets.registry import DataRegistry
from ok_ml_assets.resources.kafka import KafkaResource, PublicationReport
from ok_ml_assets.resources.mlflow import CHAMPION, MlflowResource, ModelVersionFacts
from ok_ml_assets.settings import PROJECT_ROOT

METRIC_TOLERANCE = 0.02
MIN_LIST_OVERLAP = 0.9

# A git object name (SHA-1 or SHA-256, abbreviated or full).
COMMIT_ID = re.compile(r"[0-9a-f]{7,64}")


class LifecycleError(ValueError):
    """A lifecycle command that cannot proceed, with the reason."""


@dataclass(frozen=True)
class Rescoring:
    """The champion's metrics on the challenger's evaluation data, or why it could not be re-scored fairly."""

    metrics: dict[str, float] | None
    note: str


@dataclass(frozen=True)
class PromotionResult:
    """The gate's decision, the champion it replaced (if any) and what the challenger was compared with."""

    decision: Decision
    previous: str | None
    comparison: str
    champion_recorded: dict[str, float] = field(default_factory=dict)
    champion_rescored: dict[str, float] = field(default_factory=dict)


def champion_metrics(champion: ModelVersionFacts, challenger: ModelVersionFacts, rescore) -> tuple[dict[str, float], Rescoring]:
    """The champion's metrics to compare with: re-scored on the challenger's data when that is fair, else as recorded."""
    try:
        rescored = rescore(champion, challenger) if rescore else Rescoring(None, "this pipeline type does not re-score")
    except Exception as error:  # noqa: BLE001 - a champion that cannot be loaded must not block a valid challenger
        rescored = Rescoring(None, f"re-scoring v{champion.version} failed ({type(error).__name__}: {error})")
    return (rescored.metrics if rescored.metrics is not None else champion.metrics), rescored


def promote_challenger(
    mlflow: MlflowResource, name: str, version: str, policy: PromotionPolicy,
    rescore: Callable[[ModelVersionFacts, ModelVersionFacts], Rescoring] | None = None,
) -> PromotionResult:
    """Run the promotion gate on a version, record the decision on it, and return it with the previous champion."""
    previous = mlflow.alias_version(name, CHAMPION)
    if previous == version:
        replaced = mlflow.facts(name, version).tags.get("previous_champion") or None
        return PromotionResult(Decision(True, f"v{version} already is the champion"), replaced, "itself")
    candidate = mlflow.facts(name, version)
    if previous is None:
        decision = decide_promotion(candidate.tags, candidate.metrics, None, policy)
        comparison, recorded, rescored = "the baseline (first model)", {}, {}
    else:
        champion = mlflow.facts(name, previous)
        metrics, rescoring = champion_metrics(champion, candidate, rescore)
        decision = decide_promotion(candidate.tags, candidate.metrics, metrics, policy)
        kind = "re-scored on the challenger's evaluation data" if rescoring.metrics is not None else "as recorded"
        comparison = f"champion v{previous}, {kind}: {rescoring.note}"
        recorded, rescored = dict(champion.metrics), dict(rescoring.metrics or {})
    mlflow.record_decision(name, version, decision.promote, f"{decision.reason} (compared with {comparison})", previous)
    return PromotionResult(decision, previous, comparison, recorded, rescored)


@dataclass(frozen=True)
class Published:
    """What a publication sent: every entity with its arm, the rollout's rows and the broker's report.

    For a Spark table, `arms` and `rollout` are Spark DataFrames computed on the executors when used, never collected.
    """

    arms: pd.DataFrame
    rollout: pd.DataFrame
    report: PublicationReport


def publish_rollout(kafka: KafkaResource, config: ExperimentConfig, predictions: pd.DataFrame, provenance: Provenance,
                    as_of: str, held: HeldRows | None = None) -> Published:
    """Publish the rollout arm of a version's predictions in the type's payload, closed by the batch's trailers.

    A Spark DataFrame is streamed (see `publish_spark_rollout`); `held` then counts the rows the driver holds at once.
    """
    if is_spark_frame(predictions):
        return publish_spark_rollout(kafka, config, predictions, provenance, as_of, held)
    kind = pipeline_type(config.pipeline_type)
    arms = with_arms(predictions, config.publication, as_of, kind.key_column(config))
    rollout = arms[arms["arm"] == ROLLOUT]
    batch_end = BatchEnd(provenance, config.publication, kind.fallback(config, rollout))
    report = publish_messages(kafka, config.publication, kind.encode_messages(config, rollout, provenance), batch_end)
    return Published(arms, rollout, report)


def publish_spark_rollout(kafka: KafkaResource, config: ExperimentConfig, predictions, provenance: Provenance, as_of: str,
                          held: HeldRows | None = None, kind: PipelineType | None = None) -> Published:
    """The rollout of a Spark table with the local path's arms, bytes and trailers in one transaction, the driver holding
    at most a chunk of encoded rows per partition in flight: executors choose the arms and encode, the driver sends."""
    kind = kind or pipeline_type(config.pipeline_type)
    key_column = kind.key_column(config)
    # Chosen once on the executors: the fallback, the encoding and the published-lists store each read it.
    rollout = spark_rollout(predictions, config.publication, key_column).localCheckpoint()
    # The fallback is the type's: given a Spark table it aggregates there, so only its result reaches the driver.
    batch_end = BatchEnd(provenance, config.publication, kind.fallback(config, rollout))
    chunks = encoded_chunks(rollout, partial(kind.encode_messages, config, provenance=provenance))
    report = publish_messages(kafka, config.publication, streamed_messages(chunks, held), batch_end)
    return Published(spark_with_arms(predictions, config.publication, as_of, key_column), rollout, report)


def rollback(mlflow: MlflowResource, kafka: KafkaResource, experiment: str, version: str | None = None) -> tuple[str, PublicationReport]:
    """Move `champion` back (to `version`, or to the one it replaced) and re-publish that version's predictions."""
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
    provenance = Provenance(experiment, experiment, target, facts.run_id)
    # Publish first: the transaction either lands whole or not at all, and only then does the alias move.
    published = publish_rollout(kafka, config, mlflow.load_predictions(facts.run_id), provenance, "")
    mlflow.move_champion(experiment, target, f"rollback from v{current} at {provenance.generated_at}")
    return target, published.report


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
        """Metrics within tolerance and predictions agreeing enough."""
        close = all(abs(new - old) <= METRIC_TOLERANCE * max(abs(old), 1e-9) for old, new in self.metrics.values())
        return close and self.list_overlap >= MIN_LIST_OVERLAP and bool(self.metrics)

    def verdict(self) -> str:
        """A human-readable report ending with the verdict."""
        lines = [f"reproduction of {self.experiment} v{self.version}:"]
        lines += [f"  {name:28} recorded {old:.5f}  reproduced {new:.5f}" for name, (old, new) in sorted(self.metrics.items())]
        lines.append(f"  agreement with the recorded predictions: {self.list_overlap:.4f} (need {MIN_LIST_OVERLAP})")
        lines += [f"  note: {note}" for note in self.notes]
        lines.append("verdict: REPRODUCED" if self.reproduced else "verdict: NOT REPRODUCED")
        return "\n".join(lines)


def recorded_config(mlflow: MlflowResource, experiment: str, tags: dict[str, str], run_id: str) -> tuple[ExperimentConfig, list[str]]:
    """The config at the recorded commit (falling back to the logged copy), checked against the recorded hash."""
    notes, commit = [], tags.get("git_commit", "unknown")
    if not COMMIT_ID.fullmatch(commit):
        # A value read from the registry is never handed to git unless it is an object name.
        notes.append(f"the recorded git_commit {commit[:60]!r} is not a commit id")
        shown = subprocess.CompletedProcess([], 1)
    else:
        shown = subprocess.run(["git", "show", "--end-of-options", f"{commit}:asset_configs/{experiment}.yml"],
                               cwd=PROJECT_ROOT, capture_output=True, text=True)
    if shown.returncode == 0:
        try:
            config = parse_experiment_text(shown.stdout, f"{commit[:12]}:asset_configs/{experiment}.yml")
            if config_hash(config) == tags.get("config_hash"):
                return config, notes
        except ConfigError:
            pass
        notes.append(f"the config at commit {commit[:12]} differs from the one trained (dirty tree or another configs folder)")
    elif COMMIT_ID.fullmatch(commit):
        notes.append(f"commit {commit[:12]} is not in this checkout")
    config = parse_experiment_text(mlflow.load_text(run_id, "config.yml"), f"run {run_id} config.yml")
    if config_hash(config) != tags.get("config_hash"):
        raise LifecycleError(f"{experiment}: neither the commit's nor the logged config matches the recorded config_hash")
    notes.append("used the exact config logged with the run, whose hash matches the record")
    return config, notes


def recorded_inputs(registry: DataRegistry, config: ExperimentConfig, recorded: list[dict]) -> dict[str, list]:
    """The recorded dataset versions by the role the config reads them in, each verified by md5, oldest first."""
    roles = {window.dataset_name: role for role, window in config.dataset_windows().items()}
    inputs: dict[str, list] = {role: [] for role in config.dataset_windows()}
    for entry in recorded:
        stored = registry.version(entry["dataset"], entry["tag"])
        if stored.md5 != entry["md5"]:
            raise LifecycleError(f"{stored.ref}: registered md5 {stored.md5} differs from the recorded {entry['md5']}")
        if entry["dataset"] not in roles:
            raise LifecycleError(f"{stored.ref} was recorded, but the config reads no dataset {entry['dataset']!r}")
        inputs[roles[entry["dataset"]]].append((stored, registry.path(entry["dataset"], entry["tag"])))
    return {role: sorted(items, key=lambda item: item[0].tag) for role, items in inputs.items()}


def reproduce(mlflow: MlflowResource, registry: DataRegistry, experiment: str, version: str) -> Reproduction:
    """Retrain a registered version from its recorded commit, config, dataset versions and seed, and compare."""
    facts = mlflow.facts(experiment, version)
    if not facts.datasets:
        raise LifecycleError(f"{experiment} v{version} has no recorded datasets: it was not trained by the pipeline")
    config, notes = recorded_config(mlflow, experiment, facts.tags, facts.run_id)
    kind = pipeline_type(config.pipeline_type)
    outcome = kind.reproduce(config, recorded_inputs(registry, config, facts.datasets))
    result = Reproduction(experiment, version, notes=notes)
    result.metrics = {name: (facts.metrics[name], value) for name, value in outcome.metrics.items() if name in facts.metrics}
    result.list_overlap = kind.prediction_agreement(mlflow.load_predictions(facts.run_id), outcome.predictions)
    return result
