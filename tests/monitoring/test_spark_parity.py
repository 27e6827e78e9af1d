"""Spark evaluates every monitoring rule as the numpy engine does on the same table: verdict, observed value, examples.

Each case is one Spark DataFrame; the numpy engine gets its `toPandas()` (what a local experiment would hold), so
"the first offending rows" mean the same rows in both. Floats of moments are held within 1e-9 relative, counts,
quantiles, PSI, KS and exposure measures exactly.
"""

from __future__ import annotations

import math
from dataclasses import astuple

import numpy as np
import pandas as pd
import pytest
import yaml

from ok_ml_assets.monitoring import evaluate as ev
from ok_ml_assets.monitoring import spark as sm
from ok_ml_assets.monitoring import statistics as st
from ok_ml_assets.monitoring.reference import AssetReference, ReferenceStore
from ok_ml_assets.monitoring.rules import parse_monitoring
from ok_ml_assets.settings import PROJECT_ROOT
from tests.monitoring.test_parity import COLUMN_RULES

pytest.importorskip("pyspark")
from pyspark.sql import types as T  # noqa: E402

PROD = yaml.safe_load((PROJECT_ROOT / "asset_configs" / "prod_discovery.yml").read_text())["monitoring"]
PROD_RULES = parse_monitoring(PROD)
pytestmark = pytest.mark.spark
FEATURE_RULES = [rule for rule in PROD_RULES["user_source_features"] if rule.rule not in {
    "daily_rows_change", "daily_distinct_change", "rows_per_entity_change", "category_mix_psi", "key_overlap", "hours_covered"}]
LIST_RULES = PROD_RULES["recommendations"]


@pytest.fixture(scope="module")
def stored(spark, tmp_path_factory):
    """A table as a Spark experiment's check gets it: written by Spark as parquet parts, read back."""
    folder = tmp_path_factory.mktemp("tables")

    def store(frame, partitions: int = 3):
        path = str(folder / f"t{len(list(folder.iterdir()))}.parquet")
        frame.repartition(partitions).write.parquet(path)
        return spark.read.parquet(path)
    return store


@pytest.fixture(params=["value counts", "sorted"])
def order_statistics(request, monkeypatch):
    """Both ways Spark finds order statistics: counts per value (few distinct values) and a sorted column (many)."""
    if request.param == "sorted":
        monkeypatch.setattr(sm, "DISTINCT_AT_MOST", -1)
    return request.param


def same_value(a, b, rel=1e-9) -> bool:
    """Equal; floats within `rel` relative; nulls of any kind (None, NaN, NaT) alike."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k], rel) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y, rel) for x, y in zip(a, b))
    if a is None or b is None or (not isinstance(a, (list, dict, str)) and pd.isna(a)):
        return (a is None or pd.isna(a)) and (b is None or pd.isna(b))
    if isinstance(a, float) or isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=rel)
    return a == b


def assert_same(spark_outcome: ev.RuleOutcome, numpy_outcome: ev.RuleOutcome, rel: float = 1e-9) -> None:
    name = numpy_outcome.check_name
    assert spark_outcome.check_name == name
    if spark_outcome.engine == "spark" and numpy_outcome.engine == "numpy" and "could not evaluate" in numpy_outcome.description:
        assert "could not evaluate" in spark_outcome.description and not spark_outcome.passed, (name, spark_outcome.description)
        return
    assert (spark_outcome.passed, spark_outcome.evaluated) == (numpy_outcome.passed, numpy_outcome.evaluated), (
        name, spark_outcome.description, numpy_outcome.description)
    assert same_value(spark_outcome.observed, numpy_outcome.observed, rel), (name, spark_outcome.observed, numpy_outcome.observed)
    assert same_value(spark_outcome.examples, numpy_outcome.examples, rel), (name, spark_outcome.examples, numpy_outcome.examples)
    assert same_value(spark_outcome.details, numpy_outcome.details, rel), (name, spark_outcome.details, numpy_outcome.details)
    assert spark_outcome.thresholds == numpy_outcome.thresholds


def both(rules, frame, reference=None, context=None) -> list[tuple[ev.RuleOutcome, ev.RuleOutcome]]:
    """(Spark, numpy) outcomes of the same rules on a Spark frame and on its pandas copy."""
    pandas_context = {k: v.toPandas() for k, v in (context or {}).items()}
    spark_outcomes = ev.evaluate("asset", rules, frame, reference, context)
    numpy_outcomes = ev.evaluate("asset", rules, frame.toPandas(), reference, pandas_context)
    assert {o.engine for o in spark_outcomes} <= {"spark", "numpy"}
    return list(zip(spark_outcomes, numpy_outcomes))


# ---- column value rules on every column type -------------------------------------------------------------------

COLUMN_SCHEMA = T.StructType([
    T.StructField("user_id", T.LongType()),
    T.StructField("floats", T.DoubleType()),
    T.StructField("ints", T.LongType()),
    T.StructField("small_floats", T.FloatType()),
    T.StructField("small_ints", T.IntegerType()),
    T.StructField("flags", T.BooleanType()),
    T.StructField("nulls", T.DoubleType()),
    T.StructField("nullable_ints", T.LongType()),
    T.StructField("strings", T.StringType()),
    T.StructField("infinite", T.DoubleType()),
])
NAN, INF = float("nan"), float("inf")
COLUMN_ROWS = [
    (10, 1.0, 1, 0.5, 1, True, None, 1, "a", 1.0),
    (11, NAN, 2, 1.5, 2, False, NAN, None, None, INF),
    (12, 3.0, 3, 2.0, 2, True, None, 3, "b", -INF),
    (13, 2.0, 2, 3.0, 2, True, NAN, 2, "c", 2.0),
    (14, 500.0, 4, 3.0, 2, True, None, 4, "a", None),
    (15, None, 7, 0.25, 3, None, None, 2, "a", NAN),
]


def column_specs() -> list[dict]:
    specs = []
    for field in COLUMN_SCHEMA.fields[1:]:
        for spec in COLUMN_RULES:
            specs.append({**spec, "column": field.name, "name": f"{field.name}_{spec.get('name') or spec['rule']}_{len(specs)}"})
    return specs


@pytest.mark.parametrize("rows", ["all", "empty"])
def test_column_value_rules_match_numpy(spark, stored, rows):
    data = {"all": COLUMN_ROWS, "empty": []}[rows]
    frame = stored(spark.createDataFrame(data, COLUMN_SCHEMA), 3 if rows == "all" else 1)
    pairs = both(parse_monitoring({"asset": column_specs()})["asset"], frame)
    for spark_outcome, numpy_outcome in pairs:
        # pandas computes float32 moments in single precision.
        rel = 1e-6 if "small_floats" in numpy_outcome.check_name else 1e-9
        assert_same(spark_outcome, numpy_outcome, rel)
    if rows == "all":
        assert {s.passed for s, _ in pairs} == {True, False}
        assert sum(bool(s.examples) for s, _ in pairs) > 10
        assert any("could not evaluate" in s.description for s, _ in pairs)


def test_nearest_rank_is_pandas_nearest_quantile():
    for n in range(1, 120):
        values = pd.Series(np.arange(n))
        for q in (0.01, 0.05, 0.1, 0.25, 0.3, 0.5, 0.7, 0.75, 0.9, 0.95, 0.99, 0.999):
            assert sm.nearest_rank(n, q) == values.quantile(q, interpolation="nearest"), (n, q)


# ---- features: prod_discovery's rules, with and without a reference -------------------------------------------

def features(spark, stored, users: int, seed: int, faults: bool = False):
    rng = np.random.default_rng(seed)
    rows = users * 8
    frame = pd.DataFrame({
        "user_id": rng.integers(0, users, rows), "source_id": rng.integers(0, 500, rows),
        "weight": rng.gamma(1.5, 2.0, rows).round(3), "events": rng.integers(1, 40, rows),
        "days_since_last": rng.integers(0, 30, rows),
    })
    if faults:
        frame.loc[:4, "weight"] = np.nan
        frame.loc[5:8, "weight"] = -1.0
        frame.loc[9, "weight"] = np.inf
        frame.loc[10:14, "days_since_last"] = 400
        frame["events"] = frame["events"] * 3
    schema = "user_id long, source_id long, weight double, events long, days_since_last long"
    return stored(spark.createDataFrame(frame, schema), 4)


def test_feature_rules_match_numpy_on_first_and_later_runs(spark, stored, tmp_path, order_statistics):
    store = ReferenceStore(tmp_path)
    first = features(spark, stored, 400, seed=1)
    # The first run has no reference: drift and row count rules stay unevaluated in both engines.
    for spark_outcome, numpy_outcome in both(FEATURE_RULES, first):
        assert_same(spark_outcome, numpy_outcome)
    reference = AssetReference(summary=ev.summarize(FEATURE_RULES, first.toPandas()))
    store.accept("e", "user_source_features", reference.summary)
    faulty = features(spark, stored, 300, seed=3, faults=True)
    for later in (features(spark, stored, 420, seed=2), first.limit(0), faulty):
        pairs = both(FEATURE_RULES, later, reference)
        for spark_outcome, numpy_outcome in pairs:
            assert_same(spark_outcome, numpy_outcome)
    outcomes = {s.check_name: s for s, _ in pairs}
    assert not outcomes["weight_not_null"].passed and not outcomes["days_since_last_in_range"].passed
    assert not outcomes["events_psi_within"].passed and outcomes["weight_ks_within"].evaluated


def test_summaries_match_numpy(spark, stored, order_statistics):
    frame = features(spark, stored, 600, seed=4, faults=True)
    spark_summary, numpy_summary = ev.summarize(FEATURE_RULES, frame), ev.summarize(FEATURE_RULES, frame.toPandas())
    assert spark_summary.rows == numpy_summary.rows and spark_summary.columns.keys() == numpy_summary.columns.keys()
    for name, expected in numpy_summary.columns.items():
        got = spark_summary.columns[name].to_dict()
        wanted = expected.to_dict()
        assert same_value(got.pop("mean"), wanted.pop("mean")) and same_value(got.pop("std"), wanted.pop("std")), name
        assert got == wanted, name
    # A column smaller than the sketch keeps every value; an empty one only its nulls.
    small = spark.createDataFrame([(1, 2.0), (2, None), (3, -1.0)], "user_id long, weight double")
    assert sm.summarize([], small) == ev.summarize([], small.toPandas())
    assert sm.summarize([], small.limit(0)).to_dict() == ev.summarize([], small.limit(0).toPandas()).to_dict()


def test_ks_is_exact_on_ties_infinities_and_values_between_sketch_points(spark):
    rng = np.random.default_rng(5)
    reference = st.summarize_column(np.concatenate([rng.integers(0, 50, 5000), [-np.inf, np.inf]]).astype(float))
    for new in (rng.integers(0, 60, 3000).astype(float), rng.normal(25, 10, 4000), np.array([np.inf, -np.inf, 3.0, np.nan]),
                np.array([7.5]), rng.integers(-5, 5, 100).astype(float)):
        values = spark.createDataFrame(pd.DataFrame({sm.VALUE: new}))
        assert sm.ks_test(reference, values) == st.ks_test(reference, new) or same_value(
            list(sm.ks_test(reference, values)), list(st.ks_test(reference, new))), new[:5]
        present = new[~np.isnan(new)]
        distinct, counts = np.unique(present, return_counts=True)
        from_counts = sm.ks_of_distribution(reference, sm.Distribution(distinct, counts))
        assert same_value(list(astuple(from_counts)), list(astuple(st.ks_test(reference, new)))), new[:5]


def test_only_columns_with_few_distinct_values_are_counted_per_value(spark, stored, monkeypatch):
    monkeypatch.setattr(sm, "DISTINCT_AT_MOST", 100)
    frame = stored(spark.createDataFrame(pd.DataFrame({"few": np.arange(1000) % 7, "many": np.arange(1000) * 0.5,
                                                       "lists": [[i % 3, None] for i in range(1000)]})), 2)
    tables = sm.SparkTables(frame, {})
    tables.profile(["few", "many", "lists"])
    assert tables.row_count() == 1000 and tables.profiles["few"].present == 1000 and tables.profiles["lists"].values == 2000
    assert tables.distribution("many") is None
    assert tables.distribution("few").at([0, 142, 143, 999]) == {0: 0, 142: 0, 143: 1, 999: 6}
    assert tables.distribution("lists").count == 1000 and list(tables.distribution("lists").counts) == [334, 333, 333]


# ---- recommendations: lists, subscriptions, exposure, novelty ----------------------------------------------------

LIST_SCHEMA = "user_id long, source_ids array<long>, scores array<double>"


def recommendations(spark, stored, users: int, seed: int, faults: bool = False):
    rng = np.random.default_rng(seed)
    lists = [rng.choice(300, 20, replace=False, p=None).tolist() for _ in range(users)]
    if faults:
        lists[0] = lists[0][:5]
        lists[1] = [lists[1][0]] * 3 + lists[1][3:]
        lists[2] = []
        lists[3] = list(range(10)) * 2
    scores = [sorted(rng.random(len(items)).round(4).tolist(), reverse=True) for items in lists]
    frame = pd.DataFrame({"user_id": np.arange(users) * 3, "source_ids": lists, "scores": scores})
    return stored(spark.createDataFrame(frame, LIST_SCHEMA))


def context(spark, stored, users: int, subscribed_items) -> dict:
    feature_users = pd.DataFrame({"user_id": np.arange(users + 20) * 3, "source_id": np.arange(users + 20) % 400})
    pairs = pd.DataFrame({"user_id": [0, 3, 6, 9, 9], "source_id": subscribed_items})
    return {"user_source_features": stored(spark.createDataFrame(feature_users), 2), "subscribed_pairs": spark.createDataFrame(pairs)}


def test_list_rules_match_numpy(spark, stored):
    good = recommendations(spark, stored, 200, seed=6)
    summary = ev.summarize(LIST_RULES, good.toPandas())
    previous = good.toPandas()
    reference = AssetReference(summary=summary, published=previous[["user_id", "source_ids"]])
    first = both(LIST_RULES, good, None, context(spark, stored, 200, [-1, -2, -3, -4, -5]))
    for spark_outcome, numpy_outcome in first:
        assert_same(spark_outcome, numpy_outcome)
    bad = recommendations(spark, stored, 150, seed=7, faults=True)
    subscribed = [int(x) for x in bad.toPandas().source_ids.iloc[0][:2]] + [5, 9, 9]
    pairs = both(LIST_RULES, bad, reference, context(spark, stored, 150, subscribed))
    for spark_outcome, numpy_outcome in pairs:
        assert_same(spark_outcome, numpy_outcome)
    outcomes = {s.check_name: s for s, _ in pairs}
    assert not outcomes["user_coverage_at_least"].passed and outcomes["user_coverage_at_least"].examples
    assert not outcomes["list_length_between"].passed and not outcomes["no_duplicate_items"].passed
    assert not outcomes["no_subscribed_items"].passed and outcomes["no_subscribed_items"].examples
    # The same lists again: nothing new for anyone, so novelty fails and names unchanged users.
    same = both(LIST_RULES, good, reference, context(spark, stored, 200, [1, 2, 3, 4, 5]))
    for spark_outcome, numpy_outcome in same:
        assert_same(spark_outcome, numpy_outcome)
    novelty = dict((s.check_name, s) for s, _ in same)["novelty_at_least"]
    assert not novelty.passed and novelty.examples and novelty.evaluated


def test_novelty_unions_a_users_previous_rows_and_ignores_empty_lists(spark, stored):
    rules = parse_monitoring({"recommendations": [{"rule": "novelty", "min": 0.6}]})["recommendations"]
    previous = pd.DataFrame({"user_id": [1, 2, 1, 3, 4], "source_ids": [[10, 11], [20], [12], [], [40, 41]]})
    current = pd.DataFrame({"user_id": [1, 2, 3, 4, 5], "source_ids": [[10, 12, 13], [20, 20], [30], [], [50]],
                            "scores": [[0.3, 0.2, 0.1], [0.5, 0.4], [0.9], [], [0.1]]})
    pairs = both(rules, stored(spark.createDataFrame(current, LIST_SCHEMA), 2), AssetReference(published=previous))
    for spark_outcome, numpy_outcome in pairs:
        assert_same(spark_outcome, numpy_outcome)
    novelty = pairs[0][0]
    assert (novelty.observed, novelty.details["users_compared"], novelty.details["items_compared"]) == (pytest.approx(0.2), 2, 5)
    assert not novelty.passed and novelty.examples == [{"user_id": 2}]


def test_exposure_rules_fail_alike_on_concentrated_lists(spark, stored):
    rules = parse_monitoring({"recommendations": [
        {"rule": "top_sources_share", "top_n": 3, "max_share": 0.2}, {"rule": "gini", "max": 0.5},
        {"rule": "gini", "max": 0.9, "catalog_from": None, "name": "gini_exposed"},
    ]})["recommendations"]
    lists = pd.DataFrame({"user_id": np.arange(50), "source_ids": [[1, 2, 3, i % 7 + 10] for i in range(50)],
                          "scores": [[0.9, 0.8, 0.7, 0.6]] * 50})
    frame = stored(spark.createDataFrame(lists, LIST_SCHEMA))
    pairs = both(rules, frame, None, context(spark, stored, 10, [1, 2, 3, 4, 5]))
    for spark_outcome, numpy_outcome in pairs:
        assert_same(spark_outcome, numpy_outcome)
    assert [s.passed for s, _ in pairs] == [False, False, True]
    empty = both(rules, frame.limit(0), None, context(spark, stored, 10, [1, 2, 3, 4, 5]))
    for spark_outcome, numpy_outcome in empty:
        assert_same(spark_outcome, numpy_outcome)


def test_monitor_accepts_spark_statistics_the_numpy_engine_reads(spark, stored, tmp_path):
    frame = features(spark, stored, 300, seed=8)
    spark_report = ev.monitor(ReferenceStore(tmp_path / "spark"), "e", "user_source_features", FEATURE_RULES, frame)
    numpy_report = ev.monitor(ReferenceStore(tmp_path / "numpy"), "e", "user_source_features", FEATURE_RULES, frame.toPandas())
    assert spark_report.accepted == numpy_report.accepted is True
    stored = [ReferenceStore(tmp_path / name).load("e", "user_source_features").summary for name in ("spark", "numpy")]
    assert stored[0].rows == stored[1].rows and stored[0].columns.keys() == stored[1].columns.keys()
    assert all(stored[0].columns[c].sketch == stored[1].columns[c].sketch for c in stored[1].columns)


def test_spark_experiments_check_spark_dataframes():
    from ok_ml_assets.lifecycle.checks import build_rule_checks
    from ok_ml_assets.resources.io import EngineTable

    def key(name):
        import dagster as dg

        return dg.AssetKey(["e", name])

    for engine, wanted in (("spark", EngineTable.key), ("local", None)):
        check = build_rule_checks("e", "recommendations", LIST_RULES, key, engine=engine)
        types = {name: node_in.dagster_type.key for name, node_in in check.node_def.input_dict.items()}
        assert set(types) == {"recommendations", "subscribed_pairs", "user_source_features"}
        assert all((t == wanted) if wanted else (t != EngineTable.key) for t in types.values()), (engine, types)
