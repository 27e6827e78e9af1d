"""Registrations from several processes at once are serialized: every version lands, the catalog stays valid."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ok_ml_assets.registry.store import file_md5
from tests.registry.conftest import client, git, interactions_frame, write_parquet

PROCESSES = 4


def start_registration(tmp_path, tag: str, path) -> subprocess.Popen:
    """`ok-ml registry add` in its own process against the registry under tmp_path."""
    env = {**os.environ, "OK_ML_REGISTRY_REPO": str(tmp_path / "registry"), "OK_ML_DVC_REMOTE": str(tmp_path / "remote")}
    return subprocess.Popen(
        [sys.executable, "-m", "ok_ml_assets.cli", "registry", "add", "interactions", str(path), "--tag", tag],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_simultaneous_registrations_into_a_new_registry_all_land_with_distinct_seqs(tmp_path):
    tags = [f"2026-11-{day:02d}" for day in range(1, PROCESSES + 1)]
    paths = [write_parquet(interactions_frame(first_user=1 + 10 * i, day=tag), tmp_path / f"{tag}.parquet") for i, tag in enumerate(tags)]
    processes = [start_registration(tmp_path, tag, path) for tag, path in zip(tags, paths)]
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
    assert all(code == 0 for code, _ in outcomes), outcomes

    registry = client(tmp_path)
    ledger = json.loads((registry.root / "versions.json").read_text())
    assert sorted(ledger["interactions"]) == tags
    assert sorted(v["seq"] for v in ledger["interactions"].values()) == list(range(1, PROCESSES + 1))
    assert git(registry, "status", "--porcelain") == ""
    assert git(registry, "log", "--format=%s").count("register interactions@") == PROCESSES
    for tag, path in zip(tags, paths):
        assert file_md5(registry.path("interactions", tag)) == file_md5(path)
