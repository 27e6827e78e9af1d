"""Fixtures every serving test shares: each store kind (LMDB, Redis) on fresh state."""

from tests.serving.test_stores import backend, reachable_redis  # noqa: F401 (fixtures)
