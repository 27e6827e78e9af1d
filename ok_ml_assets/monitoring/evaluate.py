"""Evaluate an asset's monitoring rules in numpy and pandas; Great Expectations only for the rules that ask for it.

| rule                | evaluated by                                                                          |
|---------------------|---------------------------------------------------------------------------------------|
| not_null            | values.py, as GX expect_column_values_to_not_be_null                                  |
| in_range            | values.py, as GX expect_column_values_to_be_between                                   |
| in_set              | values.py, as GX expect_column_values_to_be_in_set                                    |
| mean_between        | values.py, as GX expect_column_mean_to_be_between                                     |
| std_between         | values.py, as GX expect_column_stdev_to_be_between                                    |
| quantile_between    | values.py, as GX expect_column_quantile_values_to_be_between                          |
| list_length         | values.py, as GX expect_column_values_to_be_between over the list lengths per user    |
| no_duplicates       | values.py, as GX expect_compound_columns_to_be_unique over the (user, item) pairs     |
| no_subscribed_items | values.py, as GX expect_column_values_to_be_in_set([False]) over the flattened pairs  |
|                     | flagged by a numpy join with the subscriptions                                        |
| categories_present, row_count_change, drift_psi, drift_ks, score_drift_psi, user_coverage, top_sources_share,   |
| gini, novelty:      |                                                                                       |
|                     | numpy (monitoring.statistics): GX has no reference-based drift or exposure measures   |
| daily_rows_change, daily_distinct_change, rows_per_entity_change, category_mix_psi, key_overlap, hours_covered:  |
|                     | pandas (monitoring.daily), over the dataset's daily versions in `context_data`: each  |
|                     | day against the other days of the window                                              |

The value rules (the first nine) take `engine: great_expectations` to run as GX expectations instead (gx.py, one
ExpectationSuite per table, GX imported only then); both engines give the same outcomes (tests/monitoring/test_parity.py).

A Spark DataFrame (an experiment with `engine: spark`) is evaluated and summarized by Spark instead (spark.py, pyspark
imported only then), with the same outcomes (tests/monitoring/test_spark_parity.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ok_ml_assets.monitoring import daily, values
from ok_ml_assets.monitoring import rules as r
from ok_ml_assets.monitoring import statistics as st
from ok_ml_assets.monitoring.reference import AssetReference, ReferenceStore
from ok_ml_assets.monitoring.values import MAX_EXAMPLES, ValuePlan, ValueResult

Engine = Literal["great_expectations", "numpy", "spark"]


class MissingInput(ValueError):
    """A rule needs another asset's value that the caller did not pass in `context_data`."""


@dataclass(frozen=True)
class RuleOutcome:
    """One rule's verdict on one materialization: what was measured, against what, and a few offenders."""

    check_name: str
    rule: str
    severity: r.Severity
    passed: bool
    observed: float | int | None
    thresholds: dict[str, Any]
    examples: list
    description: str
    engine: Engine
    evaluated: bool = True
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        """True when this outcome must stop publication: a failed ERROR rule."""
        return self.severity == "ERROR" and not self.passed

    def metadata(self) -> dict[str, Any]:
        """Plain values for the check's metadata: numbers stay numbers (plottable), the rest is JSON-ready."""
        thresholds = {f"threshold_{k}": v for k, v in self.thresholds.items() if v is not None}
        return _plain({
            "observed": self.observed, **thresholds, **self.details,
            "examples": self.examples, "engine": self.engine, "evaluated": self.evaluated,
        })


def _plain(value: Any) -> Any:
    """numpy scalars and containers as Python values; non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def is_spark_frame(frame: object) -> bool:
    """Whether a table is a Spark DataFrame; a pandas one never imports the engines package (it imports Dagster)."""
    if isinstance(frame, pd.DataFrame):
        return False
    from ok_ml_assets.engines import is_spark_frame as is_spark

    return is_spark(frame)


def _outcome(
    rule: r.Rule, passed: bool, observed, engine: Engine, examples=(), evaluated=True, note="", ratio=False, **details
) -> RuleOutcome:
    measured = "not evaluated" if not evaluated else f"observed {_show(observed, ratio)}"
    return RuleOutcome(
        check_name=rule.check_name, rule=rule.rule, severity=rule.severity, passed=bool(passed), observed=_plain(observed),
        thresholds=rule.thresholds(), examples=_plain(list(examples)[:MAX_EXAMPLES]),
        description=f"{rule.assertion}: {measured}" + (f" ({note})" if note else ""),
        engine=engine, evaluated=evaluated, details=_plain(details),
    )


def _show(value, ratio: bool = False) -> str:
    """A value as people read it: ratios (shares, coverage, relative change) as percentages."""
    if ratio and isinstance(value, (int, float)):
        return f"{value:.2%}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Tables:
    """The tables rules look at: the asset's rows and, for list rules, per-list and per-item tables derived once."""

    def __init__(self, frame: pd.DataFrame, context_data: Mapping[str, pd.DataFrame]):
        # GX reports offenders by index label; a 0..n-1 index makes labels positions.
        self.rows = frame if frame.index.equals(pd.RangeIndex(len(frame))) else frame.reset_index(drop=True)
        self.context_data = context_data
        self._cache: dict[tuple, Any] = {}

    def _cached(self, key: tuple, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def input(self, asset: str) -> pd.DataFrame:
        """Another asset's value, which the caller must have passed."""
        if asset not in self.context_data:
            raise MissingInput(f"this rule needs the value of asset {asset!r}: pass it in context_data")
        return self.context_data[asset]

    def flat(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """Lengths and concatenated elements of a list column."""
        return self._cached(("flat", column), lambda: st.flatten_lists(self.rows[column]))

    def items(self, user_column: str, items_column: str) -> pd.DataFrame:
        """One row per recommended (user, item), in list order."""
        def build() -> pd.DataFrame:
            lengths, items = self.flat(items_column)
            users = np.repeat(self.rows[user_column].to_numpy(), lengths)
            return pd.DataFrame({user_column: users, "item": items, "rank": _ranks(lengths)})
        return self._cached(("items", user_column, items_column), build)

    def exposure(self, items_column: str) -> tuple[np.ndarray, np.ndarray]:
        """Each recommended item and how often, most recommended first."""
        return self._cached(("exposure", items_column), lambda: st.exposure(self.flat(items_column)[1]))

    def lists(self, user_column: str, items_column: str) -> pd.DataFrame:
        """One row per user with the length of their list."""
        return self._cached(("lists", user_column, items_column), lambda: pd.DataFrame(
            {user_column: self.rows[user_column].to_numpy(), "list_length": self.flat(items_column)[0]}))

    def flagged_items(self, rule: r.NoSubscribedItems) -> pd.DataFrame:
        """The item table with a column telling whether each pair is among the other asset's pairs."""
        table = self.items(rule.user_column, rule.items_column)
        flag = f"in_{rule.pairs_from}"
        if flag not in table:
            pairs = self.input(rule.pairs_from)
            table[flag] = st.pairs_in(table[rule.user_column].to_numpy(), table["item"].to_numpy(),
                                      pairs[rule.user_column].to_numpy(), pairs[rule.pair_item_column].to_numpy())
        return table


def _ranks(lengths: np.ndarray) -> np.ndarray:
    """Position of each element inside its list, starting at 1."""
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(int(lengths.sum())) - starts + 1


# ---- value rules: one GX built-in expectation each, evaluated natively (values.py) or by GX (gx.py) ----------------

def _bounds(rule: r.Bounded) -> dict[str, Any]:
    return {"min_value": rule.min, "max_value": rule.max}


def _rows_plan(rule: r.ColumnRule, tables: Tables, expectation: str, **kwargs: Any) -> ValuePlan:
    ids = [c for c in tables.rows.columns if str(c).endswith("_id") and c != rule.column]
    return ValuePlan(rule, "rows", tables.rows, expectation, {"column": rule.column, **kwargs}, [*ids, rule.column])


def _not_null(rule: r.NotNull, tables: Tables) -> ValuePlan:
    return _rows_plan(rule, tables, "ExpectColumnValuesToNotBeNull", mostly=rule.mostly)


def _in_range(rule: r.InRange, tables: Tables) -> ValuePlan:
    return _rows_plan(rule, tables, "ExpectColumnValuesToBeBetween", mostly=rule.mostly, **_bounds(rule))


def _in_set(rule: r.InSet, tables: Tables) -> ValuePlan:
    return _rows_plan(rule, tables, "ExpectColumnValuesToBeInSet", value_set=list(rule.values), mostly=rule.mostly)


def _mean_between(rule: r.MeanBetween, tables: Tables) -> ValuePlan:
    return _rows_plan(rule, tables, "ExpectColumnMeanToBeBetween", **_bounds(rule))


def _std_between(rule: r.StdBetween, tables: Tables) -> ValuePlan:
    return _rows_plan(rule, tables, "ExpectColumnStdevToBeBetween", **_bounds(rule))


def _quantile_between(rule: r.QuantileBetween, tables: Tables) -> ValuePlan:
    ranges = {"quantiles": [rule.quantile], "value_ranges": [[rule.min, rule.max]]}
    return _rows_plan(rule, tables, "ExpectColumnQuantileValuesToBeBetween", quantile_ranges=ranges)


def _list_length(rule: r.ListLength, tables: Tables) -> ValuePlan:
    frame = tables.lists(rule.user_column, rule.items_column)
    return ValuePlan(rule, f"lists of {rule.items_column}", frame, "ExpectColumnValuesToBeBetween",
                  {"column": "list_length", **_bounds(rule)}, [rule.user_column, "list_length"])


def _no_duplicates(rule: r.NoDuplicates, tables: Tables) -> ValuePlan:
    frame = tables.items(rule.user_column, rule.items_column)
    return ValuePlan(rule, f"items of {rule.items_column}", frame, "ExpectCompoundColumnsToBeUnique",
                  {"column_list": [rule.user_column, "item"]}, [rule.user_column, "item", "rank"])


def _no_subscribed_items(rule: r.NoSubscribedItems, tables: Tables) -> ValuePlan:
    frame = tables.flagged_items(rule)
    return ValuePlan(rule, f"items of {rule.items_column}", frame, "ExpectColumnValuesToBeInSet",
                  {"column": f"in_{rule.pairs_from}", "value_set": [False]}, [rule.user_column, "item", "rank"])


VALUE_RULES: dict[type, Callable[[Any, Tables], ValuePlan]] = {
    r.NotNull: _not_null, r.InRange: _in_range, r.InSet: _in_set, r.MeanBetween: _mean_between,
    r.StdBetween: _std_between, r.QuantileBetween: _quantile_between,
    r.ListLength: _list_length, r.NoDuplicates: _no_duplicates, r.NoSubscribedItems: _no_subscribed_items,
}


def _value_outcome(plan: ValuePlan, result: ValueResult, engine: Engine) -> RuleOutcome:
    """An engine's result for a value rule as its outcome: observed value or unexpected count, with offending rows."""
    if result.error is not None:
        who = "GX" if engine == "great_expectations" else "numpy"
        return _outcome(plan.rule, False, None, engine, note=f"{who} could not evaluate it: {result.error}")
    if result.aggregate:
        return _outcome(plan.rule, result.success, result.observed, engine)
    positions = list(result.positions)
    examples = plan.frame.iloc[positions][plan.example_columns].to_dict("records") if positions else []
    unexpected, rows = result.unexpected_count, result.element_count
    return _outcome(plan.rule, result.success, unexpected, engine, examples,
                    note=f"{unexpected} of {rows} rows ({unexpected / max(rows, 1):.2%}) unexpected",
                    element_count=rows, unexpected_percent=result.unexpected_percent)


def evaluate_values(asset_name: str, plans: Sequence[ValuePlan]) -> dict[str, RuleOutcome]:
    """The value rules' outcomes by check name: natively, except the rules that opted into GX."""
    native = [plan for plan in plans if plan.rule.engine != "great_expectations"]
    opted = [plan for plan in plans if plan.rule.engine == "great_expectations"]
    results = {name: (result, "numpy") for name, result in values.evaluate_plans(native).items()}
    if opted:
        from ok_ml_assets.monitoring.gx import validate_with_gx  # GX costs seconds to import: only for rules that ask

        results.update({name: (result, "great_expectations") for name, result in validate_with_gx(asset_name, opted).items()})
    return {plan.rule.check_name: _value_outcome(plan, *results[plan.rule.check_name]) for plan in plans}


# ---- numpy ----------------------------------------------------------------------------------------------------

def _no_reference(rule: r.Rule, what: str, engine: Engine = "numpy") -> RuleOutcome:
    return _outcome(rule, True, None, engine, evaluated=False, note=f"no {what} yet")


def _row_count_change(rule: r.RowCountChange, tables: Tables, reference: AssetReference | None) -> RuleOutcome:
    if reference is None or reference.rows is None:
        return _no_reference(rule, "accepted reference")
    rows = len(tables.rows)
    change = st.relative_change(reference.rows, rows)
    return _outcome(rule, change <= rule.max_relative_change, change, "numpy",
                    [{"reference_rows": reference.rows, "rows": rows}], ratio=True, reference_rows=reference.rows, rows=rows)


def _categories_present(rule: r.CategoriesPresent, tables: Tables, reference: AssetReference | None) -> RuleOutcome:
    counts = tables.rows[rule.column].value_counts(dropna=True)
    rows = max(len(tables.rows), 1)
    shares = {value: float(counts.get(value, 0)) / rows for value in rule.values}
    scarce = [{rule.column: value, "share": share} for value, share in shares.items() if share < rule.min_share]
    return _outcome(rule, not scarce, min(shares.values()), "numpy", scarce, ratio=True, shares={str(k): v for k, v in shares.items()})


def _reference_column(reference: AssetReference | None, column: str) -> st.ColumnSummary | None:
    if reference is None or reference.summary is None:
        return None
    return reference.summary.columns.get(column)


def _psi_outcome(rule: r.Rule, ref: st.ColumnSummary, values: np.ndarray, max_psi: float) -> RuleOutcome:
    shares = st.bin_shares(ref.bin_edges, values)
    terms = st.psi_terms(np.asarray(ref.bin_shares), shares)
    value = float(terms.sum())
    labels = st.bin_labels(ref.bin_edges)
    worst = np.argsort(-terms)[:3]
    examples = [{"bin": labels[i], "reference_share": ref.bin_shares[i], "share": shares[i]} for i in worst]
    mean = float(np.nanmean(values)) if len(values) else None
    return _outcome(rule, value <= max_psi, value, "numpy", examples, reference_mean=ref.mean, mean=mean)


def _column_values(rule: r.ColumnRule, tables: Tables) -> np.ndarray | None:
    return st.numeric_values(tables.rows[rule.column]) if rule.column in tables.rows else None


def _missing_column(rule: r.Rule, column: str) -> RuleOutcome:
    return _outcome(rule, False, None, "numpy", note=f"column {column!r} is missing from the asset")


def _drift_inputs(rule: r.DriftPsi | r.DriftKs, tables: Tables, reference: AssetReference | None):
    """(values, reference column) to compare, or the outcome that says why there is nothing to compare."""
    values = _column_values(rule, tables)
    if values is None:
        return _missing_column(rule, rule.column)
    ref = _reference_column(reference, rule.column)
    if ref is None or ref.count == 0:
        return _no_reference(rule, f"accepted reference of {rule.column}")
    return values, ref


def _drift_psi(rule: r.DriftPsi, tables: Tables, reference: AssetReference | None) -> RuleOutcome:
    inputs = _drift_inputs(rule, tables, reference)
    if isinstance(inputs, RuleOutcome):
        return inputs
    values, ref = inputs
    return _psi_outcome(rule, ref, values, rule.max_psi)


def _drift_ks(rule: r.DriftKs, tables: Tables, reference: AssetReference | None) -> RuleOutcome:
    inputs = _drift_inputs(rule, tables, reference)
    if isinstance(inputs, RuleOutcome):
        return inputs
    values, ref = inputs
    ks = st.ks_test(ref, values)
    return _outcome(rule, ks.statistic <= rule.max_ks, ks.statistic, "numpy",
                    [{"at": ks.at, "reference_cdf": ks.reference_cdf, "cdf": ks.cdf}])


def _score_drift_psi(rule: r.ScoreDriftPsi, tables: Tables, reference: AssetReference | None) -> RuleOutcome:
    if rule.scores_column not in tables.rows:
        return _missing_column(rule, rule.scores_column)
    ref = _reference_column(reference, rule.scores_column)
    if ref is None or ref.count == 0:
        return _no_reference(rule, f"accepted reference of {rule.scores_column}")
    return _psi_outcome(rule, ref, st.numeric_values(tables.flat(rule.scores_column)[1]), rule.max_psi)


def _user_coverage(rule: r.UserCoverage, tables: Tables, reference: AssetReference | None) -> RuleOutcome:
    expected = pd.unique(tables.input(rule.users_from)[rule.user_column].to_numpy())
    lengths, _ = tables.flat(rule.items_column)
    served = tables.rows[rule.user_column].to_numpy()[lengths > 0]
    covered = st.is_in(expected, served)
    coverage = float(covered.mean()) if expected.size else 1.0
    passed = coverage >= rule.min
    examples = [] if passed else [{rule.user_column: u} for u in expected[~covered][:MAX_EXAMPLES]]
    return _outcome(rule, passed, coverage, "numpy", examples, ratio=True, users=int(expected.size), covered_users=int(covered.sum()))


def _top_examples(ids: np.ndarray, counts: np.ndarray) -> list[dict[str, Any]]:
    total = max(int(counts.sum()), 1)
    return [{"item": i, "share": c / total} for i, c in zip(ids[:MAX_EXAMPLES], counts[:MAX_EXAMPLES])]


def _top_sources_share(rule: r.TopSourcesShare, tables: Tables, reference: AssetReference | None) -> RuleOutcome:
    ids, counts = tables.exposure(rule.items_column)
    share = st.top_share(counts, rule.top_n)
    return _outcome(rule, share <= rule.max_share, share, "numpy", _top_examples(ids, counts), ratio=True, exposed_items=int(ids.size))


def _gini(rule: r.Gini, tables: Tables, reference: AssetReference | None) -> RuleOutcome:
    ids, counts = tables.exposure(rule.items_column)
    catalog = None
    if rule.catalog_from:
        catalog = pd.unique(tables.input(rule.catalog_from)[rule.catalog_column].to_numpy())
        unseen = int((~st.is_in(catalog, ids)).sum())
        counts = np.concatenate([counts, np.zeros(unseen, dtype=counts.dtype)])
    value = st.gini(counts)
    return _outcome(rule, value <= rule.max, value, "numpy", _top_examples(ids, counts), exposed_items=int(ids.size),
                    catalog_items=int(catalog.size) if catalog is not None else int(ids.size))


def _novelty(rule: r.Novelty, tables: Tables, reference: AssetReference | None) -> RuleOutcome:
    previous = reference.published if reference is not None else None
    if previous is None or previous.empty:
        return _no_reference(rule, "published lists")
    items = tables.items(rule.user_column, rule.items_column)
    previous_lengths, previous_items = st.flatten_lists(previous[rule.items_column])
    previous_users = np.repeat(previous[rule.user_column].to_numpy(), previous_lengths)
    result = st.novelty(items[rule.user_column].to_numpy(), items["item"].to_numpy(), previous_users, previous_items)
    if result.users_compared == 0:
        return _no_reference(rule, "published lists for these users")
    passed = result.share >= rule.min
    examples = [] if passed else _unchanged_users(items, rule.user_column, previous_users, previous_items)
    return _outcome(rule, passed, result.share, "numpy", examples, ratio=True, users_compared=result.users_compared,
                    items_compared=result.items_compared)


def _unchanged_users(items: pd.DataFrame, user_column: str, previous_users: np.ndarray, previous_items: np.ndarray) -> list[dict]:
    """A few users whose list holds nothing new."""
    users = items[user_column].to_numpy()
    compared = st.is_in(users, previous_users)
    seen = st.pairs_in(users[compared], items["item"].to_numpy()[compared], previous_users, previous_items)
    per_user = pd.Series(seen).groupby(users[compared]).all()
    return [{user_column: u} for u in per_user[per_user].index[:MAX_EXAMPLES]]


DAILY_SCORES: dict[type, Callable[[Any, pd.DataFrame], pd.DataFrame]] = {
    r.DailyRowsChange: lambda rule, window: daily.change_from_others(daily.rows_per_day(window)),
    r.DailyDistinctChange: lambda rule, window: daily.change_from_others(daily.distinct_per_day(window, rule.column)),
    r.RowsPerEntityChange: lambda rule, window: daily.change_from_others(daily.rows_per_entity(window, rule.column)),
    r.CategoryMixPsi: lambda rule, window: daily.category_psi(window, rule.column),
    r.KeyOverlap: lambda rule, window: daily.key_overlap(window, rule.column, rule.min_presence),
    r.HoursCovered: lambda rule, window: daily.hours_covered(window, rule.ts_column, rule.min_rows_per_hour),
}


def _daily_rule(rule: r.DailyRule, tables: Tables, reference: AssetReference | None) -> RuleOutcome:
    window = tables.input(rule.dataset)
    return daily_outcome(rule, list(window.columns), lambda: daily.days_of(window), lambda: DAILY_SCORES[type(rule)](rule, window))


def daily_outcome(rule: r.DailyRule, columns: list[str], days_of: Callable[[], list[str]], scores_of: Callable[[], pd.DataFrame],
                  engine: Engine = "numpy") -> RuleOutcome:
    """A daily rule's verdict from its window's days and each day's scores (score, value, baseline), whichever engine measured them."""
    absent = [c for c in [daily.DAY, *rule.window_columns()] if c not in columns]
    if absent:
        return _outcome(rule, False, None, engine, note=f"column {absent[0]!r} is missing from {rule.dataset}")
    days = days_of()
    if len(days) < rule.min_days:
        return _no_reference(rule, f"{rule.min_days} days of {rule.dataset} to compare (the window holds {len(days)})", engine)
    scores = scores_of()
    measured = scores["score"].dropna()
    if measured.empty:
        return _no_reference(rule, f"day of {rule.dataset} with something to compare", engine)
    failing = measured > rule.limit if rule.upper else measured < rule.limit
    worst = measured.idxmax() if rule.upper else measured.idxmin()
    order = measured.sort_values(ascending=not rule.upper).index[:MAX_EXAMPLES]
    examples = [{"day": day, **scores.loc[day].dropna().to_dict()} for day in order]
    ratio = not isinstance(rule, r.CategoryMixPsi)
    return _outcome(rule, not failing.any(), float(measured[worst]), engine, examples, ratio=ratio,
                    note=f"worst day {worst}; {int(failing.sum())} of {len(days)} days fail", worst_day=worst,
                    days=len(days), failing_days=[d for d in measured.index if failing[d]])


NUMPY_RULES: dict[type, Callable[[Any, Tables, AssetReference | None], RuleOutcome]] = {
    r.CategoriesPresent: _categories_present, r.RowCountChange: _row_count_change, r.DriftPsi: _drift_psi,
    r.DriftKs: _drift_ks, r.ScoreDriftPsi: _score_drift_psi,
    r.UserCoverage: _user_coverage, r.TopSourcesShare: _top_sources_share, r.Gini: _gini, r.Novelty: _novelty,
    **{rule_type: _daily_rule for rule_type in DAILY_SCORES},
}


# ---- entry points ---------------------------------------------------------------------------------------------

def _missing_columns(rule: r.Rule, tables: Tables, checked: list[str]) -> RuleOutcome | None:
    absent = [c for c in checked if c not in tables.rows]
    if not absent:
        return None
    engine: Engine = "great_expectations" if getattr(rule, "engine", "numpy") == "great_expectations" else "numpy"
    return _outcome(rule, False, None, engine, note=f"column {absent[0]!r} is missing from the asset")


def _checked_columns(rule: r.Rule) -> list[str]:
    if isinstance(rule, r.ColumnRule):
        return [rule.column]
    if isinstance(rule, r.ListRule):
        return [rule.user_column, rule.items_column]
    return []


def evaluate(
    asset_name: str,
    rules: Sequence[r.Rule],
    frame: pd.DataFrame,
    reference: AssetReference | None = None,
    context_data: Mapping[str, pd.DataFrame] | None = None,
) -> list[RuleOutcome]:
    """Every rule's outcome on `frame`, in rule order.

    `reference` is the asset's last accepted statistics and last published lists (drift, row count and novelty
    rules pass unevaluated without it); `context_data` holds the other assets the rules name (`needed_assets`).
    A Spark DataFrame is evaluated by Spark.
    """
    if is_spark_frame(frame):
        from ok_ml_assets.monitoring import spark

        return spark.evaluate(asset_name, rules, frame, reference, context_data)
    tables = Tables(frame, context_data or {})
    outcomes: dict[str, RuleOutcome] = {}
    plans: list[ValuePlan] = []
    for rule in rules:
        missing = _missing_columns(rule, tables, _checked_columns(rule))
        if missing is not None:
            outcomes[rule.check_name] = missing
        elif type(rule) in VALUE_RULES:
            plans.append(VALUE_RULES[type(rule)](rule, tables))
        else:
            outcomes[rule.check_name] = NUMPY_RULES[type(rule)](rule, tables, reference)
    outcomes.update(evaluate_values(asset_name, plans))
    return [outcomes[rule.check_name] for rule in rules]


def summarized_columns(rules: Sequence[r.Rule], frame: pd.DataFrame) -> list[str]:
    """Columns a reference keeps: every numeric non-id column, plus whatever a drift rule names."""
    numeric = [c for c in frame.columns
               if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]) and not str(c).endswith("_id")]
    return list(dict.fromkeys(c for c in [*numeric, *drift_columns(rules)] if c in frame.columns))


def drift_columns(rules: Sequence[r.Rule]) -> list[str]:
    """The columns drift rules name, which a reference keeps whatever their type."""
    named = [rule.column for rule in rules if isinstance(rule, (r.DriftPsi, r.DriftKs))]
    return named + [rule.scores_column for rule in rules if isinstance(rule, r.ScoreDriftPsi)]


def summarize(rules: Sequence[r.Rule], frame: pd.DataFrame) -> st.BatchSummary:
    """This materialization's statistics: what the reference stores once accepted and the asset's numeric metadata."""
    if is_spark_frame(frame):
        from ok_ml_assets.monitoring import spark

        return spark.summarize(rules, frame)
    columns = {}
    for column in summarized_columns(rules, frame):
        values = frame[column]
        if values.dtype == object:
            values = st.flatten_lists(values)[1]
        columns[column] = st.summarize_column(values)
    return st.BatchSummary(rows=len(frame), columns=columns)


def blocking(outcomes: Sequence[RuleOutcome]) -> list[RuleOutcome]:
    """The outcomes that must stop publication."""
    return [o for o in outcomes if o.blocking]


@dataclass(frozen=True)
class MonitoringReport:
    """One materialization's monitoring: every outcome, its statistics, and whether they became the reference."""

    outcomes: list[RuleOutcome]
    summary: st.BatchSummary
    accepted: bool


def monitor(
    store: ReferenceStore,
    experiment: str,
    asset_name: str,
    rules: Sequence[r.Rule],
    frame: pd.DataFrame | Any,
    context_data: Mapping[str, pd.DataFrame | Any] | None = None,
    run_id: str | None = None,
) -> MonitoringReport:
    """Evaluate against the stored reference and, when no ERROR rule failed, accept this materialization as the new one.

    `frame` (and the context tables) may be Spark DataFrames: Spark then computes the outcomes and the statistics.
    """
    reference = store.load(experiment, asset_name)
    if is_spark_frame(frame):
        from ok_ml_assets.monitoring import spark

        outcomes, summary = spark.monitor_report(rules, frame, reference, context_data)
    else:
        outcomes = evaluate(asset_name, rules, frame, reference, context_data)
        summary = summarize(rules, frame)
    accepted = not blocking(outcomes)
    if accepted:
        store.accept(experiment, asset_name, summary, run_id=run_id)
    return MonitoringReport(outcomes=outcomes, summary=summary, accepted=accepted)
