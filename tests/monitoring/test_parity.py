"""The numpy engine gives every value rule the outcome Great Expectations gives it, on good and bad data of every kind."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ok_ml_assets.monitoring.evaluate import RuleOutcome, evaluate
from ok_ml_assets.monitoring.rules import parse_monitoring

COLUMN_RULES = [
    {"rule": "not_null"},
    {"rule": "not_null", "mostly": 0.6, "name": "mostly_not_null"},
    {"rule": "in_range", "min": 0, "max": 3},
    {"rule": "in_range", "min": 1.5, "name": "at_least"},
    {"rule": "in_range", "max": 2.0, "mostly": 0.5, "name": "at_most"},
    {"rule": "in_set", "values": [1, 2.0, "a", True]},
    {"rule": "in_set", "values": ["a", "b"], "mostly": 0.5, "name": "strings_in_set"},
    {"rule": "mean_between", "min": 0.5, "max": 2.5},
    {"rule": "mean_between", "max": 1.0, "name": "mean_at_most"},
    {"rule": "std_between", "min": 0.1, "max": 1.0},
    {"rule": "quantile_between", "quantile": 0.5, "min": 1.0, "max": 2.0},
    {"rule": "quantile_between", "quantile": 0.9, "max": 2.5},
    {"rule": "quantile_between", "quantile": 0.1, "min": 1.0001},
]

TIMES = pd.to_datetime(["2024-01-01", None, "2024-01-03", "2024-01-02", "2024-01-05"])
COLUMNS = pd.DataFrame({
    "user_id": [10, 11, 12, 13, 14],
    "floats": [1.0, np.nan, 3.0, 2.0, 500.0],
    "ints": [1, 2, 3, 2, 4],
    "small_floats": np.array([0.5, 1.5, 2.0, 3.0, 3.0], dtype=np.float32),
    "small_ints": np.array([1, 2, 2, 2, 2], dtype=np.int32),
    "flags": [True, False, True, True, True],
    "nulls": [np.nan] * 5,
    "objects": [1, None, 2.5, 4, 2],
    "strings": ["a", None, "b", "c", "a"],
    "times": TIMES,
    "aware": TIMES.tz_localize("UTC"),
    "infinite": [1.0, np.inf, -np.inf, 2.0, np.nan],
})
FRAMES = {
    "columns": COLUMNS,
    "passing": COLUMNS.assign(floats=[1.0, 1.5, 2.0, 2.0, 1.8]),
    "empty": COLUMNS.iloc[:0],
    "one_row": COLUMNS.iloc[3:4],
    "shuffled_index": COLUMNS.set_index(pd.Index([9, 3, 7, 1, 5])),
}

LISTS = pd.DataFrame({
    "user_id": [1, 2, 3, 4],
    "source_ids": [[20, 21, 20], [20, 30, 24, 25], [], [31, 32, 31, 31]],
})
SUBSCRIBED = pd.DataFrame({"user_id": [2, 4, 4], "source_id": [30, 31, 99]})
LIST_RULES = [
    {"rule": "list_length", "min": 2, "max": 3},
    {"rule": "list_length", "max": 10, "name": "lists_at_most_10"},
    {"rule": "no_duplicates"},
    {"rule": "no_subscribed_items"},
]
LIST_FRAMES = {
    "lists": LISTS,
    "good_lists": pd.DataFrame({"user_id": [1, 2], "source_ids": [[20, 21], [22, 23]]}),
    "no_lists": LISTS.iloc[:0],
    "empty_lists": pd.DataFrame({"user_id": [1, 2], "source_ids": [[], []]}),
}


def column_specs() -> list[dict]:
    """Every column rule on every column, named after both."""
    specs = []
    for column in COLUMNS.columns.drop("user_id"):
        for spec in COLUMN_RULES:
            name = f"{column}_{spec.get('name') or spec['rule']}_{len(specs)}"
            specs.append({**spec, "column": column, "name": name})
    return specs


def both_engines(specs: list[dict], frame: pd.DataFrame, context: dict | None = None) -> list[tuple[RuleOutcome, RuleOutcome]]:
    """(numpy, GX) outcomes of the same rules on the same frame."""
    native = parse_monitoring({"asset": specs})["asset"]
    gx = [rule.model_copy(update={"engine": "great_expectations"}) for rule in native]
    return list(zip(evaluate("asset", native, frame, None, context), evaluate("asset", gx, frame, None, context)))


def same_value(a, b) -> bool:
    """Equal, floats within 1e-9 relative (both engines call the same pandas reductions: they are in fact equal)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=1e-9)
    return a == b


def assert_same(native: RuleOutcome, gx: RuleOutcome) -> None:
    assert (native.engine, gx.engine) == ("numpy", "great_expectations")
    assert (native.check_name, native.passed, native.evaluated) == (gx.check_name, gx.passed, gx.evaluated)
    assert same_value(native.observed, gx.observed), (native.observed, gx.observed)
    assert native.examples == gx.examples
    assert native.thresholds == gx.thresholds
    assert native.details.keys() == gx.details.keys()
    assert all(same_value(native.details[k], gx.details[k]) for k in native.details), (native.details, gx.details)
    if "could not evaluate" in gx.description:
        assert "could not evaluate" in native.description, (native.description, gx.description)
    else:
        assert native.description == gx.description
    assert native.metadata().keys() == gx.metadata().keys()


@pytest.mark.parametrize("frame_name", FRAMES)
def test_column_rules_match_great_expectations(frame_name):
    pairs = both_engines(column_specs(), FRAMES[frame_name])
    for native, gx in pairs:
        assert_same(native, gx)
    # The cases are not vacuous: both verdicts, offending rows and errors occur.
    if frame_name == "columns":
        assert {n.passed for n, _ in pairs} == {True, False}
        assert any(n.examples for n, _ in pairs) and any("could not evaluate" in n.description for n, _ in pairs)


@pytest.mark.parametrize("frame_name", LIST_FRAMES)
def test_list_rules_match_great_expectations(frame_name):
    pairs = both_engines(LIST_RULES, LIST_FRAMES[frame_name], {"subscribed_pairs": SUBSCRIBED})
    for native, gx in pairs:
        assert_same(native, gx)
    if frame_name == "lists":
        assert [n.passed for n, _ in pairs] == [False, True, False, False] and all(n.examples for n, _ in pairs[:1] + pairs[2:])


def test_the_default_engine_is_numpy_and_great_expectations_is_opt_in():
    rule = parse_monitoring({"asset": [{"rule": "not_null", "column": "ints"}]})["asset"][0]
    assert rule.engine == "numpy" and "engine" not in rule.model_dump()
    opted = parse_monitoring({"asset": [{"rule": "not_null", "column": "ints", "engine": "great_expectations"}]})["asset"][0]
    assert opted.model_dump()["engine"] == "great_expectations"
    assert evaluate("asset", [opted], COLUMNS)[0].engine == "great_expectations"
