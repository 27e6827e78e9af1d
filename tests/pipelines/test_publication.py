"""A/B rollout and the message format."""

from __future__ import annotations

import json

import numpy as np

from ok_ml_assets.lifecycle.publication import Provenance, in_rollout, message_key
from ok_ml_assets.pipeline_types.recommendation_als.payload import message_value

PROVENANCE = Provenance("prod_discovery", "prod_discovery", "3", "run-1", "2026-11-29T00:00:00+00:00")


def test_rollout_is_stable_and_close_to_the_fraction():
    users = np.arange(10_000_000, 10_020_000)
    first = in_rollout(users, 0.3, "salt-a")
    assert np.array_equal(first, in_rollout(users, 0.3, "salt-a"))
    assert abs(first.mean() - 0.3) < 0.015


def test_rollout_grows_monotonically_and_depends_on_the_salt():
    users = np.arange(20_000)
    small, large = in_rollout(users, 0.1, "s"), in_rollout(users, 0.5, "s")
    assert np.all(large[small])
    assert (in_rollout(users, 0.5, "s") != in_rollout(users, 0.5, "t")).mean() > 0.4


def test_message_is_versioned_json_keyed_by_user():
    value = json.loads(message_value(42, [7, 8], [0.5, 0.25], PROVENANCE))
    assert message_key(42) == b"42"
    assert value == {
        "schema": "ok_ml.recommendations", "version": 1, "user_id": 42,
        "items": [{"source_id": 7, "score": 0.5}, {"source_id": 8, "score": 0.25}],
        "experiment": "prod_discovery", "model": {"name": "prod_discovery", "version": "3"},
        "run_id": "run-1", "generated_at": "2026-11-29T00:00:00+00:00",
    }
