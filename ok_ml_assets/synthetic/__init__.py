"""Realistic, seedable synthetic social-network data for runs, tests and benchmarks."""

from ok_ml_assets.synthetic.world import PRESETS, Preset, SyntheticWorld, generate_world

__all__ = ["PRESETS", "Preset", "SyntheticWorld", "generate_world"]
