"""Durable reference of each (experiment, asset): the last accepted statistics and the last published lists.

Layout under the store's root, one folder per experiment and asset:

    <root>/<experiment>/<asset>/reference.json      last accepted BatchSummary with when and by which run
    <root>/<experiment>/<asset>/published.parquet   last published lists (user id + item list), for novelty

Every file is written to a temporary sibling and renamed over the old one, so a reader never sees half a file
and a crash mid-write keeps the previous reference.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ok_ml_assets.monitoring.statistics import BatchSummary

FORMAT_VERSION = 1
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class AssetReference:
    """What the new materialization of an asset is compared with; any part may be missing on a first run."""

    summary: BatchSummary | None = None
    accepted_at: str | None = None
    accepted_run_id: str | None = None
    published: pd.DataFrame | None = None

    @property
    def rows(self) -> int | None:
        """Row count of the last accepted materialization."""
        return self.summary.rows if self.summary is not None else None


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through `write` into a temporary sibling, flush it to disk, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ReferenceStore:
    """JSON and parquet files under `root` holding each asset's accepted reference."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def folder(self, experiment: str, asset: str) -> Path:
        """Where one asset's reference lives."""
        for label, value in (("experiment", experiment), ("asset", asset)):
            if not NAME.match(value):
                raise ValueError(f"{label} name {value!r} cannot name a reference folder")
        return self.root / experiment / asset

    def load(self, experiment: str, asset: str) -> AssetReference:
        """The asset's reference; empty parts when nothing was accepted or published yet."""
        folder = self.folder(experiment, asset)
        reference = folder / "reference.json"
        published = self.published_lists(experiment, asset)
        if not reference.exists():
            return AssetReference(published=published)
        data = json.loads(reference.read_text())
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"{reference}: unknown reference format {data.get('format')!r}")
        return AssetReference(
            summary=BatchSummary.from_dict(data["summary"]),
            accepted_at=data.get("accepted_at"),
            accepted_run_id=data.get("run_id"),
            published=published,
        )

    def accept(self, experiment: str, asset: str, summary: BatchSummary, run_id: str | None = None) -> Path:
        """Make `summary` the reference; call only once every ERROR rule of the materialization passed."""
        path = self.folder(experiment, asset) / "reference.json"
        document = {
            "format": FORMAT_VERSION,
            "experiment": experiment,
            "asset": asset,
            "accepted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "run_id": run_id,
            "summary": summary.to_dict(),
        }
        _atomic_write(path, lambda tmp: tmp.write_text(json.dumps(document, allow_nan=False)))
        return path

    def record_published(
        self, experiment: str, asset: str, lists: pd.DataFrame, user_column: str = "user_id", items_column: str = "source_ids"
    ) -> Path:
        """Keep the lists that were just published, for the next run's novelty."""
        path = self.folder(experiment, asset) / "published.parquet"
        table = lists[[user_column, items_column]].reset_index(drop=True)
        _atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))
        return path

    def published_lists(self, experiment: str, asset: str) -> pd.DataFrame | None:
        """The last published lists, or None when nothing was published yet."""
        path = self.folder(experiment, asset) / "published.parquet"
        return pd.read_parquet(path) if path.exists() else None
