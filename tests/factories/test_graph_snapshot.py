"""prod_discovery's whole asset graph, pinned: a refactor that changes it fails here and must say why.

Regenerate on purpose with `OK_ML_UPDATE_SNAPSHOT=1 .venv/bin/pytest tests/factories/test_graph_snapshot.py`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import dagster as dg

from ok_ml_assets.definitions import build_definitions
from ok_ml_assets.settings import PROJECT_ROOT, load_settings

SNAPSHOT = Path(__file__).parent / "snapshots" / "prod_discovery_graph.json"


def graph_snapshot(defs: dg.Definitions) -> dict:
    """Asset keys with deps, check names with blocking flags, jobs with their assets, schedules and sensors."""
    graph = defs.resolve_asset_graph()
    assets = {
        key.to_user_string(): {
            "deps": sorted(parent.to_user_string() for parent in graph.get(key).parent_keys),
            "group": graph.get(key).group_name,
            "partitioned": graph.get(key).is_partitioned,
            "automated": graph.get(key).automation_condition is not None,
        }
        for key in graph.get_all_asset_keys()
    }
    checks = {
        f"{spec.asset_key.to_user_string()}:{spec.name}": {
            "blocking": spec.blocking,
            "deps": sorted(dep.asset_key.to_user_string() for dep in spec.additional_deps),
        }
        for check in defs.asset_checks or []
        for spec in check.check_specs
    }
    jobs = {
        job.name: sorted(
            key.to_user_string() for key in job.asset_layer.selected_asset_keys
        )
        for job in defs.resolve_all_job_defs()
        if not job.name.startswith("__")
    }
    schedules = {s.name: {"cron": s.cron_schedule, "job": s.job_name} for s in defs.schedules or []}
    sensors = sorted(s.name for s in defs.sensors or [])
    return {"assets": dict(sorted(assets.items())), "checks": dict(sorted(checks.items())), "jobs": dict(sorted(jobs.items())),
            "schedules": schedules, "sensors": sensors}


def test_prod_discovery_graph_matches_its_snapshot(tmp_path, monkeypatch):
    shutil.copy(PROJECT_ROOT / "asset_configs" / "prod_discovery.yml", tmp_path)
    monkeypatch.setenv("OK_ML_CONFIGS_DIR", str(tmp_path))
    current = graph_snapshot(build_definitions(load_settings()))
    if os.environ.get("OK_ML_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())
