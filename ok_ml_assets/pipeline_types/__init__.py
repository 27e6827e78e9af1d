"""Pipeline types as plug-ins: every package in this folder is one type and exposes `PIPELINE_TYPE`.

Adding a kind of model is adding a package here; nothing shared changes. Packages are imported only when
a config names them, so a code location pays for the types it uses.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from ok_ml_assets.pipeline_types.base import PipelineType, Reproduced

__all__ = ["PipelineType", "Reproduced", "UnknownPipelineType", "known_types", "pipeline_type"]


class UnknownPipelineType(LookupError):
    """A `pipeline_type` that no package provides."""

    def __str__(self) -> str:
        return str(self.args[0])


@cache
def known_types() -> tuple[str, ...]:
    """The names of every pipeline type package, sorted."""
    return tuple(sorted(module.name for module in pkgutil.iter_modules(__path__) if module.ispkg))


def pipeline_type(name: object) -> PipelineType:
    """The pipeline type called `name` (as a config names it), imported on first use."""
    if not isinstance(name, str) or name not in known_types():
        raise UnknownPipelineType(f"unknown pipeline type {name!r}; known types are {list(known_types())}")
    return import_type(name)


@cache
def import_type(name: str) -> PipelineType:
    """The `PIPELINE_TYPE` of the package `name`, checked to carry that name."""
    plugin = importlib.import_module(f"{__name__}.{name}").PIPELINE_TYPE
    if plugin.name != name:
        raise UnknownPipelineType(f"package {name!r} declares the pipeline type {plugin.name!r}")
    return plugin
