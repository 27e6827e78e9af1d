"""What a run killed mid-way left behind, found and closed by the next run that takes its experiment's lock."""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg

# The public report_run_failed takes its reason only in this record; the UI shows it as "unexpected termination".
from dagster._core.events import JobFailureData, RunFailureReason

from ok_ml_assets.lifecycle.locks import EXPERIMENT_TAG
from ok_ml_assets.preflight import PARTIAL_SUFFIX, remove_path
from ok_ml_assets.resources.mlflow import MlflowResource

# What the IO manager writes before it renames a value into place; one left behind was being written when its run died.


@dataclass(frozen=True)
class DeadRun:
    """A Dagster run still marked started whose process is gone, and how we know."""

    run: dg.DagsterRun
    cause: str


def close_dead_runs(
    instance: dg.DagsterInstance, mlflow: MlflowResource | None, assets_dir: Path, experiment: str, run_id: str, previous: dict | None,
) -> list[str]:
    """Close what dead runs of an experiment left behind, and say in one line each what was closed.

    Call it holding the experiment's lock: then no other run of the experiment is at work, so whatever still says it
    is at work is dead. The Dagster runs, by which the dead are found, are closed last: a recovery cut short is
    finished by the next run.
    """
    dead = dead_runs(instance, experiment, run_id, previous)
    lines = close_training_leftovers(instance, mlflow, experiment, dead, run_id) if mlflow is not None else []
    lines += remove_partial_values(assets_dir / experiment)
    for found in dead.values():
        instance.report_run_failed(
            found.run, f"{found.cause}; run {run_id} found it dead when it took {experiment} and marked it failed",
            JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION, first_step_failure_event=None),
        )
        lines.append(f"closed dead Dagster run {found.run.run_id} of {experiment}: {found.cause}")
    return lines


def dead_runs(instance: dg.DagsterInstance, experiment: str, run_id: str, previous: dict | None) -> dict[str, DeadRun]:
    """Runs of the experiment still marked started, other than this one, by run id."""
    started = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={EXPERIMENT_TAG: experiment}))
    return {run.run_id: DeadRun(run, death_cause(run.run_id, experiment, previous)) for run in started if run.run_id != run_id}


def death_cause(run_id: str, experiment: str, previous: dict | None) -> str:
    """Why a run still marked started is dead: it held the lock the operating system freed, or it never took it."""
    if previous and previous.get("run_id") == run_id:
        return (f"its process (pid {previous.get('pid')} on {previous.get('host')}) died while it held {experiment} "
                f"(since {previous.get('since')})")
    return f"it is marked started but does not hold {experiment}'s lock: its process ended before its first step"


def close_training_leftovers(
    instance: dg.DagsterInstance, mlflow: MlflowResource, experiment: str, dead: dict[str, DeadRun], run_id: str,
) -> list[str]:
    """Abandon the model versions dead runs registered that the gate will never decide on, then fail the MLflow runs
    nothing will end.

    Dead runs are those found now, and those whose MLflow run was left open although their Dagster run is over (marked
    failed or canceled by hand or by run monitoring). A run outside the experiment's jobs (an ad-hoc materialization)
    takes no lock and may still be at work, and one unknown here is another instance's: neither is touched.
    """
    open_runs = mlflow.open_training_runs(experiment)
    trained_by = {**{mlflow_run: dead_run for dead_run in dead for mlflow_run in mlflow.training_runs_of(experiment, dead_run)},
                  **open_runs}
    lines = []
    for version in mlflow.undecided_versions(experiment, list(trained_by)):
        dagster_run = version.tags.get("dagster_run_id") or trained_by.get(version.run_id, "")
        how = ending(instance, dagster_run, dead)
        if how is None:
            continue
        reason = f"abandoned: Dagster run {dagster_run} that trained it {how} before the promotion gate decided"
        was_challenger = mlflow.abandon_version(experiment, version.version, f"{reason}; found by run {run_id}")
        was = " (it was the challenger: the alias is removed)" if was_challenger else ""
        lines.append(f"{experiment} v{version.version} {reason}{was}")
    for mlflow_run, dagster_run in open_runs.items():
        how = ending(instance, dagster_run, dead)
        if how is None:
            continue
        reason = f"its Dagster run {dagster_run} {how} before the training ended"
        mlflow.fail_run(mlflow_run, f"{reason}; marked FAILED by Dagster run {run_id}")
        lines.append(f"marked MLflow run {mlflow_run} of {experiment} FAILED: {reason}")
    return lines


def ending(instance: dg.DagsterInstance, dagster_run: str, dead: dict[str, DeadRun]) -> str | None:
    """How a Dagster run ended, in words (found dead now, or ended earlier), or None while it may be at work or is unknown."""
    if dagster_run in dead:
        return "died"
    run = instance.get_run_by_id(dagster_run) if dagster_run else None
    return "ended" if run is not None and run.is_finished else None


def remove_partial_values(folder: Path) -> list[str]:
    """Delete asset values a dead run was writing (never read: a value is read only once renamed into place)."""
    lines = []
    for partial in sorted(folder.rglob(f"*{PARTIAL_SUFFIX}")):
        remove_path(partial)
        lines.append(f"removed {partial}, a value a dead run was writing when it died")
    return lines
