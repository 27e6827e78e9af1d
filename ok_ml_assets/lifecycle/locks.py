"""One refresh of an experiment at a time, however it runs (ok-ml run, the UI, the daemon): an exclusive file lock."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path

from filelock import FileLock, Timeout

# The run tag naming a run's experiment: the instance's queue limits runs to one per value, and the lock uses it too.
EXPERIMENT_TAG = "ok_ml/experiment"


class ExperimentBusy(RuntimeError):
    """Another run holds the experiment: it shares its asset files and its topic, so this one does not start."""


def lock_paths(home: Path, experiment: str) -> tuple[Path, Path]:
    """The lock file of an experiment and the file saying who holds it."""
    folder = home / "locks"
    return folder / f"{experiment}.lock", folder / f"{experiment}.holder.json"


def hold_experiment(home: Path, experiment: str, run_id: str) -> FileLock:
    """Take the experiment's lock for a run, or fail at once naming the run and process that hold it.

    The operating system releases it when the holder dies, so a killed run never leaves it taken.
    """
    path, holder = lock_paths(home, experiment)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise ExperimentBusy(f"{experiment} is being refreshed by {held_by(holder)}; nothing was started, "
                             "try again when it finishes") from None
    holder.write_text(json.dumps({"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
                                  "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}))
    return lock


def held_by(holder: Path) -> str:
    """Who holds a lock, in words."""
    try:
        facts = json.loads(holder.read_text())
    except (OSError, ValueError):
        return "another run"
    return f"run {facts['run_id']} (pid {facts['pid']} on {facts['host']}, since {facts['since']})"
