"""What `ok-ml run` tells about the registered world before it runs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ok_ml_assets.configs import load_experiment_config
from ok_ml_assets.orchestration import other_worlds
from ok_ml_assets.settings import PROJECT_ROOT


class Registered:
    """A registry whose every dataset holds one version from the given source."""

    def __init__(self, source: str):
        self.source = source

    def versions(self, name: str):
        return [SimpleNamespace(source=self.source)]


def test_a_run_names_the_world_already_registered_when_another_is_asked_for():
    config = load_experiment_config(PROJECT_ROOT / "asset_configs" / "prod_discovery.yml")
    registered = Registered("synthetic:default:7:2026-11-01")
    assert other_worlds(registered, [config], "default", 7) == {}
    assert other_worlds(registered, [config], "tiny", 7) == {"interactions": "synthetic:default:7",
                                                             "subscriptions": "synthetic:default:7"}
    assert other_worlds(Registered(""), [config], "tiny", 7)["interactions"] == "registered by hand"


def test_a_training_run_names_what_started_it():
    from ok_ml_assets.lifecycle.assets import run_trigger

    assert run_trigger({"dagster/schedule_name": "prod_discovery_weekly"}) == "schedule prod_discovery_weekly"
    assert run_trigger({"dagster/sensor_name": "registry_sensor"}) == "sensor registry_sensor"
    assert run_trigger({}) == "manual run"


def test_a_steps_peak_memory_counts_from_its_own_start():
    from ok_ml_assets.orchestration import peak_rss_gb, reset_peak_rss

    if peak_rss_gb() is None:
        pytest.skip("no /proc/self/status on this system")
    block = np.ones(2**26)  # 512 MiB, touched
    del block
    high = peak_rss_gb()
    reset_peak_rss()
    assert peak_rss_gb() < high - 0.25
