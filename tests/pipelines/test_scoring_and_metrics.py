"""Top-K scoring, the popularity baseline, holdout metrics and ALS training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from ok_ml_assets.pipeline_types.recommendation_als import scoring
from ok_ml_assets.pipeline_types.recommendation_als.metrics import ranking_metrics
from ok_ml_assets.pipeline_types.recommendation_als.scoring import (
    item_knn_top_k,
    item_similarity,
    popularity_top_k,
    recommendation_table,
    top_k,
)
from ok_ml_assets.pipeline_types.recommendation_als.training import AlsParams, fit_als, interaction_matrix


def brute_force_top_k(users, sources, exclude, k):
    scores = users @ sources.T
    scores[exclude.toarray() > 0] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def test_top_k_matches_brute_force_across_blocks_and_never_returns_excluded():
    rng = np.random.default_rng(0)
    users, sources = rng.normal(size=(50, 8)).astype(np.float32), rng.normal(size=(30, 8)).astype(np.float32)
    exclude = sp.random(50, 30, density=0.2, random_state=1, format="csr", dtype=np.float32)
    items, scores = top_k(users, sources, exclude, 5, block=7)
    np.testing.assert_array_equal(items, brute_force_top_k(users, sources, exclude, 5))
    assert not exclude[np.repeat(np.arange(50), 5), items.ravel()].any()
    assert np.all(np.diff(scores, axis=1) <= 0)


def reference_top_k(users, sources, exclude, k):
    """Dense scores, exclusions at -inf, a full sort by score descending then source ascending, -1 / -inf padded."""
    scores = np.asarray(users @ sources.T, dtype=np.float32)
    scores[exclude.toarray() > 0] = -np.inf
    order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores), axis=1)[:, :k]
    best = np.take_along_axis(scores, order, axis=1)
    items = np.where(np.isneginf(best), -1, order)
    padding = max(0, k - scores.shape[1])
    return np.pad(items, ((0, 0), (0, padding)), constant_values=-1), np.pad(best, ((0, 0), (0, padding)), constant_values=-np.inf)


def exclusions_with_crowded_users(rng, n_users, n_sources, density):
    """Random exclusions, where every fifth user has all but a few sources excluded and one user has all of them."""
    dense = rng.random((n_users, n_sources)) < density
    dense[::5] = rng.random((len(dense[::5]), n_sources)) < 0.995
    dense[1] = True
    return sp.csr_matrix(dense.astype(np.float32))


@pytest.mark.parametrize("n_sources,k", [(300, 10), (64, 20), (7, 12), (1000, 1)])
def test_top_k_equals_a_full_sort_with_ties_crowded_users_and_k_past_the_sources(n_sources, k, monkeypatch):
    # Small integer factors make every product exact in float32 and give many equal scores, so ties are pinned too.
    rng = np.random.default_rng(n_sources + k)
    users = rng.integers(-2, 3, size=(97, 6)).astype(np.float32)
    sources = rng.integers(-2, 3, size=(n_sources, 6)).astype(np.float32)
    exclude = exclusions_with_crowded_users(rng, 97, n_sources, 0.05)
    expected_items, expected_scores = reference_top_k(users, sources, exclude, k)
    for block, threads, tile in ((None, None, 8192), (5, 1, 8192), (16, 2, 8192), (None, None, 50)):
        monkeypatch.setattr(scoring, "TILE_SOURCES", tile)
        items, scores = top_k(users, sources, exclude, k, block=block, threads=threads)
        np.testing.assert_array_equal(items, expected_items)
        np.testing.assert_array_equal(scores, expected_scores)


def test_top_k_on_real_valued_factors_matches_the_reference_and_its_scores():
    rng = np.random.default_rng(7)
    users, sources = rng.normal(size=(500, 16)).astype(np.float32), rng.normal(size=(2000, 16)).astype(np.float32)
    exclude = exclusions_with_crowded_users(rng, 500, 2000, 0.01)
    items, scores = top_k(users, sources, exclude, 25, block=64)
    expected_items, expected_scores = reference_top_k(users, sources, exclude, 25)
    np.testing.assert_array_equal(items, expected_items)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)
    assert not exclude[np.repeat(np.arange(500), 25)[items.ravel() >= 0], items.ravel()[items.ravel() >= 0]].any()


def test_top_k_with_a_sparse_user_matrix_equals_the_dense_one():
    rng = np.random.default_rng(3)
    history = sp.random(60, 40, density=0.1, random_state=4, format="csr", dtype=np.float32)
    similarity = rng.integers(0, 4, size=(40, 40)).astype(np.float32)
    exclude = exclusions_with_crowded_users(rng, 60, 40, 0.1)
    sparse_items, sparse_scores = top_k(history, similarity, exclude, 8, block=7)
    dense_items, dense_scores = reference_top_k(history.toarray(), similarity, exclude, 8)
    np.testing.assert_array_equal(sparse_items, dense_items)
    np.testing.assert_allclose(sparse_scores, dense_scores, rtol=1e-6)


def test_top_k_pads_when_too_few_sources_are_allowed():
    users, sources = np.ones((1, 2), np.float32), np.eye(3, 2, dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[1, 0, 0]], dtype=np.float32))
    items, scores = top_k(users, sources, exclude, 4)
    assert items.tolist() == [[1, 2, -1, -1]] and np.isneginf(scores[0, 2:]).all()
    table = recommendation_table(np.array([7]), np.array([100, 101, 102]), items, scores)
    assert table.loc[0, "source_ids"] == [101, 102]


def test_popularity_baseline_ranks_by_distinct_users():
    train = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]], dtype=np.float32))
    items = popularity_top_k(train, sp.csr_matrix((3, 3), dtype=np.float32), 2)
    assert items[:, 0].tolist() == [1, 1, 1]


def test_ranking_metrics_at_k():
    items = np.array([[0, 1], [2, 0], [1, 2]])
    relevant = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0], [0, 0, 1]], dtype=np.float32))
    metrics = ranking_metrics(items, relevant, 2)
    assert metrics["evaluated_users"] == 2
    assert metrics["precision_at_2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert metrics["recall_at_2"] == pytest.approx((1 / 2 + 1) / 2)
    assert metrics["map_at_2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    ndcg_user0 = 1 / (1 + 1 / np.log2(3))
    ndcg_user2 = 1 / np.log2(3)
    assert metrics["ndcg_at_2"] == pytest.approx((ndcg_user0 + ndcg_user2) / 2)
    assert metrics["coverage_at_2"] == 1.0


def test_recall_counts_every_relevant_source_and_the_capped_variant_keeps_its_own_name():
    items = np.array([[0, 1]])
    relevant = sp.csr_matrix(np.array([[1, 1, 1, 1]], dtype=np.float32))
    metrics = ranking_metrics(items, relevant, 2)
    assert metrics["recall_at_2"] == pytest.approx(2 / 4)
    assert metrics["capped_recall_at_2"] == pytest.approx(1.0)
    assert metrics["coverage_at_2"] == pytest.approx(2 / 4)


def test_bootstrap_intervals_hold_the_mean_and_narrow_with_more_users():
    rng = np.random.default_rng(1)
    small, large = (sp.csr_matrix(rng.random((n, 50)) < 0.1, dtype=np.float32) for n in (200, 20_000))
    widths = []
    for relevant in (small, large):
        items = rng.integers(0, 50, size=(relevant.shape[0], 10))
        metrics = ranking_metrics(items, relevant, 10, intervals=True)
        assert metrics["ndcg_at_10_ci95_low"] < metrics["ndcg_at_10"] < metrics["ndcg_at_10_ci95_high"]
        widths.append(metrics["ndcg_at_10_ci95_high"] - metrics["ndcg_at_10_ci95_low"])
    assert widths[1] < widths[0] / 5


def test_als_learns_two_communities_and_is_reproducible():
    rng = np.random.default_rng(0)
    rows = []
    for user in range(40):
        community = user % 2
        for source in rng.choice(range(community * 10, community * 10 + 10), size=6, replace=False):
            rows.append((user, 100 + source, 1.0))
    features = pd.DataFrame(rows, columns=["user_id", "source_id", "weight"])
    params = AlsParams(factors=4, regularization=0.01, iterations=10, alpha=10, seed=3)
    first, second = fit_als(features, params), fit_als(features, params)
    np.testing.assert_allclose(first.user_factors, second.user_factors, rtol=1e-4, atol=1e-5)
    seen = interaction_matrix(features, first.user_ids, first.source_ids)
    items, _ = top_k(first.user_factors, first.source_factors, seen, 3)
    community_of_item = (first.source_ids[items] - 100) // 10
    assert (community_of_item == (first.user_ids % 2)[:, None]).mean() > 0.9


def test_popularity_baseline_matches_brute_force_with_exclusions():
    rng = np.random.default_rng(5)
    train = sp.csr_matrix(rng.random((200, 40)) < np.linspace(0.01, 0.6, 40))
    train = sp.csr_matrix(np.where(train.toarray(), 1.0, 0.0) * 1.0)
    exclude = sp.random(200, 40, density=0.3, random_state=2, format="csr", dtype=np.float32)
    expected = brute_force_top_k(np.ones((200, 1), np.float32), np.asarray(train.sum(axis=0)).T.astype(np.float32), exclude, 5)
    items = popularity_top_k(train, exclude, 5)
    counts = np.asarray(train.sum(axis=0)).ravel()
    assert not exclude[np.repeat(np.arange(200), 5), items.ravel()].any()
    np.testing.assert_array_equal(counts[items], counts[expected])
    # Blocks of users (each with its own candidate depth) give the lists of one pass over everyone.
    np.testing.assert_array_equal(popularity_top_k(train, exclude, 5, block=7), items)


def test_item_knn_recommends_what_users_with_the_same_sources_also_use():
    # Users 0 and 1 share source 0; user 1 also uses source 1, so user 0 gets source 1 first, never source 0 again.
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]], dtype=np.float32))
    items = item_knn_top_k(train, train, 1)
    assert items[0].tolist() == [1] and items[1].tolist() != [0]
    similarity = item_similarity(train)
    assert similarity[0, 1] == pytest.approx(1 / np.sqrt(2)) and similarity[0, 2] == 0 and similarity[0, 0] == 0


def test_the_best_baseline_is_what_a_first_model_must_beat():
    from ok_ml_assets.pipeline_types.recommendation_als.evaluation import HoldoutReport

    report = HoldoutReport(model={"ndcg_at_10": 0.3}, baselines={
        "popularity": {"ndcg_at_10": 0.2, "evaluated_users": 5.0}, "item_knn": {"ndcg_at_10": 0.25, "evaluated_users": 5.0}})
    metrics = report.as_metrics()
    assert metrics["baseline_ndcg_at_10"] == 0.25 and metrics["popularity_ndcg_at_10"] == 0.2 and metrics["item_knn_ndcg_at_10"] == 0.25
    assert "baseline_evaluated_users" not in metrics
