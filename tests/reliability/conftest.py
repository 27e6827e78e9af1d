"""Fixtures the reliability suite shares with the registry's tests: a registry holding interactions@2026-11-01."""

from tests.registry.conftest import one_version_template, seeded  # noqa: F401 (fixtures)
