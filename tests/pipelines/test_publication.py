"""A/B rollout and the message format."""

from __future__ import annotations

import json

import numpy as np

from ok_ml_assets.lifecycle.publication import Provenance, in_rollout, message_key, rollout_bucket, rounded
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


def test_bulk_rollout_picks_exactly_the_entities_of_the_per_entity_hash():
    rng = np.random.default_rng(5)
    users = np.r_[rng.integers(0, 2**62, 20_000), np.arange(5_000), [-1, -(2**40), 2**63 - 1]]
    for fraction, salt in ((0.3, "prod_discovery-ab-1"), (0.5, "соль"), (0.999, "")):
        expected = np.array([rollout_bucket(int(u), salt) < fraction for u in users])
        assert np.array_equal(in_rollout(users, fraction, salt), expected)
    as_text = np.array([str(u) for u in users[:100]], dtype=object)
    assert np.array_equal(in_rollout(as_text, 0.5, "s"), in_rollout(users[:100], 0.5, "s"))
    assert in_rollout(np.array([], dtype=np.int64), 0.5, "s").shape == (0,)


def test_bulk_rounding_is_pythons_round_bit_for_bit():
    rng = np.random.default_rng(6)
    halves = (rng.integers(-10**7, 10**7, 100_000) + 0.5) / 1e6  # as close to a rounding tie as floats get
    values = np.r_[rng.random(200_000).astype(np.float32), rng.normal(0, 5, 100_000), rng.normal(0, 1e6, 20_000), halves,
                   np.nextafter(halves, np.inf), np.nextafter(halves, -np.inf), rng.random(20_000) * 1e-5,
                   [0.0, -0.0, 1e-7, -1e-7, 5e-7, 2.5e-6, 1e15, 1e16, 1e300, -1e300, 5e-324, np.inf, -np.inf, np.nan, 4294.9672955]]
    expected = np.array([round(float(v), 6) for v in values])
    got = rounded(values)
    assert np.array_equal(got.view(np.int64), expected.view(np.int64))  # the same bits: -0.0, and NaN where NaN
