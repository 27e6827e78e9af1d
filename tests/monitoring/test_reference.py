"""The reference store keeps the last accepted statistics and the last published lists, durably."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ok_ml_assets.monitoring.reference import ReferenceStore
from ok_ml_assets.monitoring.statistics import BatchSummary, summarize_column


def batch(seed: int) -> BatchSummary:
    rng = np.random.default_rng(seed)
    return BatchSummary(rows=1_000 + seed, columns={"weight": summarize_column(rng.lognormal(size=1_000 + seed)),
                                                    "events": summarize_column(rng.poisson(2, size=1_000 + seed))})


def test_nothing_accepted_yet_gives_an_empty_reference(tmp_path):
    reference = ReferenceStore(tmp_path).load("prod_discovery", "user_source_features")
    assert reference.summary is None and reference.rows is None and reference.published is None


def test_accepted_statistics_round_trip_and_the_last_acceptance_wins(tmp_path):
    store = ReferenceStore(tmp_path)
    store.accept("prod_discovery", "user_source_features", batch(1), run_id="run-1")
    store.accept("prod_discovery", "user_source_features", batch(2), run_id="run-2")
    reloaded = ReferenceStore(tmp_path).load("prod_discovery", "user_source_features")
    assert reloaded.summary == batch(2) and reloaded.rows == 1_002
    assert reloaded.accepted_run_id == "run-2" and reloaded.accepted_at
    assert ReferenceStore(tmp_path).load("prod_discovery", "recommendations").summary is None


def test_references_are_readable_json_and_no_temporary_file_is_left(tmp_path):
    path = ReferenceStore(tmp_path).accept("exp", "asset", batch(0))
    assert path == tmp_path / "exp" / "asset" / "reference.json"
    document = json.loads(path.read_text())
    assert document["format"] == 1 and document["summary"]["rows"] == 1_000
    assert [p.name for p in path.parent.iterdir()] == ["reference.json"]


def test_a_failed_write_keeps_the_previous_reference(tmp_path, monkeypatch):
    store = ReferenceStore(tmp_path)
    store.accept("exp", "asset", batch(1))
    broken = batch(2)
    monkeypatch.setattr(BatchSummary, "to_dict", lambda self: {"rows": float("nan")})
    with pytest.raises(ValueError):
        store.accept("exp", "asset", broken)
    monkeypatch.undo()
    assert store.load("exp", "asset").summary == batch(1)
    assert [p.name for p in (tmp_path / "exp" / "asset").iterdir()] == ["reference.json"]


def test_published_lists_round_trip(tmp_path):
    store = ReferenceStore(tmp_path)
    lists = pd.DataFrame({"user_id": [1, 2], "source_ids": [[10, 11], [12]], "scores": [[0.5, 0.4], [0.3]]})
    store.record_published("exp", "recommendations", lists)
    reference = store.load("exp", "recommendations")
    assert reference.summary is None
    assert list(reference.published.columns) == ["user_id", "source_ids"]
    assert [list(v) for v in reference.published["source_ids"]] == [[10, 11], [12]]


@pytest.mark.parametrize("experiment,asset", [("../etc", "x"), ("exp", "a/b"), ("", "x")])
def test_names_that_would_escape_the_store_are_refused(tmp_path, experiment, asset):
    with pytest.raises(ValueError, match="cannot name a reference folder"):
        ReferenceStore(tmp_path).load(experiment, asset)


def test_an_unknown_format_is_refused(tmp_path):
    store = ReferenceStore(tmp_path)
    path = store.accept("exp", "asset", batch(0))
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError, match="unknown reference format"):
        store.load("exp", "asset")
