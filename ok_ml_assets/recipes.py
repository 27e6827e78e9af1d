"""Recipes: a pipeline type's stages in order, each a plain function of named values and its config sections.

Like a Kedro `pipeline.py`, a type's tuple of `Stage`s is the one place its step order exists: its Dagster
builder materializes the stages as assets, and reproduction, replays and benchmarks call `run_recipe`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel


@dataclass(frozen=True)
class VersionFile:
    """One registered version of a dataset on local disk: a recipe's input."""

    tag: str
    path: Path


@dataclass(frozen=True)
class Stage:
    """One step: the value it makes, the values and config sections it reads, and the function."""

    output: str
    function: Callable
    inputs: tuple[str, ...]
    sections: tuple[str, ...] = ()

    def run(self, config: BaseModel, values: Mapping[str, object]) -> object:
        """Call the stage on its inputs and its own parameter sections."""
        return self.function(*(values[name] for name in self.inputs), *(getattr(config, s) for s in self.sections))


def stage_index(stages: Sequence[Stage]) -> dict[str, Stage]:
    """Each stage by the value it makes, for a builder that materializes stages one asset at a time."""
    return {stage.output: stage for stage in stages}


def run_recipe(
    stages: Sequence[Stage], config: BaseModel, values: Mapping[str, object], targets: Iterable[str]
) -> dict[str, object]:
    """Compute `targets` from the given values, running only the stages they need, in recipe order."""
    known, targets = dict(values), list(targets)
    produced = {stage.output for stage in stages}
    needed = set(targets)
    for stage in reversed(stages):
        if stage.output in needed and stage.output not in known:
            needed.update(stage.inputs)
    missing = sorted(name for name in needed - known.keys() if name not in produced)
    if missing:
        raise ValueError(f"the recipe needs {missing} to compute {sorted(targets)}")
    for stage in stages:
        if stage.output in needed and stage.output not in known:
            known[stage.output] = stage.run(config, known)
    return known
