"""Sensors: react to newly registered datasets by adding partitions and requesting the runs they need."""

from ok_ml_assets.sensors.registry_sensor import build_registry_sensor
from ok_ml_assets.sensors.serving_sensor import build_serving_sensor

__all__ = ["build_registry_sensor", "build_serving_sensor"]
