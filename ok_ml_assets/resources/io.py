"""Asset values as parquet files (tables) or JSON (small typed records) in a local folder."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import BaseModel, PrivateAttr

from ok_ml_assets.lifecycle.locks import EXPERIMENT_TAG, hold_experiment
from ok_ml_assets.lifecycle.recovery import close_dead_runs
from ok_ml_assets.preflight import write_atomically
from ok_ml_assets.resources.mlflow import MlflowResource

RECORD_TYPE = "__record__"


def record_json(record: BaseModel) -> str:
    """A typed record as JSON that names its class, so it loads back as the same type."""
    kind = type(record)
    return json.dumps({RECORD_TYPE: f"{kind.__module__}:{kind.__qualname__}", **record.model_dump(mode="json")}, indent=1)


def load_record(text: str) -> object:
    """A record written by `record_json` (a plain dict when it names no class)."""
    data = json.loads(text)
    if not isinstance(data, dict) or RECORD_TYPE not in data:
        return data
    module, _, name = data.pop(RECORD_TYPE).partition(":")
    return getattr(importlib.import_module(module), name).model_validate(data)


def frame_schema(frame: pd.DataFrame) -> dg.TableSchema:
    """A table's columns and their types, as the Dagster UI shows them."""
    return dg.TableSchema(columns=[dg.TableColumn(str(name), str(dtype)) for name, dtype in frame.dtypes.items()])


class LocalParquetIOManager(dg.ConfigurableIOManager):
    """Stores DataFrames as `<base_dir>/<experiment>/<asset>.parquet` and records (pydantic) or dicts as `.json`.

    A run of an experiment's job (tagged with its experiment) holds that experiment's lock from start to end, so two
    refreshes never write the same asset files, whether they run from `ok-ml run`, the UI or the daemon. Taking it, a
    run closes what a killed run of the experiment left: its Dagster and MLflow runs, its undecided model versions (in
    the tracking store `mlflow`, when given) and its half-written values.
    """

    base_dir: str
    mlflow: MlflowResource | None = None
    _hold: object = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        run = context.dagster_run
        experiment = run.tags.get(EXPERIMENT_TAG) if run is not None else None
        if not experiment:
            return
        self._hold = hold_experiment(Path(self.base_dir), experiment, run.run_id)
        try:
            for line in close_dead_runs(context.instance, self.mlflow, Path(self.base_dir), experiment, run.run_id, self._hold.previous):
                context.log.warning(line)
        except BaseException:
            self.teardown_after_execution(context)
            raise

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._hold is not None:
            self._hold.release()
            self._hold = None

    def _path(self, key: dg.AssetKey, suffix: str) -> Path:
        return Path(self.base_dir).joinpath(*key.path).with_suffix(suffix)

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is None:
            return
        if isinstance(obj, pd.DataFrame):
            path, write = self._path(context.asset_key, ".parquet"), lambda p: obj.to_parquet(p, index=False)
        elif isinstance(obj, BaseModel):
            path, write = self._path(context.asset_key, ".json"), lambda p: p.write_text(record_json(obj))
        elif isinstance(obj, dict):
            path, write = self._path(context.asset_key, ".json"), lambda p: p.write_text(json.dumps(obj, indent=1))
        else:
            raise TypeError(f"{context.asset_key.to_user_string()}: cannot store a {type(obj).__name__}")
        write_atomically(path, write)
        metadata = {"path": dg.MetadataValue.path(str(path))}
        if isinstance(obj, pd.DataFrame):
            metadata["dagster/column_schema"] = frame_schema(obj)
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> object:
        key = context.asset_key
        table, record = self._path(key, ".parquet"), self._path(key, ".json")
        if table.exists():
            return pd.read_parquet(table)
        if record.exists():
            return load_record(record.read_text())
        raise FileNotFoundError(f"{key.to_user_string()} has not been materialized yet (looked in {table.parent})")
