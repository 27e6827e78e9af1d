"""Typed dataset contracts read from data_registry/catalog.yml."""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


NAIVE = "naive"


def _known_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


class CatalogError(ValueError):
    """A catalog file that cannot be used."""


class ColumnContract(BaseModel):
    """What one column must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["int64", "float64", "string", "timestamp", "date", "bool"]
    nullable: bool = False
    allowed: list[str | int] | None = None
    min: float | None = None
    max: float | None = None
    timezone: str | None = Field(
        default=None,
        description="A timestamp column's time zone (an IANA name such as UTC), or `naive` for zone-less wall-clock values.",
    )

    @model_validator(mode="after")
    def _timezone_declared(self) -> ColumnContract:
        if self.type == "timestamp" and self.timezone is None:
            raise ValueError("a timestamp column must declare its timezone (e.g. UTC, or naive for zone-less values)")
        if self.type != "timestamp" and self.timezone is not None:
            raise ValueError(f"only timestamp columns have a timezone, not {self.type}")
        if self.timezone not in (None, NAIVE) and not _known_zone(self.timezone):
            raise ValueError(f"unknown time zone {self.timezone!r}")
        return self


class DatasetContract(BaseModel):
    """A dataset's description and the contract every registered version satisfies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owner: str
    description: str
    partitioning: Literal["daily", "none"] = "daily"
    retention_days: int | None = Field(default=None, ge=1)
    primary_key: list[str] = []
    period_column: str | None = Field(
        default=None, description="A daily dataset's timestamp column whose every value falls on the version's day (its tag)."
    )
    allow_empty: bool = Field(default=False, description="A version may hold no rows (a day without new follows is normal).")
    columns: dict[str, ColumnContract]

    @model_validator(mode="after")
    def _key_columns_exist(self) -> DatasetContract:
        missing = [c for c in self.primary_key if c not in self.columns]
        if missing:
            raise ValueError(f"primary_key names unknown columns {missing}")
        if self.period_column is not None:
            column = self.columns.get(self.period_column)
            if column is None or column.type not in ("timestamp", "date") or self.partitioning != "daily":
                raise ValueError("period_column must name a timestamp or date column of a daily dataset")
        return self


class Catalog(BaseModel):
    """Every dataset the registry accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    datasets: dict[str, DatasetContract]

    @model_validator(mode="after")
    def _names(self) -> Catalog:
        bad = [n for n in self.datasets if not DATASET_NAME.match(n)]
        if bad:
            raise ValueError(f"dataset names {bad} must match {DATASET_NAME.pattern}")
        return self

    def contract(self, name: str) -> DatasetContract:
        """The contract of `name`, or an error listing the known datasets."""
        if name not in self.datasets:
            raise KeyError(f"unknown dataset {name!r}; the catalog has {sorted(self.datasets)}")
        return self.datasets[name]


def load_catalog(path: Path) -> Catalog:
    """Load and validate the catalog file."""
    try:
        return Catalog.model_validate(yaml.safe_load(path.read_text()))
    except OSError as error:
        raise CatalogError(f"{path}: cannot read the catalog: {error.strerror}") from None
    except (ValidationError, yaml.YAMLError) as error:
        raise CatalogError(f"{path}: invalid catalog: {error}") from None
