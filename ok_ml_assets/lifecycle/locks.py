"""One refresh of an experiment at a time, however it runs (ok-ml run, the UI, the daemon): an exclusive file lock."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Hold:
    """A run's hold on its experiment, and what the holder file said of the run that held it before (None: nobody)."""

    lock: FileLock
    previous: dict | None

    def release(self) -> None:
        """Let the next run of the experiment start."""
        self.lock.release()


def hold_experiment(home: Path, experiment: str, run_id: str) -> Hold:
    """Take the experiment's lock for a run, or fail at once naming the run and process that hold it.

    The operating system releases it when the holder dies, so a killed run never leaves it taken; the holder file it
    leaves names it, which is how the next run knows whose leftovers it finds.
    """
    path, holder = lock_paths(home, experiment)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise ExperimentBusy(f"{experiment} is being refreshed by {held_by(holder)}; nothing was started, "
                             "try again when it finishes") from None
    previous = holder_facts(holder)
    holder.write_text(json.dumps({"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
                                  "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}))
    return Hold(lock, previous)


def holder_facts(holder: Path) -> dict | None:
    """The run id, pid, host and start of the last run that took a lock, or None when no run ever did."""
    try:
        return json.loads(holder.read_text())
    except (OSError, ValueError):
        return None


def held_by(holder: Path) -> str:
    """Who holds a lock, in words."""
    facts = holder_facts(holder)
    if facts is None:
        return "another run"
    return f"run {facts['run_id']} (pid {facts['pid']} on {facts['host']}, since {facts['since']})"
