"""Rule outcomes on passing and failing frames, for every rule type."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ok_ml_assets.monitoring.evaluate import (
    MissingInput,
    RuleOutcome,
    blocking,
    evaluate,
    monitor,
    summarize,
)
from ok_ml_assets.monitoring.reference import AssetReference, ReferenceStore
from ok_ml_assets.monitoring.rules import parse_monitoring


def rules(*specs: dict) -> list:
    return parse_monitoring({"asset": list(specs)})["asset"]


def one(frame: pd.DataFrame, spec: dict, reference: AssetReference | None = None, context: dict | None = None) -> RuleOutcome:
    return evaluate("asset", rules(spec), frame, reference, context)[0]


FEATURES = pd.DataFrame({
    "user_id": [1, 1, 2, 3],
    "source_id": [10, 11, 10, 12],
    "weight": [1.0, 2.0, 3.0, 4.0],
    "events": [1, 2, 1, 3],
    "days_since_last": [0, 1, 2, 3],
    "kind": ["group", "author", "group", "group"],
})

RECOMMENDATIONS = pd.DataFrame({
    "user_id": [1, 2, 3],
    "source_ids": [[20, 21, 22], [20, 23, 24], [25, 20, 26]],
    "scores": [[0.9, 0.8, 0.7], [0.9, 0.5, 0.4], [0.6, 0.5, 0.1]],
})
SUBSCRIBED = pd.DataFrame({"user_id": [1, 2], "source_id": [30, 31]})
CONTEXT = {"user_source_features": FEATURES, "subscribed_pairs": SUBSCRIBED}


def reference_of(frame: pd.DataFrame, *specs: dict, published: pd.DataFrame | None = None) -> AssetReference:
    return AssetReference(summary=summarize(rules(*specs), frame), published=published)


# ---- Great Expectations rules --------------------------------------------------------------------------------

GX_PASSING = [
    ({"rule": "not_null", "column": "weight"}, 0),
    ({"rule": "in_range", "column": "days_since_last", "min": 0, "max": 366}, 0),
    ({"rule": "in_set", "column": "kind", "values": ["group", "author"]}, 0),
    ({"rule": "mean_between", "column": "weight", "min": 2, "max": 3}, 2.5),
    ({"rule": "std_between", "column": "weight", "min": 1, "max": 2}, pytest.approx(np.std([1, 2, 3, 4], ddof=1))),
    ({"rule": "quantile_between", "column": "weight", "quantile": 0.5, "min": 2, "max": 3}, pytest.approx(2.5, abs=0.5)),
]


@pytest.mark.parametrize("spec,observed", GX_PASSING, ids=[s["rule"] for s, _ in GX_PASSING])
def test_gx_rules_pass_on_good_data(spec, observed):
    outcome = one(FEATURES, spec)
    assert outcome.passed and outcome.evaluated and outcome.engine == "numpy"
    assert outcome.observed == observed and outcome.examples == []


def test_gx_rules_fail_and_name_the_offending_rows():
    bad = FEATURES.assign(weight=[1.0, np.nan, 3.0, 400.0], kind=["group", "author", "page", "group"])
    outcomes = evaluate("asset", rules(
        {"rule": "not_null", "column": "weight"},
        {"rule": "in_range", "column": "weight", "max": 100},
        {"rule": "in_set", "column": "kind", "values": ["group", "author"]},
        {"rule": "mean_between", "column": "weight", "max": 10},
        {"rule": "std_between", "column": "weight", "max": 10},
        {"rule": "quantile_between", "column": "weight", "quantile": 0.99, "max": 100},
    ), bad)
    assert [o.passed for o in outcomes] == [False] * 6
    null, out_of_range, not_in_set, mean, std, quantile = outcomes
    assert null.observed == 1 and null.examples == [{"user_id": 1, "source_id": 11, "weight": None}]
    assert out_of_range.examples == [{"user_id": 3, "source_id": 12, "weight": 400.0}]
    assert not_in_set.examples == [{"user_id": 2, "source_id": 10, "kind": "page"}]
    assert mean.observed == pytest.approx((1 + 3 + 400) / 3) and mean.examples == []
    assert std.observed > 10 and quantile.observed == 400.0
    assert "observed 1 (1 of 4 rows (25.00%) unexpected)" in null.description and null.details["element_count"] == 4


def test_several_quantile_rules_on_one_column_each_get_their_quantile():
    frame = pd.DataFrame({"x": np.arange(10.0)})
    low, high = evaluate("asset", rules(
        {"rule": "quantile_between", "column": "x", "quantile": 0.1, "max": 0.5},
        {"rule": "quantile_between", "column": "x", "quantile": 0.9, "min": 5},
    ), frame)
    assert (low.observed, low.passed) == (1.0, False)
    assert (high.observed, high.passed) == (8.0, True)


def test_examples_follow_rows_whatever_the_frame_index():
    shuffled = FEATURES.assign(weight=[1.0, 2.0, np.nan, 4.0]).set_index(pd.Index([40, 30, 20, 10]))
    assert one(shuffled, {"rule": "not_null", "column": "weight"}).examples == [{"user_id": 2, "source_id": 10, "weight": None}]


def test_mostly_tolerates_a_share_of_offenders():
    bad = FEATURES.assign(weight=[1.0, np.nan, 3.0, 4.0])
    assert one(bad, {"rule": "not_null", "column": "weight", "mostly": 0.7}).passed
    assert not one(bad, {"rule": "not_null", "column": "weight", "mostly": 0.8}).passed


def test_a_missing_column_fails_its_rule_and_says_so():
    outcome = one(FEATURES, {"rule": "not_null", "column": "likes"})
    assert not outcome.passed and "'likes' is missing" in outcome.description
    assert not one(FEATURES, {"rule": "drift_psi", "column": "likes", "max_psi": 0.1}, reference_of(FEATURES)).passed


# ---- reference-based rules -----------------------------------------------------------------------------------

@pytest.mark.parametrize("frame,spec", [
    (FEATURES, {"rule": "row_count_change", "max_relative_change": 0.1}),
    (FEATURES, {"rule": "drift_psi", "column": "weight", "max_psi": 0.1}),
    (FEATURES, {"rule": "drift_ks", "column": "weight", "max_ks": 0.1}),
    (RECOMMENDATIONS, {"rule": "score_drift_psi", "max_psi": 0.1}),
    (RECOMMENDATIONS, {"rule": "novelty", "min": 0.5}),
], ids=lambda v: v.get("rule") if isinstance(v, dict) else "")
def test_reference_rules_pass_unevaluated_without_a_reference(frame, spec):
    for reference in (None, AssetReference()):
        outcome = one(frame, spec, reference)
        assert outcome.passed and not outcome.evaluated and "not evaluated" in outcome.description


def test_row_count_change():
    spec = {"rule": "row_count_change", "max_relative_change": 0.3}
    reference = reference_of(FEATURES)
    assert one(FEATURES.iloc[:3], spec, reference).passed
    outcome = one(FEATURES.iloc[:2], spec, reference)
    assert not outcome.passed and outcome.observed == 0.5
    assert outcome.examples == [{"reference_rows": 4, "rows": 2}]


@pytest.fixture(scope="module")
def weights() -> pd.DataFrame:
    return pd.DataFrame({"weight": np.random.default_rng(0).lognormal(size=20_000)})


def test_drift_psi_and_ks_pass_on_the_same_distribution_and_fail_on_a_shift(weights):
    reference = reference_of(weights.iloc[:10_000])
    same, shifted = weights.iloc[10_000:], weights.iloc[10_000:] * 2
    for spec in [{"rule": "drift_psi", "column": "weight", "max_psi": 0.1}, {"rule": "drift_ks", "column": "weight", "max_ks": 0.1}]:
        assert one(same, spec, reference).passed
        failed = one(shifted, spec, reference)
        assert not failed.passed and failed.observed > 0.1 and failed.engine == "numpy"
    psi = one(shifted, {"rule": "drift_psi", "column": "weight", "max_psi": 0.1}, reference)
    assert set(psi.examples[0]) == {"bin", "reference_share", "share"}


def test_drift_of_an_id_column_needs_it_in_the_reference():
    spec = {"rule": "drift_psi", "column": "source_id", "max_psi": 0.1}
    reference = reference_of(FEATURES, spec)
    assert "source_id" in reference.summary.columns
    assert not one(FEATURES.assign(source_id=FEATURES["source_id"] + 1_000), spec, reference).passed


def test_score_drift_psi_flattens_the_score_lists(weights):
    lists = pd.DataFrame({"user_id": range(2_000), "source_ids": [[1, 2, 3, 4, 5]] * 2_000,
                          "scores": list(weights["weight"].to_numpy()[:10_000].reshape(2_000, 5))})
    spec = {"rule": "score_drift_psi", "max_psi": 0.2}
    reference = reference_of(lists, spec)
    assert reference.summary.columns["scores"].count == 10_000
    assert one(lists, spec, reference).passed
    assert not one(lists.assign(scores=lists["scores"].map(lambda s: s * 3)), spec, reference).passed


# ---- list rules ----------------------------------------------------------------------------------------------

def test_list_rules_pass_on_good_lists():
    outcomes = evaluate("recommendations", rules(
        {"rule": "user_coverage", "min": 1.0},
        {"rule": "list_length", "min": 3, "max": 3},
        {"rule": "no_subscribed_items"},
        {"rule": "no_duplicates"},
        {"rule": "top_sources_share", "top_n": 1, "max_share": 0.5},
        {"rule": "gini", "max": 0.9},
    ), RECOMMENDATIONS, None, CONTEXT)
    assert all(o.passed for o in outcomes), [o.description for o in outcomes if not o.passed]
    assert [o.engine for o in outcomes] == ["numpy"] * 6
    assert outcomes[4].observed == pytest.approx(3 / 9)


def test_user_coverage_counts_feature_users_without_a_list():
    lists = RECOMMENDATIONS.assign(source_ids=[[20], [], [21]])
    outcome = one(lists, {"rule": "user_coverage", "min": 0.9}, None, CONTEXT)
    assert not outcome.passed and outcome.observed == pytest.approx(2 / 3)
    assert outcome.examples == [{"user_id": 2}]
    assert outcome.description == "at least 90% of the users in user_source_features get a list: observed 66.67%"


def test_list_length_names_the_short_lists():
    outcome = one(RECOMMENDATIONS.assign(source_ids=[[20, 21, 22], [20], [25, 20]]), {"rule": "list_length", "min": 3})
    assert not outcome.passed and outcome.observed == 2
    assert outcome.examples == [{"user_id": 2, "list_length": 1}, {"user_id": 3, "list_length": 2}]


def test_no_subscribed_items_names_the_pairs():
    lists = RECOMMENDATIONS.assign(source_ids=[[20, 30, 22], [20, 23, 24], [25, 20, 26]])
    outcome = one(lists, {"rule": "no_subscribed_items"}, None, CONTEXT)
    assert not outcome.passed and outcome.observed == 1
    assert outcome.examples == [{"user_id": 1, "item": 30, "rank": 2}]


def test_no_duplicates_names_the_repeated_items():
    lists = RECOMMENDATIONS.assign(source_ids=[[20, 21, 20], [20, 23, 24], [25, 20, 26]])
    outcome = one(lists, {"rule": "no_duplicates"})
    assert not outcome.passed and outcome.observed == 2
    assert {(e["user_id"], e["item"]) for e in outcome.examples} == {(1, 20)}


def test_concentration_rules_fail_when_everyone_gets_the_same_items():
    same = pd.DataFrame({"user_id": range(100), "source_ids": [[1, 2, 3]] * 100, "scores": [[0.3, 0.2, 0.1]] * 100})
    catalog = pd.DataFrame({"user_id": np.arange(1_000) % 100, "source_id": np.arange(1_000)})
    share = one(same, {"rule": "top_sources_share", "top_n": 2, "max_share": 0.5})
    gini = one(same, {"rule": "gini", "max": 0.9}, None, {"user_source_features": catalog})
    assert not share.passed and share.observed == pytest.approx(2 / 3)
    assert not gini.passed and gini.observed == pytest.approx(1 - 3 / 1_000)
    assert gini.details["catalog_items"] == 1_000 and gini.examples[0]["share"] == pytest.approx(1 / 3)


def test_novelty_against_the_last_published_lists():
    published = RECOMMENDATIONS[["user_id", "source_ids"]]
    spec = {"rule": "novelty", "min": 0.5}
    unchanged = one(RECOMMENDATIONS, spec, AssetReference(published=published))
    assert not unchanged.passed and unchanged.observed == 0.0
    assert unchanged.examples == [{"user_id": 1}, {"user_id": 2}, {"user_id": 3}]
    fresh = RECOMMENDATIONS.assign(source_ids=[[40, 41, 22], [42, 43, 24], [44, 45, 26]])
    outcome = one(fresh, spec, AssetReference(published=published))
    assert outcome.passed and outcome.observed == pytest.approx(2 / 3) and outcome.details["users_compared"] == 3


def test_novelty_skips_when_no_user_was_published_before():
    published = pd.DataFrame({"user_id": [99], "source_ids": [[20]]})
    assert not one(RECOMMENDATIONS, {"rule": "novelty", "min": 0.5}, AssetReference(published=published)).evaluated


def test_rules_reading_other_assets_say_which_one_is_missing():
    with pytest.raises(MissingInput, match="subscribed_pairs"):
        one(RECOMMENDATIONS, {"rule": "no_subscribed_items"}, None, {})


# ---- severity, metadata, acceptance --------------------------------------------------------------------------

def test_only_failed_error_rules_block():
    outcomes = evaluate("asset", rules(
        {"rule": "mean_between", "column": "weight", "max": 1, "severity": "WARN"},
        {"rule": "mean_between", "column": "events", "max": 1},
        {"rule": "not_null", "column": "weight"},
    ), FEATURES)
    assert [o.passed for o in outcomes] == [False, False, True]
    assert [o.check_name for o in blocking(outcomes)] == ["events_mean_between"]


def test_metadata_is_plain_and_json_ready():
    outcome = one(FEATURES.assign(weight=[1.0, np.nan, 3.0, 4.0]), {"rule": "in_range", "column": "weight", "min": 0, "max": 3})
    metadata = outcome.metadata()
    json.dumps(metadata)
    assert metadata["observed"] == 1 and metadata["threshold_max"] == 3.0 and metadata["engine"] == "numpy"
    assert type(metadata["unexpected_percent"]) is float


def test_summaries_keep_numeric_non_id_columns_and_drift_columns():
    summary = summarize(rules({"rule": "drift_ks", "column": "source_id", "max_ks": 0.1}), FEATURES)
    assert list(summary.columns) == ["weight", "events", "days_since_last", "source_id"]
    assert summary.rows == 4 and summary.metadata()["weight_mean"] == 2.5


def test_monitor_accepts_only_materializations_without_failed_errors(tmp_path):
    store = ReferenceStore(tmp_path)
    specs = rules({"rule": "drift_psi", "column": "weight", "max_psi": 0.1},
                  {"rule": "mean_between", "column": "weight", "max": 2, "severity": "WARN"})
    first = monitor(store, "exp", "features", specs, FEATURES)
    assert first.accepted and not first.outcomes[1].passed
    assert store.load("exp", "features").rows == 4
    drifted = monitor(store, "exp", "features", specs, FEATURES.assign(weight=FEATURES["weight"] * 10))
    assert not drifted.accepted and drifted.summary.columns["weight"].mean == 25.0
    assert store.load("exp", "features").summary.columns["weight"].mean == 2.5


# ---- the monitoring budget -----------------------------------------------------------------------------------

def default_sized_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Frames shaped like the default preset's: 800k feature rows, 50k users with 20 sources each."""
    rng = np.random.default_rng(1)
    users, sources = 10_000_000 + np.arange(50_000), 500_000_000 + np.arange(5_000)
    features = pd.DataFrame({
        "user_id": np.sort(rng.choice(users, 800_000)),
        "source_id": rng.choice(sources, 800_000),
        "weight": rng.lognormal(0.3, 1.0, 800_000),
        "events": rng.geometric(0.55, 800_000),
        "days_since_last": rng.integers(0, 10, 800_000),
    })
    items = np.stack([rng.choice(sources, 20, replace=False) for _ in range(2_000)])[rng.integers(0, 2_000, 50_000)]
    recommendations = pd.DataFrame({"user_id": users, "source_ids": list(items),
                                    "scores": list(np.sort(rng.random((50_000, 20)))[:, ::-1])})
    subscribed = pd.DataFrame({"user_id": rng.choice(users, 200_000), "source_id": rng.choice(sources, 200_000) + 10_000})
    return features, recommendations, subscribed


def test_a_category_that_disappears_fails_categories_present():
    frame = pd.DataFrame({"country": ["br"] * 50 + ["de"] * 48 + ["vn"] * 2})
    spec = {"rule": "categories_present", "column": "country", "values": ["br", "de", "vn"], "min_share": 0.05}
    outcome = one(frame, spec)
    assert not outcome.passed and outcome.check_name == "country_categories_present" and outcome.observed == 0.02
    assert outcome.examples == [{"country": "vn", "share": 0.02}]
    assert one(frame.replace("vn", "de"), {**spec, "values": ["br", "de"]}).passed
