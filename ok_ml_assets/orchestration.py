"""Programmatic runs: seed the registry with a synthetic world and materialize experiments in-process."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd

from ok_ml_assets.configs import ExperimentConfig, load_experiment_config, load_experiment_configs, with_engine
from ok_ml_assets.definitions import build_definitions
from ok_ml_assets.lifecycle.assets import refresh_job_name
from ok_ml_assets.lifecycle.datasets import contiguous_ranges, partition_range_tags
from ok_ml_assets.pipeline_types import pipeline_type
from ok_ml_assets.progress import Progress
from ok_ml_assets.registry import DataRegistry, DatasetVersion, registry_client
from ok_ml_assets.registry.store import Registration
from ok_ml_assets.settings import Settings

# "ok_ml_assets.lifecycle.assets.PromotionRefused: ..." reads better as "PromotionRefused: ...".
QUALIFIED_ERROR = re.compile(r"^(?:\w+\.)+(\w+:)")
# The terminal gets the report and warnings; every event is still in the instance for the Dagster UI.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
INSTANCE_TEMPLATE = Path(__file__).parent / "instance" / "dagster.yaml"


@dataclass
class RunSummary:
    """What a run did, step by step, in seconds."""

    timings: dict[str, float] = field(default_factory=dict)
    success: bool = True


def dagster_instance(home: Path) -> dg.DagsterInstance:
    """The persistent Dagster instance under DAGSTER_HOME, defaulting to a folder of the product's home."""
    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(home / "dagster")
    home_dir = Path(os.environ["DAGSTER_HOME"])
    home_dir.mkdir(parents=True, exist_ok=True)
    if not (home_dir / "dagster.yaml").exists():
        shutil.copyfile(INSTANCE_TEMPLATE, home_dir / "dagster.yaml")
    return dg.DagsterInstance.get()


def record_rollback(settings: Settings, experiment: str, target: str, messages: int) -> dg.AssetKey:
    """Record in the Dagster instance that a rollback re-published an experiment (an observation of its publication)."""
    config = load_experiment_config(settings.configs_dir / f"{experiment}.yml")
    key = dg.AssetKey([experiment, pipeline_type(config.pipeline_type).published_asset])
    dagster_instance(settings.home).report_runless_asset_event(dg.AssetObservation(
        asset_key=key,
        description=f"`ok-ml model rollback`: champion moved back to v{target}, its predictions re-published",
        metadata={"rolled_back_to": f"v{target}", "messages": dg.MetadataValue.int(messages),
                  "topic": config.publication.topic},
    ))
    return key


def register_versions(
    client: DataRegistry, versions: Iterable[tuple[str, str, pd.DataFrame]], source: str, advance: Callable[[], None] = lambda: None
) -> list[DatasetVersion]:
    """Register (dataset, tag, table) versions that are not registered yet, all in one DVC commit."""
    registered = {(v.name, v.tag) for v in client.versions()}
    with tempfile.TemporaryDirectory() as tmp:
        todo = []
        for name, tag, table in versions:
            advance()
            if (name, tag) in registered:
                continue
            path = Path(tmp) / f"{name}-{tag}.parquet"
            table.to_parquet(path, index=False)
            todo.append(Registration(name, tag, path, source=f"{source}:{tag}"))
        # A synthetic world keeps its own calendar, which may run past the machine's today.
        return client.add_many(todo, today=dt.date.max)


def register_synthetic(
    client: DataRegistry, configs: list[ExperimentConfig], preset: str, seed: int, progress: Progress | None = None
) -> list[DatasetVersion]:
    """Register each pipeline type's synthetic world for the experiments' datasets that have no version yet."""
    progress = progress or Progress.silent()
    empty = {window.dataset_name for c in configs for window in c.dataset_windows().values()} - {v.name for v in client.versions()}
    registered: list[DatasetVersion] = []
    for config in configs:
        wanted = empty & {window.dataset_name for window in config.dataset_windows().values()}
        if wanted:
            versions = pipeline_type(config.pipeline_type).synthetic_versions(config, preset, seed)
            with progress.bar(f"{', '.join(sorted(wanted))}: generate, validate, DVC-commit versions") as bar:
                registered += register_versions(client, ((n, t, f) for n, t, f in versions if n in wanted),
                                                f"synthetic:{preset}:{seed}", bar.advance)
            empty -= wanted
    return registered


def other_worlds(client: DataRegistry, configs: list[ExperimentConfig], preset: str, seed: int) -> dict[str, str]:
    """Datasets the experiments read whose registered versions come from another world than the one asked for."""
    wanted = f"synthetic:{preset}:{seed}"
    sources: dict[str, str] = {}
    for name in sorted({w.dataset_name for c in configs for w in c.dataset_windows().values()}):
        origins = {v.source.rsplit(":", 1)[0] if v.source.startswith("synthetic:") else (v.source or "registered by hand")
                   for v in client.versions(name)}
        if origins and origins != {wanted}:
            sources[name] = ", ".join(sorted(origins))
    return sources


def sync_partitions(instance: dg.DagsterInstance, client: DataRegistry) -> dict[str, list[str]]:
    """Add every registered tag as a partition of its dataset; return the tags per dataset."""
    tags: dict[str, list[str]] = {}
    for version in client.versions():
        tags.setdefault(version.name, []).append(version.tag)
    for name, names in tags.items():
        missing = [t for t in names if not instance.has_dynamic_partition(name, t)]
        if missing:
            instance.add_dynamic_partitions(name, missing)
    return tags


def _assets_and_checks(defs: dg.Definitions) -> list:
    return [*defs.assets, *(defs.asset_checks or [])]


def unmaterialized_partitions(instance: dg.DagsterInstance, config: ExperimentConfig, tags: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(role, tag) of every registered partition of an experiment's datasets that is not materialized yet."""
    todo = []
    for role, window in config.dataset_windows().items():
        done = instance.get_materialized_partitions(dg.AssetKey([config.experiment_name, role]))
        todo += [(role, t) for t in tags.get(window.dataset_name, []) if t not in done]
    return todo


def materialize_datasets(
    defs: dg.Definitions, instance: dg.DagsterInstance, config: ExperimentConfig, tags: dict[str, list[str]],
    progress: Progress | None = None,
) -> bool:
    """Materialize every registered partition of an experiment's datasets not materialized yet: one run per dataset
    (per stretch of consecutive new partitions), not one per day."""
    ok = True
    todo = unmaterialized_partitions(instance, config, tags)
    with (progress or Progress.silent()).bar("dataset partitions", len(todo)) as bar:
        for role, window in config.dataset_windows().items():
            wanted = [t for r, t in todo if r == role]
            ordered = instance.get_dynamic_partitions(window.dataset_name)
            for first, last in contiguous_ranges(ordered, wanted):
                # A single partition keeps its own key: its run then records the version's md5 as the data version.
                one = {"partition_key": first} if first == last else {"tags": partition_range_tags(first, last)}
                result = dg.materialize(
                    _assets_and_checks(defs), selection=[dg.AssetKey([config.experiment_name, role])],
                    instance=instance, resources=defs.resources, raise_on_error=False, run_config=QUIET_CONSOLE, **one,
                )
                ok &= result.success
                bar.advance(ordered.index(last) - ordered.index(first) + 1)
    return ok


def materialize_refresh(
    defs: dg.Definitions, instance: dg.DagsterInstance, experiment: str, progress: Progress | None = None
) -> dg.ExecuteInProcessResult:
    """Run an experiment's refresh job (features to publication, with its checks) in-process, showing its steps."""
    job = defs.resolve_job_def(refresh_job_name(experiment))
    run_id = str(uuid.uuid4())
    if progress is not None:
        instance.add_event_listener(run_id, step_listener(progress, experiment))
    return job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET_CONSOLE, run_id=run_id)


def step_listener(progress: Progress, experiment: str) -> Callable[[dg.EventLogEntry], None]:
    """Show each step of a run as it starts and ends, each check that fails and each warning of the run itself (such as
    what a dead run left and how it was closed), as the events arrive."""
    started: dict[str, float] = {}

    def on_event(entry: dg.EventLogEntry) -> None:
        event = entry.dagster_event
        if event is None:
            if entry.level >= logging.WARNING and not entry.step_key:
                progress.line(f"    ! {entry.user_message}")
            return
        step = (event.step_key or "").removeprefix(f"{experiment}__").removeprefix(f"{experiment}_")
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[step] = entry.timestamp
            reset_peak_rss()
            progress.line(f"    ▸ {step}")
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            took = entry.timestamp - started.get(step, entry.timestamp)
            mark = "✓" if event.event_type == dg.DagsterEventType.STEP_SUCCESS else "✗ FAILED"
            progress.line(f"    {mark} {step} {took:.1f} s{peak_rss_note()}")
        elif event.event_type == dg.DagsterEventType.STEP_SKIPPED:
            progress.line(f"    - {step} skipped (an upstream step failed or a blocking check did not pass)")
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if not evaluation.passed:
                progress.line(f"    ! check {evaluation.asset_key.path[-1]}:{evaluation.check_name} {check_outcome(evaluation)}")

    return on_event


def reset_peak_rss() -> None:
    """Start counting the process's peak resident memory afresh (Linux); elsewhere the peak only grows."""
    # Listeners are called synchronously as the in-process executor runs steps one after another, so a step's peak is its own.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_gb() -> float | None:
    """The process's peak resident memory since the last reset, in GiB (None where it cannot be read)."""
    try:
        found = re.search(r"^VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) / 2**20 if found else None


def peak_rss_note() -> str:
    """", peak RSS 1.2 GB" for a progress line, or nothing where the peak cannot be read."""
    peak = peak_rss_gb()
    return "" if peak is None else f", peak RSS {peak:.1f} GB"


@contextlib.contextmanager
def timed(summary: RunSummary, step: str) -> Iterator[None]:
    """Add the wall time of the enclosed block to the summary under `step`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        summary.timings[step] = summary.timings.get(step, 0.0) + time.perf_counter() - start


def run_experiments(
    settings: Settings, preset: str, seed: int, experiments: list[str], progress: Progress | None = None
) -> dict[str, RunSummary]:
    """Seed the registry if needed, then materialize each experiment's datasets and refresh job, showing progress and a report."""
    progress = progress or Progress()
    defs = build_definitions(settings)
    configs = [c for c in with_engine(load_experiment_configs(settings.configs_dir), settings.engine)
               if not experiments or c.experiment_name in experiments]
    unknown = set(experiments) - {c.experiment_name for c in configs}
    if unknown:
        raise ValueError(f"unknown experiments {sorted(unknown)}; configs are in {settings.configs_dir}")
    require_broker(defs)
    instance = dagster_instance(settings.home)
    client = registry_client(settings)
    setup = RunSummary()
    with timed(setup, "register synthetic data"), progress.stage("register synthetic data"):
        reset_peak_rss()
        registered = register_synthetic(client, configs, preset, seed, progress)
        if registered and (peak := peak_rss_gb()) is not None:
            progress.line(f"  peak RSS while generating and registering: {peak:.1f} GB")
        describe_world(progress, client, configs, registered, preset, seed)
    with timed(setup, "sync partitions"):
        tags = sync_partitions(instance, client)
    return {c.experiment_name: run_experiment(settings, defs, instance, c, tags, setup, progress) for c in configs}


def require_broker(defs: dg.Definitions) -> None:
    """Refuse to train when the broker every publication needs does not answer: say so in seconds, not after training."""
    from ok_ml_assets.resources.kafka import BrokerUnreachable

    try:
        defs.resources["kafka"].require_reachable()
    except BrokerUnreachable as error:
        raise ValueError(f"{error}; nothing was trained. Start the local broker with `make kafka-up`, "
                         "or point KAFKA_BOOTSTRAP_SERVERS at a running cluster") from None


def describe_world(
    progress: Progress, client: DataRegistry, configs: list[ExperimentConfig], registered: list[DatasetVersion], preset: str, seed: int
) -> None:
    """Say which world the experiments will read: the one just registered, or the one already there and how to start over."""
    if registered:
        names = ", ".join(sorted({v.name for v in registered}))
        progress.line(f"  registered {len(registered)} synthetic versions of {names} ({preset} preset, seed {seed}) in {client.root}")
    others = other_worlds(client, configs, preset, seed)
    kept = sorted({w.dataset_name for c in configs for w in c.dataset_windows().values()} - {v.name for v in registered} - set(others))
    if kept:
        progress.line(f"  kept the registered {preset} world (seed {seed}) of {', '.join(kept)} in {client.root}")
    for name, origin in others.items():
        progress.line(f"  note: {name} keeps its registered versions ({origin}), not the {preset} preset with seed {seed}; "
                      f"to start over: make clean, then make run PRESET={preset}")


def run_experiment(
    settings: Settings, defs: dg.Definitions, instance: dg.DagsterInstance, config: ExperimentConfig,
    tags: dict[str, list[str]], setup: RunSummary, progress: Progress,
) -> RunSummary:
    """Materialize one experiment's new dataset partitions, then its refresh job, and report what happened."""
    progress.line(f"\n{config.experiment_name} ({config.pipeline_type})")
    summary = RunSummary(timings=dict(setup.timings))
    with timed(summary, "dataset partitions"):
        summary.success &= materialize_datasets(defs, instance, config, tags, progress)
    progress.line("  ▸ refresh job ...")
    if config.engine == "spark":
        progress.line(f"    on Spark ({settings.spark_master}): its UI at http://127.0.0.1:{settings.spark_ui_port} (or the next free "
                      f"port) while the job runs, its event log in {settings.spark_dir / 'events'}")
    with timed(summary, "refresh job"):
        result = materialize_refresh(defs, instance, config.experiment_name, progress)
    progress.line(f"  {'✓' if result.success else '✗'} refresh job {summary.timings['refresh job']:.1f} s")
    if config.engine == "spark":
        describe_spark_apps(progress)
    summary.success &= result.success
    print_report(instance, config, result, summary, settings, progress)
    return summary


def describe_spark_apps(progress: Progress) -> None:
    """Where the Spark applications of this process showed their UI and left their event log (for the history server)."""
    from ok_ml_assets.engines.spark import STARTED

    for facts in STARTED:
        progress.line(f"    spark app {facts['app_id']} on {facts['master']}: UI was {facts['ui']}, event log {facts['event_log']}")
    STARTED.clear()


def _latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey, run_id: str | None = None) -> dict:
    records = instance.fetch_materializations(key, limit=1).records
    if not records or (run_id is not None and records[0].run_id != run_id):
        return {}
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def check_outcome(evaluation: dg.AssetCheckEvaluation) -> str:
    """How a check ended, with what its severity means: a failed WARN check informs, a failed ERROR check blocks."""
    if evaluation.passed:
        return "passed"
    if evaluation.severity == dg.AssetCheckSeverity.WARN:
        return "WARNING (severity WARN: informs, does not block)"
    return "FAILED (severity ERROR: blocks publication)"


def check_outcomes(result: dg.ExecuteInProcessResult) -> list[tuple[str, str, str]]:
    """(check, outcome, description) of every check evaluated in the run."""
    return [(f"{e.asset_key.path[-1]}:{e.check_name}", check_outcome(e), e.description or "")
            for e in result.get_asset_check_evaluations()]


def step_failures(result: dg.ExecuteInProcessResult) -> list[tuple[str, str]]:
    """(step, innermost error message) of every failed step, or of the run when it failed before any step: the reason a
    user can act on."""
    failures = [(event.step_key, innermost(event.step_failure_data.error)) for event in result.get_step_failure_events()]
    if not failures and not result.success:
        failure = result.get_run_failure_event()
        failures.append(("run", innermost(failure.event_specific_data.error) if failure.event_specific_data else "unknown error"))
    return failures


def innermost(error) -> str:
    """The first line of the deepest cause of a serialized error, without its module path."""
    while error is not None and error.cause is not None:
        error = error.cause
    message = error.message.strip().splitlines()[0] if error else "unknown error"
    return QUALIFIED_ERROR.sub(r"\1", message)


def print_report(
    instance: dg.DagsterInstance, config: ExperimentConfig, result: dg.ExecuteInProcessResult, summary: RunSummary,
    settings: Settings, progress: Progress,
) -> None:
    """What the run decided and published, which checks did not pass, and where to look."""
    exp = config.experiment_name
    model = _latest_metadata(instance, dg.AssetKey([exp, "trained_model"]), result.run_id)
    published = _latest_metadata(instance, dg.AssetKey([exp, pipeline_type(config.pipeline_type).published_asset]), result.run_id)
    outcomes = check_outcomes(result)
    took = sum(summary.timings.get(k, 0.0) for k in OWN_STEPS)
    progress.line(f"=== {exp}: {'SUCCESS' if summary.success else 'FAILED'} in {took:.1f} s ===")
    progress.line(f"  checks: {check_counts(outcomes)}")
    for check, outcome, description in outcomes:
        if outcome != "passed":
            progress.line(f"    {check}: {outcome}: {description}")
    for step, reason in step_failures(result):
        progress.line(f"  step {step} FAILED: {reason}")
    if model:
        progress.line(f"  model {model.get('model')}: {model_metrics_line(model)}")
    promotion = _latest_metadata(instance, dg.AssetKey([exp, "model_promotion"]), result.run_id)
    if promotion:
        progress.line(f"  promotion: {promotion.get('challenger')} {promotion.get('decision')}, champion {promotion.get('champion')}: "
                      f"{promotion.get('reason')} (compared with {promotion.get('compared_with')})")
    if result.success and published:
        progress.line(f"  published {published['messages']} messages ({published['bytes']:,} bytes) to topic "
                      f"{published['topic']} on {settings.kafka_bootstrap_servers}, {published['messages_per_second']:,.0f} msg/s")
    progress.line(f"  Dagster run:  {settings.dagster_ui_url}/runs/{result.run_id}  (serve it with `make dev`)")
    if model.get("mlflow_model_version"):
        progress.line(f"  MLflow model: {model['mlflow_model_version']}  (serve it with `make mlflow-ui`)")


def model_metrics_line(model: dict) -> str:
    """The model's metrics, each with its 95% interval when one was recorded; baselines and bounds not listed apart."""
    shown = []
    for name, value in model.items():
        if not isinstance(value, float) or name.startswith("baseline_") or "_ci95_" in name:
            continue
        low, high = model.get(f"{name}_ci95_low"), model.get(f"{name}_ci95_high")
        number = f"{value:.0f}" if value.is_integer() and value > 1 else f"{value:.4f}"
        shown.append(f"{name}={number}" + (f" [{low:.4f}, {high:.4f}]" if low is not None and high is not None else ""))
    return ", ".join(shown)


# An experiment's own wall time: registration and partition sync are shared by all experiments.
OWN_STEPS = ("dataset partitions", "refresh job")


def check_counts(outcomes: list[tuple[str, str, str]]) -> str:
    """How many checks passed, informed and blocked."""
    passed = sum(o == "passed" for _, o, _ in outcomes)
    warned = sum(o.startswith("WARNING") for _, o, _ in outcomes)
    return f"{passed} passed, {warned} warnings (inform), {len(outcomes) - passed - warned} failed (block)"
