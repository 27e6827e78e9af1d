"""Bringing your own data: many files, or one raw event log split by day, registered in one call."""

from __future__ import annotations

import datetime as dt
import glob
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ok_ml_assets.registry.catalog import NAIVE, ColumnContract, DatasetContract
from ok_ml_assets.registry.store import Registration, RegistryError

ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def expand_paths(patterns: list[str]) -> list[Path]:
    """Every file named: a file, each parquet file in a folder, or each file a glob matches; sorted, no repeats."""
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            matches = sorted(path.glob("*.parquet"))
        elif path.is_file():
            matches = [path]
        else:
            matches = sorted(Path(m) for m in glob.glob(pattern) if Path(m).is_file())
        if not matches:
            raise RegistryError(f"{pattern}: no file matches (a file, a folder of .parquet files, or a glob)")
        found += [m for m in matches if m not in found]
    return found


def tag_from_name(path: Path, contract: DatasetContract) -> str:
    """A daily version's tag is the first YYYY-MM-DD in its file name; another version's is the file's stem."""
    if contract.partitioning != "daily":
        return path.stem
    day = ISO_DAY.search(path.stem)
    if day is None:
        raise RegistryError(f"{path}: no day (YYYY-MM-DD) in the file name to tag it with: "
                            "pass --tag, name the files by day, or use --tag-column")
    return day.group()


def tag_from_column(path: Path, column: str, contract: DatasetContract) -> str:
    """The one day every value of `column` falls on, in the column's declared zone."""
    try:
        values = pq.read_table(path, columns=[column]).column(column).to_pandas()
    except (KeyError, ValueError) as error:
        raise RegistryError(f"{path}: cannot read column {column!r} to tag the file: {error}") from None
    declared = contract.columns.get(column)
    days = sorted(calendar_days(values.dropna(), declared.timezone if declared else None).unique())
    if len(days) != 1:
        raise RegistryError(f"{path}: column {column!r} must fall on exactly one day to tag the file, found {days[:5] or 'none'}")
    return days[0]


def calendar_days(values: pd.Series, zone: str | None) -> pd.Series:
    """The day (YYYY-MM-DD) of each timestamp or date, counted in `zone` for instants."""
    stamps = pd.to_datetime(values)
    if zone not in (None, NAIVE) and stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert(zone)
    return stamps.dt.strftime("%Y-%m-%d")


def plan_files(name: str, paths: list[Path], contract: DatasetContract, tag: str | None = None,
               tag_column: str | None = None, source: str = "") -> list[Registration]:
    """One registration per file, tagged by `tag` (one file only), by `tag_column`, or by the file name."""
    if tag is not None and len(paths) > 1:
        raise RegistryError(f"--tag names one version, but {len(paths)} files were given; tags then come from file names or --tag-column")
    plans = []
    for path in paths:
        version_tag = tag or (tag_from_column(path, tag_column, contract) if tag_column else tag_from_name(path, contract))
        plans.append(Registration(name, version_tag, path, source or str(path)))
    _refuse_repeated_tags(plans)
    return plans


def _refuse_repeated_tags(plans: list[Registration]) -> None:
    first: dict[str, Path] = {}
    for plan in plans:
        if plan.tag in first:
            raise RegistryError(f"{plan.name}@{plan.tag}: both {first[plan.tag]} and {plan.path} would be that version")
        first[plan.tag] = plan.path


def read_events(path: Path, contract: DatasetContract) -> pd.DataFrame:
    """A raw event log (parquet or CSV) with its columns in the contract's types."""
    try:
        frame = pd.read_csv(path) if path.suffix.lower() in (".csv", ".gz") else pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise RegistryError(f"{path}: cannot read the event log: {error}") from None
    for column, declared in contract.columns.items():
        if column in frame:
            frame[column] = _as_declared(frame[column], declared, f"{path}: column {column!r}")
    return frame


def _as_declared(values: pd.Series, declared: ColumnContract, where: str) -> pd.Series:
    """A column converted to its contract type."""
    try:
        if declared.type == "timestamp":
            return in_zone(values, declared.timezone)
        if declared.type == "date":
            return pd.to_datetime(values).dt.date
        if declared.type == "int64" and values.isna().any():
            return values.astype("Int64")
        return values.astype({"int64": "int64", "float64": "float64", "string": "object", "bool": "bool"}[declared.type])
    except (ValueError, TypeError) as error:
        raise RegistryError(f"{where} cannot be read as {declared.type}: {error}") from None


def in_zone(values: pd.Series, zone: str) -> pd.Series:
    """Timestamps in the declared zone (or zone-less for `naive`); values without a zone or offset are read as UTC."""
    stamps = values if pd.api.types.is_datetime64_any_dtype(values) else pd.to_datetime(values, utc=True, format="ISO8601")
    if stamps.dt.tz is None:
        stamps = stamps.dt.tz_localize("UTC")
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None) if zone == NAIVE else stamps.dt.tz_convert(zone)


def split_by_day(frame: pd.DataFrame, column: str, contract: DatasetContract) -> dict[str, pd.DataFrame]:
    """The event log cut into daily tables by the day of `column`; days between without events are empty tables when
    the contract allows empty versions."""
    if column not in frame:
        raise RegistryError(f"the event log has no column {column!r}; it has {list(frame.columns)}")
    if frame.empty:
        raise RegistryError("the event log holds no events")
    declared = contract.columns.get(column)
    days = calendar_days(frame[column], declared.timezone if declared else None)
    if days.isna().any():
        raise RegistryError(f"{int(days.isna().sum())} events have no {column!r}, so no day to be registered under")
    tables = {day: part.reset_index(drop=True) for day, part in frame.groupby(days, sort=True)}
    if contract.allow_empty:
        first, last = dt.date.fromisoformat(min(tables)), dt.date.fromisoformat(max(tables))
        for offset in range((last - first).days + 1):
            day = (first + dt.timedelta(days=offset)).isoformat()
            tables.setdefault(day, frame.iloc[0:0])
    return dict(sorted(tables.items()))


@contextmanager
def daily_registrations(name: str, tables: dict[str, pd.DataFrame], source: str) -> Iterator[list[Registration]]:
    """The daily tables written as temporary parquet files, as registrations; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="ok-ml-import-") as folder:
        plans = []
        for day, table in tables.items():
            path = Path(folder) / f"{name}-{day}.parquet"
            table.to_parquet(path, index=False)
            plans.append(Registration(name, day, path, f"{source}:{day}"))
        yield plans
