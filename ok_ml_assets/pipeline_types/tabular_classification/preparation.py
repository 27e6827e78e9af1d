"""Feature preparation: per-column missing-value policies and category codes, learned on the train split only."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ok_ml_assets.pipeline_types.tabular_classification.config import Features

MISSING_LEVEL = "__missing__"


@dataclass(frozen=True)
class Preparation:
    """What turns a table into the model's matrix: fill values of numeric columns, levels of categorical ones."""

    numeric: dict[str, float | None] = field(default_factory=dict)
    categorical: dict[str, list[str]] = field(default_factory=dict)
    missing_level: dict[str, bool] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    @property
    def categorical_positions(self) -> list[int]:
        """Matrix columns that hold category codes."""
        return [i for i, name in enumerate(self.order) if name in self.categorical]

    def to_dict(self) -> dict:
        """JSON-ready form, logged with the model."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preparation:
        """The preparation back from its logged form."""
        return cls(**data)


# Policies whose fill value needs no statistic: keep leaves gaps for the model's own missing branch.
FIXED_FILLS: dict[str, float | None] = {"keep": None, "zero": 0.0}


def statistic_fill(statistic: float | None) -> float:
    """A learned mean or median as a fill value; a column with no number at all fills with zero."""
    return float(statistic) if statistic is not None and pd.notna(statistic) else 0.0


def fill_value(values: pd.Series, policy: str) -> float | None:
    """The value a numeric column's gaps get: None keeps them for the model's own missing branch."""
    if policy in FIXED_FILLS:
        return FIXED_FILLS[policy]
    numbers = pd.to_numeric(values, errors="coerce")
    return statistic_fill(numbers.mean() if policy == "mean" else numbers.median())


def fit_preparation(train: pd.DataFrame, features: Features) -> Preparation:
    """Learn fill values and category levels from the train split."""
    missing = [c.name for c in features.columns if c.name not in train.columns]
    if missing:
        raise ValueError(f"feature columns {missing} are not in the dataset; it has {sorted(train.columns)}")
    numeric, categorical, missing_level = {}, {}, {}
    for column in features.columns:
        if column.kind == "numeric":
            numeric[column.name] = fill_value(train[column.name], column.missing)
        else:
            categorical[column.name] = sorted(train[column.name].dropna().astype(str).unique().tolist())
            missing_level[column.name] = column.missing == "category"
    return Preparation(numeric, categorical, missing_level, [c.name for c in features.columns])


def prepare(frame: pd.DataFrame, preparation: Preparation) -> np.ndarray:
    """The model's float matrix: numeric gaps filled by policy; categories as codes (unknown levels are missing)."""
    columns = []
    for name in preparation.order:
        if name in preparation.numeric:
            values = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
            fill = preparation.numeric[name]
            columns.append(values.fillna(fill).to_numpy() if fill is not None else values.to_numpy())
        else:
            levels = preparation.categorical[name]
            codes = pd.Categorical(frame[name].astype("string"), categories=levels).codes.astype(np.float64)
            codes[codes < 0] = np.nan
            if preparation.missing_level[name]:
                codes[frame[name].isna().to_numpy()] = len(levels)
            columns.append(codes)
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))
