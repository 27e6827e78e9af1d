"""Column summaries, drift statistics and exposure measures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ok_ml_assets.monitoring import statistics as st


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(3)


def test_summary_counts_nulls_and_matches_numpy(rng):
    values = rng.lognormal(size=10_000)
    values[:25] = np.nan
    summary = st.summarize_column(values)
    finite = values[25:]
    assert (summary.count, summary.nulls) == (len(finite), 25)
    assert summary.mean == pytest.approx(finite.mean())
    assert summary.std == pytest.approx(finite.std(ddof=1))
    assert summary.quantiles["p50"] == pytest.approx(np.quantile(finite, 0.5), rel=1e-3)
    assert (summary.min, summary.max) == (finite.min(), finite.max())
    assert sum(summary.bin_shares) == pytest.approx(1.0)
    assert len(summary.bin_shares) == len(summary.bin_edges) + 1


def test_integer_columns_get_one_bin_per_frequent_value():
    summary = st.summarize_column(pd.Series(np.repeat(np.arange(10), 100)))
    assert summary.bin_edges == tuple(float(v) for v in range(10))
    assert summary.bin_shares == pytest.approx([0.1] * 10 + [0.0])


def test_empty_column_summary_has_no_statistics():
    summary = st.summarize_column(np.array([np.nan, np.nan]))
    assert (summary.count, summary.nulls) == (0, 2)
    assert np.isnan(summary.mean)
    assert st.psi(summary, np.arange(5.0)) == 0.0


def test_summary_json_round_trip(rng):
    summary = st.summarize_column(rng.normal(size=500))
    assert st.ColumnSummary.from_dict(summary.to_dict()) == summary
    batch = st.BatchSummary(rows=500, columns={"x": summary})
    assert st.BatchSummary.from_dict(batch.to_dict()) == batch
    assert batch.metadata()["x_mean"] == pytest.approx(summary.mean)


@pytest.mark.parametrize("quantile,label", [(0.5, "p50"), (0.99, "p99"), (0.999, "p99_9"), (0.05, "p5")])
def test_quantile_labels(quantile, label):
    assert st.quantile_label(quantile) == label


def test_psi_of_same_distribution_is_near_zero(rng):
    reference = st.summarize_column(rng.normal(size=200_000))
    assert st.psi(reference, rng.normal(size=200_000)) < 0.005


def test_psi_of_shifted_and_scaled_distributions_is_large(rng):
    reference = st.summarize_column(rng.normal(size=100_000))
    assert st.psi(reference, rng.normal(loc=1.0, size=100_000)) > 0.5
    assert st.psi(reference, rng.normal(scale=3.0, size=100_000)) > 0.5


def test_psi_from_shares_matches_the_textbook_formula():
    expected, actual = np.array([0.2, 0.3, 0.5]), np.array([0.1, 0.4, 0.5])
    manual = sum((a - e) * np.log(a / e) for a, e in zip(actual, expected))
    assert st.psi_from_shares(expected, actual) == pytest.approx(manual)


def test_ks_equals_scipy_when_the_reference_fits_in_the_sketch(rng):
    reference, new = rng.normal(size=1_500), rng.normal(loc=0.2, size=3_000)
    expected = stats.ks_2samp(reference, new).statistic
    assert st.ks_statistic(st.summarize_column(reference), new) == pytest.approx(expected, abs=1e-12)


def test_ks_equals_scipy_on_integer_data_with_ties(rng):
    reference, new = rng.poisson(2.0, size=1_000), rng.poisson(2.4, size=5_000)
    expected = stats.ks_2samp(reference, new).statistic
    assert st.ks_statistic(st.summarize_column(reference), new) == pytest.approx(expected, abs=1e-12)


def test_ks_from_the_sketch_of_a_large_reference_is_close_to_scipy(rng):
    reference, new = rng.lognormal(size=300_000), rng.lognormal(mean=0.05, size=200_000)
    expected = stats.ks_2samp(reference, new).statistic
    assert st.ks_statistic(st.summarize_column(reference), new) == pytest.approx(expected, abs=2.0 / st.SKETCH_SIZE)


def test_ks_reports_where_the_distributions_differ_most(rng):
    result = st.ks_test(st.summarize_column(np.zeros(100)), np.ones(100))
    assert (result.statistic, result.reference_cdf, result.cdf) == (1.0, 1.0, 0.0)


def test_relative_change():
    assert st.relative_change(100, 120) == pytest.approx(0.2)
    assert st.relative_change(100, 80) == pytest.approx(0.2)
    assert st.relative_change(0, 0) == 0.0 and st.relative_change(0, 1) == np.inf


def test_gini_and_top_share():
    assert st.gini(np.full(10, 7)) == pytest.approx(0.0)
    assert st.gini(np.array([0, 0, 0, 10])) == pytest.approx(0.75)
    assert st.top_share(np.array([5, 3, 1, 1]), 2) == pytest.approx(0.8)
    assert st.top_share(np.array([5, 3]), 10) == pytest.approx(1.0)


def test_exposure_counts_unexposed_catalog_items_as_zero():
    ids, counts = st.exposure(np.array([3, 1, 3, 3, 2]))
    assert ids.tolist() == [3, 1, 2] and counts.tolist() == [3, 1, 1]
    assert sorted(st.exposure_counts(np.array([1, 1, 2]), catalog=np.array([1, 2, 3, 4]))) == [0, 0, 1, 2]


def test_flatten_lists_of_lists_and_arrays():
    lengths, values = st.flatten_lists(pd.Series([[1, 2], np.array([3]), []]))
    assert lengths.tolist() == [2, 1, 0] and values.tolist() == [1, 2, 3]


def test_pairs_in_and_novelty():
    users, items = np.array([1, 1, 2, 2, 3]), np.array([10, 11, 10, 12, 10])
    previous_users, previous_items = np.array([1, 1, 2]), np.array([10, 99, 12])
    assert st.pairs_in(users, items, previous_users, previous_items).tolist() == [True, False, False, True, False]
    result = st.novelty(users, items, previous_users, previous_items)
    assert (result.share, result.users_compared, result.items_compared) == (0.5, 2, 4)
    assert st.novelty(users, items, np.array([7]), np.array([1])).users_compared == 0
