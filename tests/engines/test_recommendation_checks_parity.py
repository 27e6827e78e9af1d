"""The same monitoring checks pass and fail on both engines' features, on a clean window and on injected faults.

The reference is accepted from the clean window's local features (as a first run would); each faulty window's features
are then computed by each engine and judged against it, rule by rule. The daily rules read the raw registered days:
pandas on the local engine, a Spark table of the same files on Spark.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from ok_ml_assets.configs import parse_experiment_text
from ok_ml_assets.monitoring import daily, spark_daily
from ok_ml_assets.monitoring import evaluate as ev
from ok_ml_assets.monitoring.reference import ReferenceStore
from ok_ml_assets.monitoring.rules import DailyRule, window_columns
from ok_ml_assets.pipeline_types.recommendation_als.engine import LocalEngine
from ok_ml_assets.pipeline_types.recommendation_als.spark import SparkEngine
from ok_ml_assets.settings import PROJECT_ROOT
from ok_ml_assets.synthetic import faults, generate_world

pytestmark = pytest.mark.spark
WINDOW = 10
FAULTS = {
    "clean": lambda frame: frame,
    "every event delivered twice": lambda frame: faults.duplicate_rows(frame, ts_shift=pd.Timedelta(seconds=1)),
    "views recorded as comments": lambda frame: faults.relabel(frame, mapping={"view": "comment"}),
    "a new source id space": lambda frame: faults.remap_ids(frame),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The tiny world's interaction days, the last WINDOW + 2 of them."""
    return [(dt.date.fromisoformat(day.tag), day.interactions) for day in generate_world("tiny", seed=7).days()][-(WINDOW + 2):]


@pytest.fixture(scope="module")
def config():
    """prod_discovery as committed."""
    return parse_experiment_text((PROJECT_ROOT / "asset_configs" / "prod_discovery.yml").read_text(), "prod_discovery.yml")


@pytest.fixture(scope="module")
def rules(config):
    """Every rule of user_source_features: on the table itself, and the daily ones on the raw days."""
    return config.monitoring["user_source_features"]


def local_window(paths: list[Path], rules) -> dict:
    """The raw days as a local experiment's checks read them."""
    columns = window_columns(rules, "interactions")
    return {"interactions": daily.window_frame((path.stem, pd.read_parquet(path, columns=columns)) for path in paths)}


def spark_window(paths: list[Path], rules, spark) -> dict:
    """The raw days as a Spark experiment's checks read a long window."""
    return {"interactions": spark_daily.read_window(spark, [(path.stem, path) for path in paths], window_columns(rules, "interactions"))}


def window_files(folder: Path, days, break_last: int, fault) -> tuple[list[Path], dt.date]:
    """The window's files, its last `break_last` days broken by `fault`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (day, frame) in enumerate(days):
        path = folder / f"{day}.parquet"
        (fault(frame) if i >= len(days) - break_last else frame).to_parquet(path, index=False)
        paths.append(path)
    return paths, days[-1][0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, world, config, rules):
    """The clean window before the faulty one, accepted as the reference from the local engine's features."""
    paths, as_of = window_files(tmp_path_factory.mktemp("reference"), world[:WINDOW], 0, FAULTS["clean"])
    store = ReferenceStore(tmp_path_factory.mktemp("store"))
    report = ev.monitor(store, "prod_discovery", "user_source_features", rules, LocalEngine().features(paths, as_of, config.features),
                        local_window(paths, rules))
    assert report.accepted
    return store.load("prod_discovery", "user_source_features")


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_engine_gets_the_same_verdict_on_every_rule(fault, tmp_path, world, config, rules, reference, spark):
    paths, as_of = window_files(tmp_path, world[2:], 3, FAULTS[fault])
    local_features = LocalEngine().features(paths, as_of, config.features)
    local = ev.evaluate("user_source_features", rules, local_features, reference, local_window(paths, rules))
    spark_features = SparkEngine(spark).features(paths, as_of, config.features)
    on_spark = ev.evaluate("user_source_features", rules, spark_features, reference, spark_window(paths, rules, spark))
    assert all(o.engine == "spark" and o.evaluated for o, rule in zip(on_spark, rules) if isinstance(rule, DailyRule))
    assert [(o.check_name, o.passed) for o in on_spark] == [(o.check_name, o.passed) for o in local]
    for found, expected in zip(on_spark, local):
        assert found.observed == pytest.approx(expected.observed, rel=1e-9, abs=1e-12), found.check_name
    blocked = [o.check_name for o in local if o.blocking]
    assert bool(blocked) == (fault != "clean"), blocked
    # Each fault also breaks the raw days (twice the rows, another event mix, unknown sources): a daily rule sees it.
    assert any(not o.passed for o, rule in zip(on_spark, rules) if isinstance(rule, DailyRule)) == (fault != "clean")
