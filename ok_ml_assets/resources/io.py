"""Asset values as parquet files (tables) or JSON (small records) in a local folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pandas as pd


class LocalParquetIOManager(dg.ConfigurableIOManager):
    """Stores DataFrames as `<base_dir>/<experiment>/<asset>.parquet` and dicts as `.json`."""

    base_dir: str

    def _path(self, key: dg.AssetKey, suffix: str) -> Path:
        return Path(self.base_dir).joinpath(*key.path).with_suffix(suffix)

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is None:
            return
        if isinstance(obj, pd.DataFrame):
            path, write = self._path(context.asset_key, ".parquet"), lambda p: obj.to_parquet(p, index=False)
        elif isinstance(obj, dict):
            path, write = self._path(context.asset_key, ".json"), lambda p: p.write_text(json.dumps(obj, indent=1))
        else:
            raise TypeError(f"{context.asset_key.to_user_string()}: cannot store a {type(obj).__name__}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        write(tmp)
        os.replace(tmp, path)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> object:
        key = context.asset_key
        table, record = self._path(key, ".parquet"), self._path(key, ".json")
        if table.exists():
            return pd.read_parquet(table)
        if record.exists():
            return json.loads(record.read_text())
        raise FileNotFoundError(f"{key.to_user_string()} has not been materialized yet (looked in {table.parent})")
