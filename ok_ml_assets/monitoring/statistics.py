"""Column summaries, drift statistics and exposure measures, in numpy: fast on millions of rows."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ok_ml_assets.monitoring.rules import quantile_label

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
PSI_BINS = 20
SKETCH_SIZE = 2001
# A bin empty on one side would make PSI infinite; the floor keeps one empty bin a large but finite term.
PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class ColumnSummary:
    """What one materialization's column looked like: moments, quantiles, PSI bins and a KS sketch.

    Bins are right-closed around `bin_edges`: (-inf, e0], (e0, e1], ..., (e_last, inf).
    `sketch` is the sorted column itself when it is small, else its quantiles at evenly spaced probabilities.
    """

    count: int
    nulls: int
    mean: float
    std: float
    min: float
    max: float
    quantiles: dict[str, float] = field(default_factory=dict)
    bin_edges: tuple[float, ...] = ()
    bin_shares: tuple[float, ...] = (1.0,)
    sketch: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form; non-finite numbers become null."""
        return {
            "count": self.count, "nulls": self.nulls, "mean": _json_float(self.mean), "std": _json_float(self.std),
            "min": _json_float(self.min), "max": _json_float(self.max),
            "quantiles": {k: _json_float(v) for k, v in self.quantiles.items()},
            "bin_edges": [float(e) for e in self.bin_edges], "bin_shares": [float(s) for s in self.bin_shares],
            "sketch": [float(v) for v in self.sketch],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ColumnSummary:
        """The summary `to_dict` wrote."""
        return cls(
            count=int(data["count"]), nulls=int(data["nulls"]), mean=_float(data["mean"]), std=_float(data["std"]),
            min=_float(data["min"]), max=_float(data["max"]),
            quantiles={k: _float(v) for k, v in dict(data["quantiles"]).items()},
            bin_edges=tuple(float(e) for e in data["bin_edges"]), bin_shares=tuple(float(s) for s in data["bin_shares"]),
            sketch=tuple(float(v) for v in data["sketch"]),
        )

    def metadata(self, prefix: str) -> dict[str, float]:
        """Numbers worth plotting over materializations, keyed `<prefix>_<statistic>`."""
        values = {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max, "nulls": float(self.nulls),
                  **self.quantiles}
        return {f"{prefix}_{name}": float(v) for name, v in values.items() if math.isfinite(v)}


@dataclass(frozen=True)
class BatchSummary:
    """One materialization's row count and per-column summaries."""

    rows: int
    columns: dict[str, ColumnSummary] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"rows": self.rows, "columns": {name: s.to_dict() for name, s in self.columns.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> BatchSummary:
        """The summary `to_dict` wrote."""
        return cls(int(data["rows"]), {name: ColumnSummary.from_dict(s) for name, s in dict(data["columns"]).items()})

    def metadata(self) -> dict[str, float]:
        """Row count and every column's statistics as flat numbers, for the asset's metadata."""
        out: dict[str, float] = {"rows": float(self.rows)}
        for name, summary in self.columns.items():
            out.update(summary.metadata(name))
        return out


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _float(value: object) -> float:
    return float("nan") if value is None else float(value)


def numeric_values(values: object) -> np.ndarray:
    """A column as float64 with nulls as NaN."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


def _at(sorted_values: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Inverted-CDF quantiles of an already sorted array: always observed values, so ints stay ints."""
    n = sorted_values.size
    positions = np.ceil(probabilities * n).astype(np.int64) - 1
    return sorted_values[positions.clip(0, n - 1)]


def summarize_column(values: object, bins: int = PSI_BINS, sketch_size: int = SKETCH_SIZE) -> ColumnSummary:
    """Summary of one numeric column; NaN counts as null."""
    raw = numeric_values(values)
    finite = raw[~np.isnan(raw)]
    nulls = int(raw.size - finite.size)
    if finite.size == 0:
        nan = float("nan")
        return ColumnSummary(count=0, nulls=nulls, mean=nan, std=nan, min=nan, max=nan)
    ordered = np.sort(finite)
    edges = np.unique(_at(ordered, np.arange(1, bins) / bins))
    counts = np.diff(np.searchsorted(ordered, edges, side="right"), prepend=0, append=ordered.size)
    if ordered.size <= sketch_size:
        sketch = ordered
    else:
        sketch = ordered[np.linspace(0, ordered.size - 1, sketch_size).round().astype(np.int64)]
    return ColumnSummary(
        count=int(ordered.size),
        nulls=nulls,
        mean=float(ordered.mean()),
        std=float(ordered.std(ddof=1)) if ordered.size > 1 else 0.0,
        min=float(ordered[0]),
        max=float(ordered[-1]),
        quantiles={quantile_label(q): float(v) for q, v in zip(QUANTILES, _at(ordered, np.array(QUANTILES)))},
        bin_edges=tuple(float(e) for e in edges),
        bin_shares=tuple(float(c) for c in counts / ordered.size),
        sketch=tuple(float(v) for v in sketch),
    )


def bin_shares(edges: tuple[float, ...] | np.ndarray, values: object) -> np.ndarray:
    """Share of the non-null values in each right-closed bin around `edges`."""
    finite = numeric_values(values)
    finite = finite[~np.isnan(finite)]
    counts = np.bincount(np.searchsorted(np.asarray(edges, dtype=np.float64), finite, side="left"),
                         minlength=len(edges) + 1)
    return counts / max(finite.size, 1)


def psi_terms(expected: np.ndarray, actual: np.ndarray, floor: float = PSI_FLOOR) -> np.ndarray:
    """Each bin's term of the population stability index between two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), floor)
    a = np.maximum(np.asarray(actual, dtype=np.float64), floor)
    return (a - e) * np.log(a / e)


def psi_from_shares(expected: np.ndarray, actual: np.ndarray, floor: float = PSI_FLOOR) -> float:
    """Population stability index between two share vectors over the same bins."""
    return float(psi_terms(expected, actual, floor).sum())


def bin_labels(edges: tuple[float, ...]) -> list[str]:
    """Readable names of the right-closed bins around `edges`."""
    bounds = [-math.inf, *edges, math.inf]
    return [f"({low:g}, {high:g}]" if math.isfinite(high) else f"({low:g}, inf)" for low, high in zip(bounds[:-1], bounds[1:])]


def psi(reference: ColumnSummary, values: object) -> float:
    """PSI of new values against the reference's bins; a reference or a batch without values gives 0."""
    if reference.count == 0 or not np.isfinite(numeric_values(values)).any():
        return 0.0
    return psi_from_shares(np.asarray(reference.bin_shares), bin_shares(reference.bin_edges, values))


@dataclass(frozen=True)
class KsResult:
    """The KS distance and where the two distribution functions are furthest apart."""

    statistic: float
    at: float
    reference_cdf: float
    cdf: float


def ks_test(reference: ColumnSummary, values: object) -> KsResult:
    """Two-sample Kolmogorov-Smirnov distance between the reference sketch and the new non-null values."""
    new = numeric_values(values)
    new = np.sort(new[~np.isnan(new)])
    ref = np.asarray(reference.sketch, dtype=np.float64)
    if new.size == 0 or ref.size == 0:
        return KsResult(0.0, math.nan, math.nan, math.nan)
    grid = np.concatenate([ref, new])
    cdf_ref = np.searchsorted(ref, grid, side="right") / ref.size
    cdf_new = np.searchsorted(new, grid, side="right") / new.size
    worst = int(np.argmax(np.abs(cdf_ref - cdf_new)))
    return KsResult(float(abs(cdf_ref[worst] - cdf_new[worst])), float(grid[worst]), float(cdf_ref[worst]), float(cdf_new[worst]))


def ks_statistic(reference: ColumnSummary, values: object) -> float:
    """Two-sample Kolmogorov-Smirnov distance between the reference sketch and the new non-null values."""
    return ks_test(reference, values).statistic


def relative_change(previous: float, current: float) -> float:
    """|current - previous| / previous; infinite when something appears from nothing."""
    if previous == 0:
        return 0.0 if current == 0 else math.inf
    return abs(current - previous) / previous


def flatten_lists(lists: pd.Series | list) -> tuple[np.ndarray, np.ndarray]:
    """Each list's length and all list elements concatenated, in order."""
    seq = list(lists)
    lengths = np.fromiter((len(v) for v in seq), dtype=np.int64, count=len(seq))
    if not seq or lengths.sum() == 0:
        return lengths, np.array([], dtype=np.float64)
    return lengths, np.concatenate([np.asarray(v) for v in seq])


def exposure(items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each recommended item and how often it was recommended, most recommended first."""
    ids, counts = np.unique(np.asarray(items), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return ids[order], counts[order]


def exposure_counts(items: np.ndarray, catalog: np.ndarray | None = None) -> np.ndarray:
    """How often each item was recommended; catalog items never recommended count as zero."""
    ids, counts = exposure(items)
    if catalog is not None:
        unseen = int((~is_in(pd.unique(np.asarray(catalog)), ids)).sum())
        counts = np.concatenate([counts, np.zeros(unseen, dtype=counts.dtype)])
    return counts


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of exposure: 0 when every item is shown equally, towards 1 when a few take all."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = x.size, x.sum()
    if n == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float(2.0 * np.sum(ranks * x) / (n * total) - (n + 1) / n)


def top_share(counts: np.ndarray, top_n: int) -> float:
    """Share of all recommended slots taken by the `top_n` most recommended items."""
    x = np.asarray(counts, dtype=np.float64)
    if x.sum() == 0:
        return 0.0
    top = np.partition(x, x.size - top_n)[x.size - top_n:] if top_n < x.size else x
    return float(top.sum() / x.sum())


def is_in(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Membership by hashing: numpy's isin builds a table over the value range, slow for wide pair keys."""
    return pd.Series(values).isin(known).to_numpy()


def pair_keys(users: np.ndarray, items: np.ndarray, *others: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
    """Exact int64 keys of (user, item) pairs, comparable across all the given pair sets."""
    sets = [(np.asarray(users), np.asarray(items)), *[(np.asarray(u), np.asarray(i)) for u, i in others]]
    user_codes, user_index = pd.factorize(np.concatenate([u for u, _ in sets]))
    item_codes, item_index = pd.factorize(np.concatenate([i for _, i in sets]))
    keys = user_codes.astype(np.int64) * max(len(item_index), 1) + item_codes
    bounds = np.cumsum([0, *[len(u) for u, _ in sets]])
    return [keys[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def pairs_in(users: np.ndarray, items: np.ndarray, known_users: np.ndarray, known_items: np.ndarray) -> np.ndarray:
    """Whether each (user, item) pair is among the known pairs."""
    keys, known = pair_keys(users, items, (known_users, known_items))
    return is_in(keys, known)


@dataclass(frozen=True)
class Novelty:
    """Share of today's items a user was not shown in the previous lists, over users in both."""

    share: float
    users_compared: int
    items_compared: int


def novelty(users: np.ndarray, items: np.ndarray, previous_users: np.ndarray, previous_items: np.ndarray) -> Novelty:
    """Novelty of the flattened (user, item) recommendations against the previous flattened lists."""
    users, items = np.asarray(users), np.asarray(items)
    compared = is_in(users, np.asarray(previous_users))
    if not compared.any():
        return Novelty(share=1.0, users_compared=0, items_compared=0)
    seen = pairs_in(users[compared], items[compared], previous_users, previous_items)
    return Novelty(
        share=float(1.0 - seen.mean()),
        users_compared=int(np.unique(users[compared]).size),
        items_compared=int(compared.sum()),
    )
