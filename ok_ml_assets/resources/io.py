"""Asset values as parquet files (tables) or JSON (small typed records) in a local folder.

A Spark DataFrame is stored as a partitioned parquet dataset (a folder of part files) under the same name, so both
engines' values sit in the same place and the Dagster UI shows the same assets. A consuming input gets the form it
asks for: pandas for `pd.DataFrame`, a Spark DataFrame for `EngineTable` when the value was stored by Spark.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import BaseModel, PrivateAttr

from ok_ml_assets.engines import is_spark_frame
from ok_ml_assets.lifecycle.locks import EXPERIMENT_TAG, hold_experiment
from ok_ml_assets.lifecycle.recovery import close_dead_runs
from ok_ml_assets.preflight import replace_folder, write_atomically
from ok_ml_assets.resources.mlflow import MlflowResource

RECORD_TYPE = "__record__"

# An input of this type gets a table in its engine's form: a Spark DataFrame if Spark stored it, else pandas.
EngineTable = dg.DagsterType(type_check_fn=lambda _, value: True, name="EngineTable", typing_type=object,
                             description="A table in the form its engine works on: pandas (local) or a Spark DataFrame (spark).")


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
        if is_spark_frame(obj):
            return self._handle_spark_output(context, obj)
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

    def _handle_spark_output(self, context: dg.OutputContext, frame) -> None:
        """A Spark DataFrame as a partitioned parquet dataset, written by the executors and swapped in whole."""
        path = self._path(context.asset_key, ".parquet")
        replace_folder(path, lambda tmp: frame.write.mode("overwrite").parquet(str(tmp)))
        parts = len(list(path.glob("part-*")))
        context.add_output_metadata({
            "path": dg.MetadataValue.path(str(path)),
            "parquet_parts": dg.MetadataValue.int(parts),
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(field.name, field.dataType.simpleString()) for field in frame.schema.fields]),
        })

    def load_input(self, context: dg.InputContext) -> object:
        key = context.asset_key
        table, record = self._path(key, ".parquet"), self._path(key, ".json")
        if table.is_dir() and context.dagster_type.key == EngineTable.key:
            from ok_ml_assets.engines.spark import session

            return session().read.parquet(str(table))
        if table.exists():
            return pd.read_parquet(table)
        if record.exists():
            return load_record(record.read_text())
        raise FileNotFoundError(f"{key.to_user_string()} has not been materialized yet (looked in {table.parent})")
