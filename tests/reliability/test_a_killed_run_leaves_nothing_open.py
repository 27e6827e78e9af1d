"""A run killed with SIGKILL leaves nothing inconsistent: the next run of the experiment closes what it left."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from ok_ml_assets.definitions import build_resources
from ok_ml_assets.lifecycle.locks import EXPERIMENT_TAG
from ok_ml_assets.orchestration import dagster_instance, run_experiments
from ok_ml_assets.progress import Progress
from tests.conftest import write_config
from tests.integration.test_tabular_classification_graph import NAME, antispam_config, register_bots

pytestmark = pytest.mark.integration

# `ok-ml run` that stops, to be killed, at a chosen point: inside the MLflow run once the model is registered, or
# halfway through writing the trained_model value (after `challenger` moved to the new version, before the gate).
STOPPING_RUN = textwrap.dedent("""
    import sys, time
    from pathlib import Path

    import mlflow.pyfunc

    from ok_ml_assets.cli import main

    point, marker = sys.argv[1], Path(sys.argv[2])
    write_text, log_model = Path.write_text, mlflow.pyfunc.log_model

    def stop():
        write_text(marker, point)
        time.sleep(600)

    def stopping_log_model(*args, **kwargs):
        info = log_model(*args, **kwargs)
        if point == "training":
            stop()
        return info

    def stopping_write_text(path, data, *args, **kwargs):
        if point == "writing" and path.name == "trained_model.json.tmp":
            write_text(path, data[: len(data) // 2], *args, **kwargs)
            stop()
        return write_text(path, data, *args, **kwargs)

    mlflow.pyfunc.log_model, Path.write_text = stopping_log_model, stopping_write_text
    main(["run", "--preset", "tiny", "--experiment", sys.argv[3]], prog_name="ok-ml")
""")


def kill_run_at(tmp_path: Path, point: str) -> None:
    """Start `ok-ml run` in a process of its own, wait until it reaches `point`, and SIGKILL it there."""
    script, marker, output = tmp_path / "stopping_run.py", tmp_path / f"reached-{point}", tmp_path / f"run-{point}.out"
    script.write_text(STOPPING_RUN)
    with output.open("w") as out:
        run = subprocess.Popen([sys.executable, str(script), point, str(marker), NAME], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert run.poll() is None, f"the run ended before {point}: {output.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"the run never reached {point}: {output.read_text()[-3000:]}"
        time.sleep(0.1)
    os.kill(run.pid, signal.SIGKILL)
    assert run.wait(10) == -signal.SIGKILL


def experiment_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """The experiment's refresh runs, oldest first."""
    return list(reversed(instance.get_runs(dg.RunsFilter(tags={EXPERIMENT_TAG: NAME}))))


def failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    """The message of a run's failure event."""
    return instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1].dagster_event.message


@pytest.fixture
def product_instance(settings) -> dg.DagsterInstance:
    """The Dagster instance under DAGSTER_HOME that `ok-ml run` uses, shared with runs in other processes."""
    with dagster_instance(settings.home) as instance:
        yield instance


def test_the_next_run_closes_what_a_killed_run_left(home, settings, product_instance, tmp_path):
    register_bots(settings)
    write_config(home, antispam_config())
    mlflow = build_resources(settings)["mlflow"]
    trained_model = settings.assets_dir / NAME / "trained_model.json"
    instance = product_instance

    kill_run_at(tmp_path, "training")
    [first] = experiment_runs(instance)
    assert first.status == dg.DagsterRunStatus.STARTED
    [(first_mlflow_run, _)] = mlflow.open_training_runs(NAME).items()

    # The next run dies too, but only after it closed the first run's leftovers, and leaves its own.
    kill_run_at(tmp_path, "writing")
    first, second = experiment_runs(instance)
    assert first.status == dg.DagsterRunStatus.FAILURE and first.tags["dagster/failure_reason"] == "UNEXPECTED_TERMINATION"
    assert f"died while it held {NAME}" in failure_message(instance, first.run_id)
    killed = mlflow.client().get_run(first_mlflow_run)
    assert killed.info.status == "FAILED" and f"Dagster run {first.run_id} died" in killed.data.tags["failure_reason"]
    assert mlflow.facts(NAME, "1").tags["promotion_decision"] == "abandoned"
    assert second.status == dg.DagsterRunStatus.STARTED
    assert mlflow.alias_version(NAME, "challenger") == "2" and "promotion_decision" not in mlflow.facts(NAME, "2").tags
    assert trained_model.with_name("trained_model.json.tmp").exists() and not trained_model.exists()

    terminal = io.StringIO()
    assert run_experiments(settings, "tiny", 7, [NAME], Progress(terminal))[NAME].success, terminal.getvalue()

    report = terminal.getvalue()
    closed = [line for line in report.splitlines() if line.startswith("    ! ") and not line.startswith("    ! check ")]
    assert len(closed) == 3, closed  # its version, its half-written value and its run: its MLflow run had ended
    second = instance.get_run_by_id(second.run_id)
    assert second.status == dg.DagsterRunStatus.FAILURE and f"died while it held {NAME}" in failure_message(instance, second.run_id)
    assert f"closed dead Dagster run {second.run_id} of {NAME}: its process (pid" in report
    assert f"{NAME} v2 abandoned: Dagster run {second.run_id} that trained it died before the promotion gate decided" in report
    assert "(it was the challenger: the alias is removed)" in report and "trained_model.json.tmp, a value a dead run was writing" in report
    versions = [mlflow.facts(NAME, str(v)) for v in (1, 2, 3)]
    assert [v.tags.get("promotion_decision") for v in versions] == ["abandoned", "abandoned", "promoted"]
    assert all(v.tags.get("promotion_decision") for v in versions if "challenger" in v.aliases)
    assert mlflow.alias_version(NAME, "champion") == "3" and not mlflow.open_training_runs(NAME)
    assert not list(settings.assets_dir.rglob("*.tmp")) and '"model_version": "3"' in trained_model.read_text()
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in experiment_runs(instance)[2:])
