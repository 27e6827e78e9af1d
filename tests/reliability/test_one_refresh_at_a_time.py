"""Two refreshes of one experiment never run at once: the second stops before it starts and names the first."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from ok_ml_assets.orchestration import step_failures
from tests.conftest import write_config
from tests.integration.test_tabular_classification_graph import NAME, antispam_config, refresh, register_bots

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from ok_ml_assets.lifecycle.locks import hold_experiment
    lock = hold_experiment(Path(sys.argv[1]), sys.argv[2], "run-in-another-process")
    print("held", flush=True)
    sys.stdin.read()
""")


def test_a_refresh_while_another_holds_the_experiment_stops_and_names_it(home, settings, instance):
    register_bots(settings)
    write_config(home, antispam_config())
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(settings.assets_dir), NAME],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    try:
        busy = refresh(settings, instance)
    finally:
        holder.kill()
        holder.wait(10)
    assert not busy.success
    reasons = " ".join(reason for _, reason in step_failures(busy))
    assert f"{NAME} is being refreshed by run run-in-another-process (pid {holder.pid}" in reasons
    assert not (settings.assets_dir / NAME / "trained_model.json").exists()
    assert refresh(settings, instance).success, "a killed holder leaves the lock free"
